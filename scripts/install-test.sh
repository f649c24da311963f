#!/usr/bin/env bash
# make test-install: the .deb (packaging/out, from `make deb`) installed on a booted Debian 12
# with systemd as PID 1 (systemd-nspawn --boot; ../shared/reference/nspawn-notes.md), then used
# as a person would: units active, owners and modes as documented, the self-test, pcctl with no
# -c, a user enrolled with pcsh from this host and an OpenSSH session to the container's node,
# recorded; a restart keeps the history; installing again (the upgrade path) keeps the data and
# the audit chain verifies; remove keeps the data; purge removes the configuration and keeps the
# data; the journal shows no error line. Root only. The Debian root is cached in CACHE_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "install-test: needs root (nspawn)" >&2; exit 1; }
CACHE_DIR=${CACHE_DIR:-/var/cache/portcullis-install-test}
deb=$(ls -t packaging/out/portcullis_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "install-test: no package in packaging/out (run make deb)" >&2; exit 1; }
for tool in debootstrap systemd-nspawn zstd; do
    command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap systemd-container zstd >/dev/null
done
pcsh=$(swift build --show-bin-path)/pcsh
[ -x "$pcsh" ] || swift build --product pcsh >/dev/null

tarball=$CACHE_DIR/bookworm-minbase.tar.zst
if [ ! -f "$tarball" ]; then
    mkdir -p "$CACHE_DIR"
    mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    build=$(mktemp -d /var/tmp/portcullis-debootstrap.XXXXXX)
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates,openssh-client bookworm "$build" "${mirror:-http://deb.debian.org/debian}" >/dev/null
    tar -C "$build" --zstd -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$build"
fi

name=pcinstall$$
root=$(mktemp -d /var/tmp/portcullis-install.XXXXXX)
work=$(mktemp -d /tmp/portcullis-install-host.XXXXXX)
tar -C "$root" --zstd -xf "$tarball"
# mktemp made it 0700: as the container's / nobody but root could even chdir into it.
chmod 0755 "$root"
cp "$deb" "$root/root/"
systemd-machine-id-setup --root="$root" >/dev/null 2>&1 || true
leader=
cleanup() {
    if [ -n "${KEEP:-}" ]; then echo "install-test: KEEP set: the container runs on (leader pid $leader, root $root)"; return; fi
    if [ -n "$leader" ]; then kill -RTMIN+4 "$leader" 2>/dev/null || true; sleep 3; fi
    [ -n "${nspawn:-}" ] && kill "$nspawn" 2>/dev/null || true
    sleep 1
    # The container's systemd left its own cgroups inside ours: removed deepest first.
    for hierarchy in systemd unified; do
        [ -d /sys/fs/cgroup/$hierarchy/nspawn-$name ] && find /sys/fs/cgroup/$hierarchy/nspawn-$name -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    rm -rf "$root" "$work"
}
trap cleanup EXIT
for hierarchy in systemd unified; do mkdir -p /sys/fs/cgroup/$hierarchy/nspawn-$name; done
setsid sh -c "echo \$\$ > /sys/fs/cgroup/systemd/nspawn-$name/cgroup.procs; echo \$\$ > /sys/fs/cgroup/unified/nspawn-$name/cgroup.procs;
    exec env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn --quiet -D '$root' -M $name --boot --register=no --keep-unit" \
    </dev/null >"$work/nspawn.log" 2>&1 &
nspawn=$!
for _ in $(seq 100); do
    for child in $(pgrep -P "$nspawn" || true) $(pgrep -P "$(pgrep -P "$nspawn" | head -1)" 2>/dev/null || true); do
        [ "$(awk '/^NSpid:/ { print $NF }' /proc/$child/status 2>/dev/null)" = 1 ] && leader=$child
    done
    [ -n "$leader" ] && break
    sleep 0.1
done
[ -n "$leader" ] || { echo "install-test: the container did not start"; cat "$work/nspawn.log"; exit 1; }
inside() { nsenter -t "$leader" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
for _ in $(seq 100); do
    state=$(inside systemctl is-system-running 2>/dev/null || true)
    [ "$state" = running ] || [ "$state" = degraded ] && break
    sleep 0.2
done
echo "install-test: Debian 12 booted in a container ($state)"
fail() { echo "install-test: FAIL: $*" >&2; inside journalctl -u portcullis -u portcullis-privd --no-pager | tail -40 >&2; exit 1; }
check() { local what=$1; shift; "$@" || fail "$what"; echo "install-test: ok: $what"; }

# An installed Debian has a locale file (debian-installer writes it; the PAM session's pam_env
# reads it, as sshd's does); this minimal root does not.
inside sh -c 'echo LANG=C.UTF-8 > /etc/default/locale'
inside apt-get update -qq >/dev/null
check "apt-get install ./portcullis_*.deb" inside sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /root/$(basename "$deb") >/root/install.log 2>&1 || { cat /root/install.log; false; }"
check "both units active" inside systemctl is-active --quiet portcullis.service portcullis-privd.service
check "both units enabled" inside systemctl is-enabled --quiet portcullis.service portcullis-privd.service
check "systemd-analyze verify of both units" inside systemd-analyze verify portcullis.service portcullis-privd.service
kek=/etc/credstore.encrypted/portcullis-kek
modes=$(inside stat -c '%n %U:%G %a' /etc/portcullis /etc/portcullis/portcullis.yaml $kek /var/lib/portcullis /var/lib/portcullis/admin.sock)
expected="/etc/portcullis root:portcullis 750
/etc/portcullis/portcullis.yaml root:portcullis 640
$kek root:root 600
/var/lib/portcullis portcullis:portcullis 700
/var/lib/portcullis/admin.sock portcullis:portcullis 600"
check "owners and modes: $(echo $modes)" [ "$modes" = "$expected" ]
check "the KEK is only an encrypted credential (no key file)" inside test ! -e /etc/portcullis/kek
check "the daemon read the KEK as its systemd credential" inside sh -c \
    'journalctl -u portcullis.service --no-pager -q | grep -q "systemd credential /run/credentials/portcullis.service/portcullis-kek"'
check "the configuration is a conffile" inside sh -c "dpkg-query -W -f='\${Conffiles}' portcullis | grep -q /etc/portcullis/portcullis.yaml"
check "the self-test passes (as root: it decrypts the credential, then acts as the service user)" \
    inside sh -c 'portcullis selftest --config /etc/portcullis/portcullis.yaml >/root/selftest.log 2>&1 || { cat /root/selftest.log; false; }'
check "the manual pages are installed" inside test -s /usr/share/man/man1/pcctl.1.gz -a -s /usr/share/man/man1/portcullis.1.gz -a -s /usr/share/man/man1/pcsh.1.gz
check "pcctl as root with no -c" inside pcctl users ls
# The web console's terminal component is Debian's, a dependency of the package, served from its path.
# (grep -c reads it all: grep -q would stop early and, under pipefail, fail curl's write.)
xterm_served() { curl -fsk https://127.0.0.1:3080/web/static/xterm.js | grep -c 'define("public/Terminal.js"' >/dev/null; }
check "node-xterm came with the package" inside dpkg-query -W node-xterm
check "the web console serves Debian's xterm.js (node-xterm installed as a dependency)" xterm_served

# A person: a role for a demo login, enrolled with pcsh from this host, an OpenSSH session to the node.
inside useradd --create-home --shell /bin/bash pcdemo
inside sh -c 'printf "kind: role\nversion: v1\nmetadata:\n  name: demo\nspec:\n  allow:\n    logins: [pcdemo]\n    node_labels: {\"*\": \"*\"}\n" > /root/demo.yaml && pcctl create -f /root/demo.yaml' >/dev/null
token=$(inside pcctl users add alice --roles demo | sed -n 's/.*--token \([^ ]*\).*/\1/p' | head -1)
[ -n "$token" ] || fail "pcctl users add printed no token"
inside pcctl auth export --type tls >"$work/proxy.pem"
export PCSH_HOME=$work/pcsh
python3 - "$pcsh" "$token" "$work/proxy.pem" <<'PY' || fail "pcsh setup and login from the host"
import base64, hmac, struct, subprocess, sys, time
pcsh, token, ca = sys.argv[1:4]
proxy = ["--proxy", "127.0.0.1:3080", "--ca-cert", ca]
def code(secret, offset=0):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30 + offset), "sha1").digest()
    start = digest[-1] & 15
    return "%06d" % ((struct.unpack(">I", digest[start:start + 4])[0] & 0x7fffffff) % 1000000)
setup = subprocess.Popen([pcsh, "setup", "--token", token] + proxy, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
shown = b""
while b"New password" not in shown or not shown.endswith(b": "):
    byte = setup.stdout.read(1)
    if not byte: sys.exit("pcsh setup stopped: " + shown.decode())
    shown += byte
secret = shown.decode().split("secret: ")[1].split()[0]
password = "install test passphrase"
out, _ = setup.communicate(("%s\n%s\n%s\n" % (password, password, code(secret))).encode())
if setup.returncode != 0: sys.exit("pcsh setup failed: " + (shown + out).decode())
time.sleep(1)
login = subprocess.run([pcsh, "login", "--user", "alice"] + proxy, input=("%s\n%s\n" % (password, code(secret, 1))).encode(), capture_output=True)
if login.returncode != 0: sys.exit("pcsh login failed: " + (login.stdout + login.stderr).decode())
PY
echo "install-test: ok: pcsh setup and login from the host against the container's HTTPS API"
session=$(ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i "$PCSH_HOME/key" -o UserKnownHostsFile="$PCSH_HOME/known_hosts" \
    -o HostKeyAlias="$(inside hostname).portcullis" -p 3022 pcdemo@127.0.0.1 'echo installed-session; id -un' 2>&1) || true
case $session in *installed-session*pcdemo*) echo "install-test: ok: an OpenSSH session to the container's node" ;; *) fail "ssh to the node: $session" ;; esac
recorded() { inside sh -c 'pcctl audit search --event session.end --format json | grep "\"user\":\"alice\"" | grep -q "\"session_recording\":\"node\""'; }
for _ in $(seq 50); do recorded && break; sleep 0.2; done
check "the session is recorded and audited (session.end, recording on the node)" recorded

inside systemctl restart portcullis.service
check "active after a restart" inside systemctl is-active --quiet portcullis.service
check "the history is kept across the restart" recorded
inside sh -c 'echo "# an administrator'"'"'s note" >> /etc/portcullis/portcullis.yaml'
check "installing again (the upgrade path)" inside sh -c "DEBIAN_FRONTEND=noninteractive dpkg -i /root/$(basename "$deb") >/root/upgrade.log 2>&1 || { cat /root/upgrade.log; false; }"
check "active after the upgrade" inside systemctl is-active --quiet portcullis.service
check "the data survives the upgrade" recorded
check "the administrator's edit of the configuration survives the upgrade" inside grep -q "an administrator's note" /etc/portcullis/portcullis.yaml
check "the audit chain verifies" inside pcctl audit verify
journal=$(inside journalctl -u portcullis.service --no-pager -p err -q || true)
check "no error line in the daemon's journal${journal:+: $journal}" [ -z "$journal" ]
# The broker's unit also carries the sessions' PAM modules. Known: pam_systemd cannot release a
# logind session whose process the broker moved into its own session cgroup (logind's scope
# and Portcullis's delegated cgroups both want the session); printed, not yet failed on.
broker_journal=$(inside journalctl -u portcullis-privd.service --no-pager -p err -q || true)
[ -z "$broker_journal" ] || echo "install-test: note: error lines in the broker's journal (sessions' PAM modules): $broker_journal"
check "apt-get remove" inside sh -c 'DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq portcullis >/dev/null 2>&1'
stopped() {
    local unit
    for unit in portcullis.service portcullis-privd.service; do
        [ "$(inside systemctl show -p ActiveState --value "$unit")" = inactive ] || return 1
    done
}
check "remove stops the units" stopped
check "remove keeps the data and the configuration" inside test -f /var/lib/portcullis/audit.db -a -f /etc/portcullis/portcullis.yaml -a -f $kek
check "apt-get purge (the debconf question's default answer)" inside sh -c 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq portcullis >/dev/null 2>&1'
check "purge removes the configuration, keeps the data and its key" inside sh -c \
    "test ! -e /etc/portcullis/portcullis.yaml && test ! -e /etc/systemd/system/portcullis.service.d/portcullis-kek.conf && test -f /var/lib/portcullis/audit.db && test -f $kek"
check "installing after a purge opens the kept data with the kept key" inside sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /root/$(basename "$deb") >/root/reinstall.log 2>&1 || { cat /root/reinstall.log; false; }"
kept() { inside pcctl audit verify >/dev/null && recorded; }
check "the kept audit chain verifies and still holds the session" kept
inside sh -c 'echo "portcullis portcullis/purge-data boolean true" | debconf-set-selections'
check "apt-get purge, answering yes to deleting the data" inside sh -c 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq portcullis >/dev/null 2>&1'
check "that purge deletes the data and its key" inside sh -c "test ! -e /var/lib/portcullis && test ! -e $kek && test ! -e /etc/portcullis"
echo "install-test: passed ($(du -h "$deb" | cut -f1) package)"

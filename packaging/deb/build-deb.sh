#!/usr/bin/env bash
# Builds packaging/out/portcullis_<version>_<arch>.deb: static-Swift release binaries, the
# systemd units (the unprivileged daemon and its root broker), and the FIPS provider (configured
# on the target machine by postinst, because OpenSSL asks for `fipsinstall` to run on each machine).
#   FIPS_PREFIX   where build-fips-provider.sh put fips.so (default .build-fips/prefix)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
FIPS_PREFIX=${FIPS_PREFIX:-$root/.build-fips/prefix}
version=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/PortcullisVersion/Version.swift)
arch=$(dpkg --print-architecture)
out=${OUT:-$root/packaging/out}
stage=$out/stage
[ -f "$FIPS_PREFIX/lib/ossl-modules/fips.so" ] || { echo "build-deb: no fips.so in $FIPS_PREFIX (run make fips)" >&2; exit 1; }

swift build -c release --static-swift-stdlib --product portcullis
swift build -c release --static-swift-stdlib --product pcctl
swift build -c release --static-swift-stdlib --product pcsh
swift build -c release --static-swift-stdlib --product portcullis-exec
swift build -c release --static-swift-stdlib --product portcullis-privd
bin=$(swift build -c release --show-bin-path)

# Reproducible: every time stamp is the commit's, file lists are sorted (dpkg-deb sorts), and the
# same commit gives the same bytes (make deb-reproducible packages twice and compares).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
rm -rf "$stage" && mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" \
    "$stage/usr/lib/portcullis/fips/lib/ossl-modules" "$stage/usr/share/doc/portcullis"
for p in portcullis portcullis-privd pcctl pcsh; do install -m 0755 "$bin/$p" "$stage/usr/bin/$p"; strip "$stage/usr/bin/$p"; done
# The session launcher: run only by the root broker (portcullis-privd), so not on PATH.
install -m 0755 "$bin/portcullis-exec" "$stage/usr/lib/portcullis/portcullis-exec"; strip "$stage/usr/lib/portcullis/portcullis-exec"
install -m 0644 systemd/portcullis.service "$stage/lib/systemd/system/portcullis.service"
install -m 0644 systemd/portcullis-privd.service "$stage/lib/systemd/system/portcullis-privd.service"
install -D -m 0644 packaging/pam.d/portcullis "$stage/etc/pam.d/portcullis"
# The configuration is a conffile: the package's defaults (the FIPS provider it ships, the broker,
# PAM), rendered by the program itself so it parses; the administrator's edits survive upgrades.
# It names no secret: the KEK is an encrypted systemd credential or /etc/portcullis/kek (postinst).
install -d "$stage/etc/portcullis"
"$stage/usr/bin/portcullis" configure --data-dir /var/lib/portcullis --fips-prefix /usr/lib/portcullis/fips \
    --broker-socket /run/portcullis-privd/privd.sock --pam >"$stage/etc/portcullis/portcullis.yaml"
chmod 0644 "$stage/etc/portcullis/portcullis.yaml"  # postinst: root:portcullis 0640
printf '/etc/pam.d/portcullis\n/etc/portcullis/portcullis.yaml\n' >"$stage/DEBIAN/conffiles"
install -m 0755 "$FIPS_PREFIX/lib/ossl-modules/fips.so" "$stage/usr/lib/portcullis/fips/lib/ossl-modules/fips.so"
install -m 0755 packaging/fips/build-fips-provider.sh "$stage/usr/lib/portcullis/fips/build-fips-provider.sh"
install -m 0644 README.md "$stage/usr/share/doc/portcullis/README.md"
install -m 0644 docs/architecture.md "$stage/usr/share/doc/portcullis/architecture.md"
# The control catalog 'pcctl report controls' reads, and the report schemas.
install -d "$stage/usr/share/portcullis/compliance/controls" "$stage/usr/share/portcullis/compliance/schemas"
install -m 0644 compliance/controls/*.yaml "$stage/usr/share/portcullis/compliance/controls/"
install -m 0644 compliance/schemas/*.json "$stage/usr/share/portcullis/compliance/schemas/"

# Manual pages generated from the programs' own --help (ArgumentParser's generate-manual), so
# they cannot drift from what the programs accept.
swift build --product generate-manual
manuals=$(mktemp -d) && trap 'rm -rf "$manuals"' EXIT
install -d "$stage/usr/share/man/man1"
for p in portcullis portcullis-privd pcctl pcsh; do
    "$(swift build --show-bin-path)/generate-manual" "$stage/usr/bin/$p" --date "$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)" \
        --authors 'Portcullis<security@portcullis.invalid>' -o "$manuals" >/dev/null
    gzip -9n <"$manuals/$p.1" >"$stage/usr/share/man/man1/$p.1.gz" && chmod 0644 "$stage/usr/share/man/man1/$p.1.gz"
done

# Machine-readable copyright and the changelog (a native package's: changelog.gz), as policy asks.
cat >"$stage/usr/share/doc/portcullis/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: portcullis
Source: https://portcullis.invalid/

Files: *
Copyright: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y) Portcullis authors
License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
printf 'portcullis (%s) bookworm; urgency=medium\n\n  * Release %s.\n\n -- Portcullis <security@portcullis.invalid>  %s\n' \
    "$version" "$version" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")" | gzip -9n >"$stage/usr/share/doc/portcullis/changelog.gz"

# Depends: from the binaries' real shared-library needs (dpkg-shlibdeps), plus the programs the
# maintainer scripts and PAM stack call, and the web terminal's component (node-xterm, served from its Debian path).
shlibs=$(cd "$out" && mkdir -p shlibdeps/debian && printf 'Source: portcullis\n\nPackage: portcullis\nArchitecture: any\n' >shlibdeps/debian/control \
    && cd shlibdeps && dpkg-shlibdeps -O "$stage/usr/bin/portcullis" "$stage/usr/bin/portcullis-privd" "$stage/usr/bin/pcctl" "$stage/usr/bin/pcsh" \
       "$stage/usr/lib/portcullis/portcullis-exec" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
rm -rf "$out/shlibdeps"
[ -n "$shlibs" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies (is dpkg-dev installed?)" >&2; exit 1; }

# As dpkg-gencontrol counts it (KiB per file, rounded up, and one per directory), from file sizes:
# `du` counts the blocks the filesystem happened to give, which differ from one build to the next.
installed_size=$(find "$stage" -path "$stage/DEBIAN" -prune -o \( -type f -printf 'f %s\n' \) -o \( -type d -printf 'd 0\n' \) \
    | awk '{ kib += ($1 == "f") ? int(($2 + 1023) / 1024) : 1 } END { print kib }')
cat >"$stage/DEBIAN/control" <<CONTROL
Package: portcullis
Version: $version
Architecture: $arch
Maintainer: Portcullis <security@portcullis.invalid>
Depends: $shlibs, libpam-modules, openssl, adduser, passwd, node-xterm, debconf (>= 0.5) | debconf-2.0
Recommends: openssh-sftp-server
Suggests: sudo
Section: net
Priority: optional
Installed-Size: $installed_size
Description: FIPS-oriented SSH compliance gateway
 Portcullis puts an SSH certificate authority, a proxy and recorded, controlled
 sessions between people and servers, with a sealed audit log and FedRAMP
 evidence. Cryptography runs through the OpenSSL FIPS provider; everything it
 stores is sealed with AES-256-GCM.
 .
 The bundled fips.so is built from the distribution's OpenSSL source: it acts as
 a FIPS provider but is not a CMVP-validated module. Point fips.openssl_config
 and fips.modules_dir at a validated module for a validated deployment.
CONTROL

cat >"$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
# Registers the purge question (for a plain dpkg -i, which does not preconfigure).
. /usr/share/debconf/confmodule
if [ "$1" = configure ]; then
    # The daemon runs as this system user (portcullis.service); the broker serves only it.
    getent passwd portcullis >/dev/null || adduser --quiet --system --group --home /var/lib/portcullis \
        --no-create-home --shell /usr/sbin/nologin portcullis
    # The provider's self-test configuration is made on this machine (OpenSSL asks for it).
    /usr/lib/portcullis/fips/build-fips-provider.sh --configure-only /usr/lib/portcullis/fips >&2
    install -d -m 0750 -o root -g portcullis /etc/portcullis
    # Made only if missing: on an existing one, systemd's StateDirectory= hands over at start
    # whatever inside is not the daemon's (a root-made install or restore), which it skips when
    # the top level already matches.
    [ -d /var/lib/portcullis ] || install -d -m 0700 -o portcullis -g portcullis /var/lib/portcullis
    # The key-encryption key, made once. Where systemd runs, an encrypted credential bound to this
    # host (its TPM2, else its credential secret), given to the service by a drop-in; otherwise,
    # or if that fails, a key file only the daemon's user can read.
    credential=/etc/credstore.encrypted/portcullis-kek
    dropin=/etc/systemd/system/portcullis.service.d/portcullis-kek.conf
    if [ ! -e /etc/portcullis/kek ] && [ ! -e "$credential" ]; then
        if [ -d /run/systemd/system ] && command -v systemd-creds >/dev/null && portcullis configure --kek-credential >/dev/null; then
            :
        else
            portcullis configure --kek-file /etc/portcullis/kek >/dev/null
        fi
    fi
    # The drop-in follows the credential both ways (it is also rewritten if `systemctl revert` removed it).
    if [ -e "$credential" ]; then
        mkdir -p "${dropin%/*}"
        printf '# Written by the portcullis package: the KEK, decrypted for this service only.\n[Service]\nLoadCredentialEncrypted=portcullis-kek:%s\n' \
            "$credential" >"$dropin"
    else
        rm -f "$dropin"
    fi
    # The configuration is root's and only readable by the daemon; the data and a KEK file are the
    # daemon's own (it refuses them owned by anyone else; StateDirectory= hands the data directory
    # over at each start, and pcctl run as root acts as its owner).
    if [ -f /etc/portcullis/portcullis.yaml ]; then
        chown root:portcullis /etc/portcullis/portcullis.yaml
        chmod 0640 /etc/portcullis/portcullis.yaml
    else
        echo "portcullis: /etc/portcullis/portcullis.yaml was deleted (dpkg does not bring back a deleted conffile); restore it with: apt-get install --reinstall -o Dpkg::Options::=--force-confmiss portcullis" >&2
    fi
    if [ -f /etc/portcullis/kek ]; then chown portcullis:portcullis /etc/portcullis/kek && chmod 0600 /etc/portcullis/kek; fi
    # As root: it decrypts the credential, then acts as the daemon's user.
    portcullis selftest --config /etc/portcullis/portcullis.yaml >&2 || \
        echo "portcullis: the self-test failed; fix the reported problem before starting the service" >&2
    # Enabled always; started (or, on an upgrade, restarted) only where systemd runs — never in
    # a chroot or an image build. Type=notify: the start returns once the daemon is listening.
    db_stop
    deb-systemd-helper enable portcullis-privd.service >/dev/null || true
    deb-systemd-helper enable portcullis.service >/dev/null || true
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
        if [ -n "$2" ]; then
            deb-systemd-invoke restart portcullis-privd.service portcullis.service >/dev/null || true
        else
            deb-systemd-invoke start portcullis-privd.service portcullis.service >/dev/null || true
        fi
    fi
fi
POSTINST

cat >"$stage/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    deb-systemd-invoke stop portcullis.service portcullis-privd.service >/dev/null || true
fi
PRERM

# Purge asks before deleting evidence (debconf, default no: an audit trail is evidence, and
# noninteractive purges keep it).
cat >"$stage/DEBIAN/templates" <<'TEMPLATES'
Template: portcullis/purge-data
Type: boolean
Default: false
Description: Delete the audit trail, session recordings and their key?
 Purging the portcullis package removes its configuration. The data directory
 /var/lib/portcullis holds the sealed audit log and the session recordings,
 which are evidence for your compliance reviews; the key-encryption key is the
 only way to read them.
 .
 If that evidence is kept elsewhere or no longer needed, the data directory
 and the key can be deleted now. By default both are kept.
TEMPLATES

# Nothing to ask at installation: the one question is postrm's, at purge.
cat >"$stage/DEBIAN/config" <<'CONFIG'
#!/bin/sh
set -e
. /usr/share/debconf/confmodule
CONFIG

cat >"$stage/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
# The generated provider configuration goes with the package; purge removes the configuration
# and the KEK's service drop-in, and the data and the KEK only when the administrator says so.
if [ "$1" = remove ] || [ "$1" = purge ]; then
    rm -rf /usr/lib/portcullis/fips/ssl
fi
if [ "$1" = purge ]; then
    rm -f /etc/portcullis/portcullis.yaml /etc/systemd/system/portcullis.service.d/portcullis-kek.conf
    rmdir /etc/systemd/system/portcullis.service.d 2>/dev/null || true
    answer=false
    if [ -e /usr/share/debconf/confmodule ]; then
        . /usr/share/debconf/confmodule
        db_input high portcullis/purge-data || true
        db_go || true
        db_get portcullis/purge-data && answer="$RET"
        db_purge || true
    fi
    # The key goes only when the administrator says so, even with no data directory here (the
    # data may live elsewhere, or in backups the key still opens).
    if [ "$answer" = true ]; then
        rm -rf /var/lib/portcullis /var/log/portcullis
        rm -f /etc/portcullis/kek /etc/credstore.encrypted/portcullis-kek
        rmdir /etc/portcullis 2>/dev/null || true
    else
        echo "portcullis: kept the data in /var/lib/portcullis, if any (the audit trail and recordings are evidence), and the key that opens it ($(ls -d /etc/portcullis/kek /etc/credstore.encrypted/portcullis-kek 2>/dev/null | tr '\n' ' ')); remove both to delete them" >&2
    fi
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
POSTRM
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm" "$stage/DEBIAN/config"

deb=$out/portcullis_${version}_${arch}.deb
find "$stage" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
rm -rf "$stage"
echo "build-deb: $deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,/Depends:/p'

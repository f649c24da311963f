#!/usr/bin/env bash
# The proxy in both modes against OpenSSH's own jump (ssh -J through Debian's sshd to the same
# sshd), same machine, same run, set up the same way as bench/ssh-node.sh (certificate auth from
# our user CA, P-384 host certificates, ecdh-sha2-nistp256, aes128-gcm@openssh.com, no PAM):
#   - passthrough: ssh -J through the proxy to a Portcullis node (launcher, cgroup, recording)
#   - terminating: ssh -p PROXY root%sshd@proxy: the proxy terminates, records, and connects to
#     that same sshd with a certificate it mints
# Measured: median wall time of connect + auth + exec `true`, over RUNS (50); throughput both
# ways, SIZE (1G) each: upload of zeros, download of zeros and of random bytes (exec), download
# of zeros through a terminal (interactive; each side's connect time taken off), the median of
# RATE_ROUNDS (3) runs, the three paths interleaved, with the lowest and highest run's ratio; the
# daemon's CPU seconds per GiB, the whole machine's per path, and the daemon's peak RSS. Targets:
# ≤ 1.5× the time (issue 7), ≥ 0.9× the throughput of ssh -J through sshd (issue 19). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
FIPS_PREFIX=${FIPS_PREFIX:-$root/.build-fips/prefix}
RUNS=${RUNS:-50}
SIZE=${SIZE:-1G}
source bench/lib/ssh-measure.sh
require_sshd

work=$(mktemp -d /tmp/portcullis-proxybench.XXXXXX)
RANDOM_FILE=$work/random
head -c "$SIZE" /dev/urandom >"$RANDOM_FILE"
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

swift build -c release --product ssh-node-bench >/dev/null
swift build -c release --product portcullis-exec >/dev/null
bin=$(swift build -c release --show-bin-path)
ssh-keygen -q -t ecdsa -b 256 -N '' -f "$work/user"
ssh-keygen -q -t ecdsa -b 384 -N '' -f "$work/hostkey"
sshd_port=$(free_port)
# Our host CA certifies the sshd's key (the proxy verifies the host in terminating mode).
"$bin/ssh-node-bench" --fips-prefix "$FIPS_PREFIX" --key "$work/user" --ca-out "$work/user_ca.pub" \
    --launcher "$bin/portcullis-exec" --work "$work" --proxy yes --sshd "127.0.0.1:$sshd_port" --sshd-key "$work/hostkey" \
    >"$work/ours.out" 2>"$work/ours.log" & pids+=($!)
for _ in $(seq 300); do grep -q '^proxy' "$work/ours.out" 2>/dev/null && break; sleep 0.1; done
proxy_port=$(awk '/^proxy/ {print $2}' "$work/ours.out")
[ -n "$proxy_port" ] || { echo "the node and proxy did not start:"; cat "$work/ours.log"; exit 1; }

cat >"$work/sshd_config" <<CFG
Port $sshd_port
ListenAddress 127.0.0.1
ListenAddress ::1
HostKey $work/hostkey
HostCertificate $work/hostkey-cert.pub
TrustedUserCAKeys $work/user_ca.pub
AuthorizedKeysFile none
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
PidFile $work/sshd.pid
KexAlgorithms ecdh-sha2-nistp256
Ciphers aes128-gcm@openssh.com
LogLevel ERROR
CFG
/usr/sbin/sshd -D -f "$work/sshd_config" -E "$work/sshd.log" & pids+=($!)
sleep 0.5

# -F is handed to the jump's own ssh too, so both hops use these settings.
cat >"$work/ssh_config" <<CFG
Host *
  BatchMode yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  IdentitiesOnly yes
  LogLevel ERROR
  IdentityFile $work/user
  CertificateFile $work/user-cert.pub
  KexAlgorithms ecdh-sha2-nistp256
  HostKeyAlgorithms ecdsa-sha2-nistp384-cert-v01@openssh.com
  Ciphers aes128-gcm@openssh.com
CFG

# median_ms/mib_per_s run "${client[@]}" -p PORT root@127.0.0.1: the jump and the target are in
# the client array; the port given is the target's.
passthrough() { client=(ssh -F "$work/ssh_config" -J "root@127.0.0.1:$proxy_port" -o "HostName=bench"); }
baseline() { client=(ssh -F "$work/ssh_config" -J "root@127.0.0.1:$sshd_port" -o "HostName=localhost"); }  # (127.0.0.1 again would be a "jumphost loop")
# Terminating mode: no jump; the proxy's user name carries the login and the host.
terminating() { client=(ssh -F "$work/ssh_config" -o "User=root%sshd"); }
ours_target=$(awk '/^listening/ {print $2}' "$work/ours.out")
passthrough
"${client[@]}" -p "$ours_target" root@127.0.0.1 true || { echo "cannot jump through the proxy:"; cat "$work/ours.log"; exit 1; }
ours_connect=$(median_ms "$ours_target")
baseline
"${client[@]}" -p "$sshd_port" root@127.0.0.1 true || { echo "cannot jump through sshd:"; cat "$work/sshd.log"; exit 1; }
sshd_connect=$(median_ms "$sshd_port")
terminating
"${client[@]}" -p "$proxy_port" 127.0.0.1 true || { echo "cannot reach sshd through the proxy in terminating mode:"; cat "$work/ours.log"; exit 1; }
term_connect=$(median_ms_as "$proxy_port" 127.0.0.1)
ours_pid=${pids[0]}
size_gib=$(awk -v s="$SIZE_BYTES" 'BEGIN { print s / 1073741824 }')
# Each transfer RATE_ROUNDS times (3), the three paths interleaved, so a slow spell of this
# shared machine falls on all: the median rate of each; the daemon's CPU seconds per GiB (the
# one process that is both proxy and node here; sshd's side has no single daemon, its
# per-connection processes come and go), and the whole machine's busy CPU seconds per GiB on
# each path (client, jump, server and command together: on two cores they compete).
ROUNDS=$(( ${RATE_ROUNDS:-3} > 0 ? ${RATE_ROUNDS:-3} : 1 ))
declare -A rate cpu machine rounds
transfer() {  # path direction: one run, its rate and CPU added to the path's samples
    local path=$1 direction=$2 daemon_before busy_before sample
    daemon_before=$(cpu_seconds "$ours_pid"); busy_before=$(machine_busy_seconds)
    case $path in
        passthrough) passthrough; sample=$(mib_per_s "$direction" "$ours_target" "$ours_connect") ;;
        sshd) baseline; sample=$(mib_per_s "$direction" "$sshd_port" "$sshd_connect") ;;
        terminating) terminating; sample=$(mib_per_s_as_direction "$direction" "$proxy_port" 127.0.0.1 "$term_connect") ;;
    esac
    samples[$path]+=" $sample"
    daemon[$path]=$(awk -v t="${daemon[$path]:-0}" -v a="$daemon_before" -v b="$(cpu_seconds "$ours_pid")" 'BEGIN { print t + b - a }')
    busy[$path]=$(awk -v t="${busy[$path]:-0}" -v a="$busy_before" -v b="$(machine_busy_seconds)" 'BEGIN { print t + b - a }')
}
per_gib() { awk -v t="$1" -v n="$ROUNDS" -v g="$size_gib" 'BEGIN { printf "%.2f", t / n / g }'; }
for direction in up down down-random pty; do
    declare -A samples=() daemon=() busy=()
    for _ in $(seq "$ROUNDS"); do
        for path in passthrough sshd terminating; do transfer "$path" "$direction"; done
    done
    for path in passthrough sshd terminating; do
        # shellcheck disable=SC2086 # the samples are words
        rate[$path,$direction]=$(median ${samples[$path]})
        rounds[$path,$direction]=$(ratio_range "${samples[$path]}" "${samples[sshd]}")
        cpu[$path,$direction]=$(per_gib "${daemon[$path]}"); machine[$path,$direction]=$(per_gib "${busy[$path]}")
    done
done
ours_rss=$(peak_rss_mib "$ours_pid")
recordings=$(find "$work/recordings" -mindepth 1 -maxdepth 1 -type d | wc -l)

echo "machine: $(nproc) cores; client $(ssh -V 2>&1); sshd from openssh-server; proxy and node in FIPS mode (release build)"
echo "passthrough: ssh -J proxy -> node (launcher, cgroup, recording); terminating: proxy (recording) -> sshd; baseline: ssh -J sshd -> the same sshd"
echo "rates: the median of $ROUNDS runs each, the three paths interleaved; rounds: the lowest and highest run's ratio"
printf "%-46s %10s %10s %7s  %s\n" "measurement" "portcullis" "ssh -J" "ratio" "target"
printf "%-46s %10s %10s %7s  %s\n" "jump+connect+auth+exec true, median ms ($RUNS)" "$ours_connect" "$sshd_connect" "$(ratio "$ours_connect" "$sshd_connect")" "<= 1.50"
declare -A label=([up]="upload zeros" [down]="download zeros" [down-random]="download random" [pty]="download zeros, PTY")
for mode in passthrough terminating; do
    [ "$mode" = terminating ] && printf "%-46s %10s %10s %7s  %s\n" "terminating: connect+exec true, median ms" "$term_connect" "$sshd_connect" "$(ratio "$term_connect" "$sshd_connect")" "<= 1.50"
    for direction in up down down-random pty; do
        printf "%-46s %10s %10s %7s  %s\n" "$mode: ${label[$direction]} $SIZE, MiB/s" "${rate[$mode,$direction]}" "${rate[sshd,$direction]}" \
            "$(ratio "${rate[$mode,$direction]}" "${rate[sshd,$direction]}")" \
            ">= 0.90  (rounds ${rounds[$mode,$direction]}; CPU s/GiB: daemon ${cpu[$mode,$direction]}; machine ${machine[$mode,$direction]} vs ${machine[sshd,$direction]})"
    done
done
pty_floor
echo "the daemon (proxy and node in one process) recorded $recordings sessions; its peak RSS after the transfers: $ours_rss MiB (limit: 512 MiB)"

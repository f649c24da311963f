#!/usr/bin/env bash
# Our SSH engine against Debian's sshd, same machine, same run, same algorithms
# (ecdh-sha2-nistp256, ecdsa-sha2-nistp256 host key, aes128-gcm@openssh.com), certificate auth
# from the same CA, OpenSSH 9.2 client for both:
#   - median wall time of connect + auth + exec `true`, over RUNS (50) connections
#   - 1 GiB download and upload (SIZE, default 1G) through `head -c` / `cat`
# Targets from issue 3: connect ≤ 0.5× sshd, throughput ≥ 1.0× sshd. Needs root (sshd).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
FIPS_PREFIX=${FIPS_PREFIX:-$root/.build-fips/prefix}
RUNS=${RUNS:-50}
SIZE=${SIZE:-1G}

source bench/lib/ssh-measure.sh
require_sshd
work=$(mktemp -d /tmp/portcullis-sshbench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

ssh-keygen -q -t ecdsa -b 384 -N '' -f "$work/ca"
ssh-keygen -q -t ecdsa -b 256 -N '' -f "$work/user"
ssh-keygen -q -s "$work/ca" -I bench -n root -V +1h "$work/user.pub"
ssh-keygen -q -t ecdsa -b 256 -N '' -f "$work/hostkey"

algos=(-o KexAlgorithms=ecdh-sha2-nistp256 -o HostKeyAlgorithms=ecdsa-sha2-nistp256 -o Ciphers=aes128-gcm@openssh.com)
cat >"$work/sshd_config" <<CFG
Port 0
ListenAddress 127.0.0.1
HostKey $work/hostkey
TrustedUserCAKeys $work/ca.pub
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $work/sshd.pid
KexAlgorithms ecdh-sha2-nistp256
HostKeyAlgorithms ecdsa-sha2-nistp256
Ciphers aes128-gcm@openssh.com
LogLevel ERROR
CFG
sshd_port=$(free_port)
sed -i "s/^Port 0/Port $sshd_port/" "$work/sshd_config"
/usr/sbin/sshd -D -f "$work/sshd_config" -E "$work/sshd.log" & pids+=($!)

swift build -c release --product ssh-engine-bench >/dev/null
bench=$(swift build -c release --show-bin-path)/ssh-engine-bench
"$bench" --fips-prefix "$FIPS_PREFIX" --ca "$work/ca.pub" >"$work/ours.out" 2>"$work/ours.log" & pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/ours.out" 2>/dev/null && break; sleep 0.1; done
ours_port=$(awk '/listening/ {print $2}' "$work/ours.out")
[ -n "$ours_port" ] || { echo "our server did not start:"; cat "$work/ours.log"; exit 1; }
sleep 0.5

client=(ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes
        -o LogLevel=ERROR -i "$work/user" -o CertificateFile="$work/user-cert.pub" "${algos[@]}")

ours_connect=$(median_ms "$ours_port"); sshd_connect=$(median_ms "$sshd_port")
ours_down=$(mib_per_s down "$ours_port"); sshd_down=$(mib_per_s down "$sshd_port")
ours_up=$(mib_per_s up "$ours_port"); sshd_up=$(mib_per_s up "$sshd_port")

echo "machine: $(nproc) cores; client $(ssh -V 2>&1); sshd from openssh-server; ours in FIPS mode (release build)"
echo "algorithms: ecdh-sha2-nistp256, ecdsa-sha2-nistp256, aes128-gcm@openssh.com; certificate auth"
printf "%-42s %10s %10s %7s  %s\n" "measurement" "portcullis" "sshd" "ratio" "target"
printf "%-42s %10s %10s %7s  %s\n" "connect+auth+exec true, median ms ($RUNS)" "$ours_connect" "$sshd_connect" "$(ratio "$ours_connect" "$sshd_connect")" "<= 0.50"
printf "%-42s %10s %10s %7s  %s\n" "download $SIZE, MiB/s" "$ours_down" "$sshd_down" "$(ratio "$ours_down" "$sshd_down")" ">= 1.00"
printf "%-42s %10s %10s %7s  %s\n" "upload $SIZE, MiB/s" "$ours_up" "$sshd_up" "$(ratio "$ours_up" "$sshd_up")" ">= 1.00"

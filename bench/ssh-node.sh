#!/usr/bin/env bash
# The node service against Debian's sshd, same machine, same run, set up the same way:
# certificate auth from the same user CA (ours: sshd trusts its TrustedUserCAKeys line), an
# ECDSA P-384 host key with a host certificate, ecdh-sha2-nistp256 and aes128-gcm@openssh.com,
# no PAM; the OpenSSH 9.2 client for both. The node runs as it ships: FIPS mode, every session
# through portcullis-exec in its own cgroup, recorded, and audited.
#   - median wall time of connect + auth + exec `true`, over RUNS (50) sequential connections
#   - throughput, both directions: upload of zeros, download of zeros and of random bytes (exec),
#     download of zeros through a terminal (an interactive session), SIZE (1G) each, the median
#     of RATE_ROUNDS (3) interleaved with sshd's, and the lowest and highest round's ratio (this
#     shared machine's spread); the node's CPU seconds per GiB moved (the daemon's process), the
#     whole machine's on each side, and the node's peak RSS, also over PARALLEL (10) recorded
#     downloads at once of zeros and of random bytes
# Targets: connect ≤ 0.25× sshd (issue 19), throughput ≥ 0.9× sshd each way. Needs root (sshd, setuid, cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
FIPS_PREFIX=${FIPS_PREFIX:-$root/.build-fips/prefix}
RUNS=${RUNS:-50}
SIZE=${SIZE:-1G}
source bench/lib/ssh-measure.sh
require_sshd

work=$(mktemp -d /tmp/portcullis-nodebench.XXXXXX)
cgroup2=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.2
    rmdir "$cgroup2"/portcullis-bench-$$/portcullis/* "$cgroup2/portcullis-bench-$$/portcullis" "$cgroup2/portcullis-bench-$$" 2>/dev/null || true
    rm -f "/etc/pam.d/portcullis-bench-$$"
    rm -rf "$work"
}
trap cleanup EXIT

swift build -c release --product ssh-node-bench >/dev/null
swift build -c release --product portcullis-exec >/dev/null
swift build -c release --product portcullis-privd >/dev/null
bin=$(swift build -c release --show-bin-path)
ssh-keygen -q -t ecdsa -b 256 -N '' -f "$work/user"
RANDOM_FILE=$work/random
head -c "$SIZE" /dev/urandom >"$RANDOM_FILE"
chmod 644 "$RANDOM_FILE"
# Sessions through the root broker, as the installed appliance starts them (the bench's node
# runs as root itself, so the broker serves uid 0; its session cgroups go under a cgroup of ours).
mkdir -p "$cgroup2/portcullis-bench-$$"
"$bin/portcullis-privd" --socket "$work/privd.sock" --user 0 --launcher "$bin/portcullis-exec" --permit-root-login \
    --cgroup-root "$cgroup2/portcullis-bench-$$" 2>"$work/privd.log" & pids+=($!)
for _ in $(seq 100); do [ -S "$work/privd.sock" ] && break; sleep 0.05; done
"$bin/ssh-node-bench" --fips-prefix "$FIPS_PREFIX" --key "$work/user" --ca-out "$work/user_ca.pub" \
    --launcher "$bin/portcullis-exec" --broker "$work/privd.sock" --work "$work" >"$work/ours.out" 2>"$work/ours.log" & pids+=($!)
for _ in $(seq 300); do grep -q listening "$work/ours.out" 2>/dev/null && break; sleep 0.1; done
ours_port=$(awk '/listening/ {print $2}' "$work/ours.out")
[ -n "$ours_port" ] || { echo "the node did not start:"; cat "$work/ours.log"; exit 1; }

ssh-keygen -q -t ecdsa -b 384 -N '' -f "$work/host_ca"
ssh-keygen -q -t ecdsa -b 384 -N '' -f "$work/hostkey"
ssh-keygen -q -s "$work/host_ca" -h -I sshd -n 127.0.0.1 -V +1h "$work/hostkey.pub"
sshd_port=$(free_port)
cat >"$work/sshd_config" <<CFG
Port $sshd_port
ListenAddress 127.0.0.1
HostKey $work/hostkey
HostCertificate $work/hostkey-cert.pub
TrustedUserCAKeys $work/user_ca.pub
AuthorizedKeysFile none
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $work/sshd.pid
KexAlgorithms ecdh-sha2-nistp256
Ciphers aes128-gcm@openssh.com
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel ERROR
CFG
/usr/sbin/sshd -D -f "$work/sshd_config" -E "$work/sshd.log" & pids+=($!)
sleep 0.5

client=(ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes
        -o LogLevel=ERROR -i "$work/user" -o CertificateFile="$work/user-cert.pub"
        -o KexAlgorithms=ecdh-sha2-nistp256 -o HostKeyAlgorithms=ecdsa-sha2-nistp384-cert-v01@openssh.com -o Ciphers=aes128-gcm@openssh.com)

"${client[@]}" -p "$ours_port" root@127.0.0.1 true || { echo "cannot reach the node:"; cat "$work/ours.log"; exit 1; }
"${client[@]}" -p "$sshd_port" root@127.0.0.1 true || { echo "cannot reach sshd:"; cat "$work/sshd.log"; exit 1; }

ours_connect=$(median_ms "$ours_port"); sshd_connect=$(median_ms "$sshd_port")
ours_pid=${pids[1]}
size_gib=$(awk -v s="$SIZE_BYTES" 'BEGIN { print s / 1073741824 }')
# Each transfer RATE_ROUNDS times (3), the node's and sshd's interleaved, so a slow spell of
# this shared machine falls on both: the median rate of each, the node's CPU seconds per GiB
# (mean), and the whole machine's busy CPU seconds per GiB on each side (client, command and
# server together — and whatever else runs then; on two cores they compete, so this is where a
# ratio comes from).
ROUNDS=$(( ${RATE_ROUNDS:-3} > 0 ? ${RATE_ROUNDS:-3} : 1 ))
declare -A ours_rate sshd_rate ours_cpu ours_machine sshd_machine rounds
for direction in up down down-random pty; do
    ours_samples=(); sshd_samples=(); node_cpu=0; ours_busy=0; sshd_busy=0
    for _ in $(seq "$ROUNDS"); do
        before=$(cpu_seconds "$ours_pid"); busy=$(machine_busy_seconds)
        ours_samples+=($(mib_per_s "$direction" "$ours_port" "$ours_connect"))
        node_cpu=$(awk -v t="$node_cpu" -v a="$before" -v b="$(cpu_seconds "$ours_pid")" 'BEGIN { print t + b - a }')
        after=$(machine_busy_seconds)
        ours_busy=$(awk -v t="$ours_busy" -v a="$busy" -v b="$after" 'BEGIN { print t + b - a }')
        busy=$after
        sshd_samples+=($(mib_per_s "$direction" "$sshd_port" "$sshd_connect"))
        sshd_busy=$(awk -v t="$sshd_busy" -v a="$busy" -v b="$(machine_busy_seconds)" 'BEGIN { print t + b - a }')
    done
    ours_rate[$direction]=$(median "${ours_samples[@]}"); sshd_rate[$direction]=$(median "${sshd_samples[@]}")
    rounds[$direction]=$(ratio_range "${ours_samples[*]}" "${sshd_samples[*]}")
    per_gib() { awk -v t="$1" -v n="$ROUNDS" -v g="$size_gib" 'BEGIN { printf "%.2f", t / n / g }'; }
    ours_cpu[$direction]=$(per_gib "$node_cpu"); ours_machine[$direction]=$(per_gib "$ours_busy"); sshd_machine[$direction]=$(per_gib "$sshd_busy")
done
ours_rss=$(peak_rss_mib "$ours_pid")
# What the disk under the recordings takes, written as the recorder writes (direct, 4 MiB):
# a recorded download cannot outrun it.
disk_mib=$(dd if=/dev/zero of="$work/disk-probe" bs=4M count=256 oflag=direct 2>&1 | awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") { printf "%.0f", 1073741824 / $(i - 1) / 1048576 } }')
rm -f "$work/disk-probe"
# Memory over parallel recorded downloads: PARALLEL (10) at once, SIZE each, of zeros (their
# chunks compress) and then of random bytes (sealed whole: the most a recording holds).
PARALLEL=${PARALLEL:-10}
parallel_downloads() {  # command: the node's peak RSS over PARALLEL downloads of its output
    local parallel=() p
    reset_peak_rss "$ours_pid"
    for i in $(seq "$PARALLEL"); do ("${client[@]}" -p "$ours_port" root@127.0.0.1 "$1" | wc -c >"$work/parallel-$i") & parallel+=($!); done
    for p in "${parallel[@]}"; do wait "$p"; done
    for i in $(seq "$PARALLEL"); do
        [ "$(cat "$work/parallel-$i")" = "$SIZE_BYTES" ] || { echo "a parallel download ($1) moved $(cat "$work/parallel-$i") bytes, not $SIZE_BYTES" >&2; exit 1; }
    done
    peak_rss_mib "$ours_pid"
}
parallel_rss=$(parallel_downloads "head -c $SIZE /dev/zero")
parallel_random_rss=$(parallel_downloads "cat $RANDOM_FILE")
recordings=$(find "$work/recordings" -mindepth 1 -maxdepth 1 -type d | wc -l)

# With PAM, both sides: the node with the shipped service file (packaging/pam.d/portcullis),
# sshd with UsePAM yes and Debian's /etc/pam.d/sshd.
pam_service=portcullis-bench-$$
cp packaging/pam.d/portcullis "/etc/pam.d/$pam_service"
mkdir -p "$work/pam"
"$bin/ssh-node-bench" --fips-prefix "$FIPS_PREFIX" --key "$work/user" --ca-out "$work/user_ca_pam.pub" \
    --launcher "$bin/portcullis-exec" --broker "$work/privd.sock" --pam "$pam_service" --work "$work/pam" >"$work/ours-pam.out" 2>"$work/ours-pam.log" & pids+=($!)
for _ in $(seq 300); do grep -q listening "$work/ours-pam.out" 2>/dev/null && break; sleep 0.1; done
ours_pam_port=$(awk '/listening/ {print $2}' "$work/ours-pam.out")
[ -n "$ours_pam_port" ] || { echo "the node with PAM did not start:"; cat "$work/ours-pam.log"; exit 1; }
sshd_pam_port=$(free_port)
sed -e "s/^Port .*/Port $sshd_pam_port/" -e "s/^UsePAM no/UsePAM yes/" -e "s|^PidFile .*|PidFile $work/sshd-pam.pid|" \
    -e "s|^TrustedUserCAKeys .*|TrustedUserCAKeys $work/user_ca_pam.pub|" "$work/sshd_config" >"$work/sshd_pam_config"
/usr/sbin/sshd -D -f "$work/sshd_pam_config" -E "$work/sshd-pam.log" & pids+=($!)
sleep 0.5
"${client[@]}" -p "$ours_pam_port" root@127.0.0.1 true || { echo "cannot reach the node with PAM:"; cat "$work/ours-pam.log"; exit 1; }
"${client[@]}" -p "$sshd_pam_port" root@127.0.0.1 true || { echo "cannot reach sshd with PAM:"; cat "$work/sshd-pam.log"; exit 1; }
ours_pam_connect=$(median_ms "$ours_pam_port"); sshd_pam_connect=$(median_ms "$sshd_pam_port")

echo "machine: $(nproc) cores; client $(ssh -V 2>&1); sshd from openssh-server; the node in FIPS mode (release build)"
echo "both: ecdh-sha2-nistp256, ecdsa-sha2-nistp384 host certificate, aes128-gcm@openssh.com, user certificate; no PAM but in the last row"
echo "the node recorded $recordings sessions and audited each (launcher + cgroup per session)"
echo "rates: the median of $ROUNDS runs each, the node's and sshd's interleaved; rounds: the lowest and highest run's ratio"
printf "%-42s %10s %10s %7s  %s\n" "measurement" "node" "sshd" "ratio" "target"
printf "%-42s %10s %10s %7s  %s\n" "connect+auth+exec true, median ms ($RUNS)" "$ours_connect" "$sshd_connect" "$(ratio "$ours_connect" "$sshd_connect")" "<= 0.25"
declare -A label=([up]="upload zeros (cat >/dev/null)" [down]="download zeros (head /dev/zero)" [down-random]="download random (cat file)" [pty]="download zeros through a PTY")
for direction in up down down-random pty; do
    printf "%-42s %10s %10s %7s  %s\n" "${label[$direction]} $SIZE, MiB/s" "${ours_rate[$direction]}" "${sshd_rate[$direction]}" \
        "$(ratio "${ours_rate[$direction]}" "${sshd_rate[$direction]}")" \
        ">= 0.90  (rounds ${rounds[$direction]}; CPU s/GiB: node ${ours_cpu[$direction]}; machine ${ours_machine[$direction]} vs ${sshd_machine[$direction]})"
done
pty_floor
echo "the disk under the recordings writes ${disk_mib} MiB/s (dd, O_DIRECT, 4 MiB blocks): the ceiling of a recorded download"
echo "the node's peak RSS: $ours_rss MiB over the transfers above; $parallel_rss MiB over $PARALLEL parallel recorded downloads of $SIZE of zeros," \
    "$parallel_random_rss MiB over $PARALLEL of random bytes (limit: 512 MiB)"
printf "%-42s %10s %10s %7s  %s\n" "with PAM: connect+auth+exec true, median ms" "$ours_pam_connect" "$sshd_pam_connect" "$(ratio "$ours_pam_connect" "$sshd_pam_connect")" "<= 0.60"

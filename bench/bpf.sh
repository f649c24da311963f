#!/usr/bin/env bash
# Enhanced recording on this kernel (root): 20,000 execs of /bin/true in a monitored cgroup,
# every event read as the broker reads them, against the same loop in an unmonitored cgroup, in
# interleaved rounds of one run. Targets (issue 18): 20,000 / 20,000 events at the default ring
# size, and a wall-time overhead under 3%.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-20000}
ROUNDS=${ROUNDS:-4}
[ "$(id -u)" = 0 ] || { echo "bench-bpf needs root (BPF, cgroups)" >&2; exit 1; }
swift build -c release --product bpf-bench >/dev/null
"$(swift build -c release --show-bin-path)/bpf-bench" "$COUNT" "$ROUNDS"

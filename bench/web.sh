#!/usr/bin/env bash
# The web console under load, against a real appliance whose sealed audit log holds EVENTS
# events (default 1,000,000, generated once by report-bench):
#   - the audit page's latency (first page, a filtered page, a page ten deep by its cursor),
#     p50/p95 of REQUESTS requests; baseline: `pcctl audit search` over the same log. Target p95 < 200 ms.
#   - TERMINALS (default 50) web terminals typing at once on the appliance's node, each as a
#     person types (a key every 100-200 ms): a keystroke's round trip from the socket to its
#     echo, p50/p95/max; one terminal alone; baseline: the same keystrokes through OpenSSH's ssh
#     to the same node. Target p95 < 50 ms. And a stress: every terminal a key every 20 ms.
#   - the daemon's resident memory before, with every terminal open, and after.
# Runs as root (the node logs in as root); drives the console with bench/web-bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
FIPS_PREFIX=${FIPS_PREFIX:-$PWD/.build-fips/prefix}
EVENTS=${EVENTS:-1000000}
TERMINALS=${TERMINALS:-50}
KEYSTROKES=${KEYSTROKES:-100}
REQUESTS=${REQUESTS:-100}
# debug for a quick check of the script itself; the numbers are release's.
BUILD=${BUILD:-release}
[ "$(id -u)" = 0 ] || { echo "web.sh: run as root (the terminals log in as root on the appliance's node)" >&2; exit 1; }
[ -d /usr/share/nodejs/xterm/lib ] || { echo "web.sh: Debian's node-xterm is missing (scripts/install-deps.sh build installs it)" >&2; exit 1; }

for product in portcullis pcctl report-bench; do swift build -c "$BUILD" --product "$product" >/dev/null; done
bin=$(swift build -c "$BUILD" --show-bin-path)
work=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-web-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$bin/portcullis" configure --output "$work/portcullis.yaml" --data-dir "$work/data" --fips-prefix "$FIPS_PREFIX" --kek-file "$work/kek" >/dev/null
web=$(free_port) node=$(free_port)
sed -i -e "s/0.0.0.0:3080/127.0.0.1:$web/" -e "s/0.0.0.0:3023/127.0.0.1:$(free_port)/" -e "s/0.0.0.0:3022/127.0.0.1:$node/" \
    -e "s/127.0.0.1:3025/127.0.0.1:$(free_port)/" -e 's/node_name: ""/node_name: "bench1"/' -e 's/permit_root_login: no/permit_root_login: yes/' \
    "$work/portcullis.yaml"
echo "generating $EVENTS events into the sealed audit log (once)..." >&2
"$bin/report-bench" --config "$work/portcullis.yaml" --events "$EVENTS" --export "$work/events.jsonl" --roles "$work/roles" >/dev/null
rm -f "$work/events.jsonl"

"$bin/portcullis" start --config "$work/portcullis.yaml" >"$work/daemon.log" 2>&1 & pids+=($!)
daemon=${pids[-1]}
for _ in $(seq 300); do [ -S "$work/data/admin.sock" ] && break; sleep 0.1; done
pcctl=("$bin/pcctl")
cat >"$work/role.yaml" <<ROLE
kind: role
version: v1
metadata: {name: web-bench}
spec:
  allow:
    logins: [root]
    node_labels: {"*": "*"}
    rules: {audit: [read]}
ROLE
"${pcctl[@]}" create -f "$work/role.yaml" --config "$work/portcullis.yaml" >/dev/null
# Ten terminals per person (a web session holds at most 16).
users="{}"
for n in $(seq 0 $(( (TERMINALS - 1) / 10 ))); do
    token=$("${pcctl[@]}" users add "webbench$n" --roles web-bench --config "$work/portcullis.yaml" | sed -n 's/.*--token \([^ ]*\).*/\1/p' | head -n 1)
    users=$(python3 -c 'import json, sys; u = json.loads(sys.argv[1]); u[sys.argv[2]] = sys.argv[3]; print(json.dumps(u))' "$users" "webbench$n" "$token")
done
for _ in $(seq 100); do "${pcctl[@]}" nodes ls --config "$work/portcullis.yaml" 2>/dev/null | grep -q bench1 && break; sleep 0.1; done

arguments=$(python3 -c 'import json, sys; print(json.dumps({
    "url": "https://127.0.0.1:" + sys.argv[1], "users": json.loads(sys.argv[2]), "pid": int(sys.argv[3]),
    "pcctl": [sys.argv[4]], "config": sys.argv[5], "node": "bench1", "login": "root", "work": sys.argv[6], "node_port": int(sys.argv[7]),
    "ssh": ["/usr/bin/ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
            "-o", "HostKeyAlias=bench1.portcullis"],
    "terminals": int(sys.argv[8]), "keystrokes": int(sys.argv[9]), "requests": int(sys.argv[10])}))' \
    "$web" "$users" "$daemon" "$bin/pcctl" "$work/portcullis.yaml" "$work" "$node" "$TERMINALS" "$KEYSTROKES" "$REQUESTS")
results=$(python3 bench/web-bench.py "$arguments")
get() { tr ' ' '\n' <<<"$results" | sed -n "s/^$1=//p"; }

echo "machine: $(nproc) cores, $(uname -r); audit log $(($(stat -c %s "$work/data/audit.db") / 1048576)) MiB ($EVENTS generated events)"
printf "%-62s %9s %9s %9s %12s\n" "measurement" "p50 ms" "p95 ms" "ratio p95" "target"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# "< N" and whether the p95 meets it.
target() { awk -v v="$1" -v t="$2" 'BEGIN { printf "< %d %s", t, (v < t ? "met" : "MISSED") }'; }
for page in first filtered deep; do
    base=$page; [ "$page" = deep ] && base=first
    printf "%-62s %9s %9s %9s %9s\n" "audit page, $page (vs pcctl audit search, $base)" "$(get audit_${page}_p50_ms)" "$(get audit_${page}_p95_ms)" \
        "$(ratio "$(get audit_${page}_p95_ms)" "$(get cli_${base}_p95_ms)")" "$(target "$(get audit_${page}_p95_ms)" 200)"
done
printf "%-62s %9s %9s %9s %9s\n" "baseline: pcctl audit search --limit 100" "$(get cli_first_p50_ms)" "$(get cli_first_p95_ms)" "" ""
printf "%-62s %9s %9s %9s %9s\n" "baseline: pcctl audit search, filtered" "$(get cli_filtered_p50_ms)" "$(get cli_filtered_p95_ms)" "" ""
printf "%-62s %9s %9s %9s %9s\n" "keystroke round trip, $TERMINALS web terminals typing (vs ssh)" "$(get keystroke_p50_ms)" "$(get keystroke_p95_ms)" \
    "$(ratio "$(get keystroke_p95_ms)" "$(get ssh_keystroke_p95_ms)")" "$(target "$(get keystroke_p95_ms)" 50)"
printf "%-62s %9s %9s %9s %9s\n" "stress: $TERMINALS terminals each sending a key every 20 ms" "$(get flood_keystroke_p50_ms)" "$(get flood_keystroke_p95_ms)" "" ""
printf "%-62s %9s %9s %9s %9s\n" "keystroke round trip, one web terminal (vs ssh)" "$(get one_terminal_keystroke_p50_ms)" "$(get one_terminal_keystroke_p95_ms)" \
    "$(ratio "$(get one_terminal_keystroke_p95_ms)" "$(get ssh_keystroke_p95_ms)")" ""
printf "%-62s %9s %9s %9s %9s\n" "baseline: OpenSSH ssh to the same node, one terminal" "$(get ssh_keystroke_p50_ms)" "$(get ssh_keystroke_p95_ms)" "" ""
echo "slowest keystroke of $(get keystrokes): $(get keystroke_max_ms) ms"
echo "daemon RSS: $(get rss_start_mib) MiB signed in, $(get rss_terminals_open_mib) MiB with $TERMINALS terminals open, $(get rss_end_mib) MiB after they closed"

#!/usr/bin/env bash
# `pcctl report ac-10 --format json` over EVENTS events (default 1,000,000: a month of a cluster's
# connections and sessions, generated once by report-bench):
#   - live: against a real appliance (configured by `portcullis configure`), whose sealed audit
#     log holds the events and whose storage holds the roles
#   - offline: --events (the same events as JSON lines) and --roles (the roles as YAML files)
# Each is timed RUNS times: best wall seconds, and the peak resident memory of that run
# (/usr/bin/time's "Maximum resident set size"). The two reports must be byte-identical.
# Baselines on this machine, over the same export: python3's json.loads and jq reading every line.
# Then where the time goes (report-bench --measure, --measure-live). Target: < 5 s for each report.
set -euo pipefail
cd "$(dirname "$0")/.."
FIPS_PREFIX=${FIPS_PREFIX:-$PWD/.build-fips/prefix}
EVENTS=${EVENTS:-1000000}
RUNS=${RUNS:-3}

for product in pcctl portcullis report-bench; do swift build -c release --product "$product" >/dev/null; done
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-report-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$bin/portcullis" configure --output "$work/portcullis.yaml" --data-dir "$work/data" --fips-prefix "$FIPS_PREFIX" \
    --kek-file "$work/kek" >/dev/null
echo "generating $EVENTS events into a sealed audit log and an export (once)..." >&2
results=$("$bin/report-bench" --config "$work/portcullis.yaml" --events "$EVENTS" --export "$work/events.jsonl" --roles "$work/roles")
get() { sed -n "s/^$1=//p" <<<"$results"; }
# From a day into the data (connections open then began before it) to now (after every event,
# so the live report, which reads up to --to, and the offline one see the same events).
from=$(date -u -d "$(get data_from) + 1 day" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# Best wall time of RUNS and that run's peak RSS: sets wall and rss_mb. Exit status 2 is a
# report whose control is not satisfied, which the generated roles make it.
measure() { # output-file command...
    local output=$1 status run w m
    shift
    wall="" rss_mb=""
    for run in $(seq "$RUNS"); do
        status=0
        /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$output" 2>"$work/stderr" || status=$?
        if [[ $status -ne 0 && $status -ne 2 ]]; then
            echo "failed (exit $status): $*" >&2
            cat "$work/stderr" >&2
            exit 1
        fi
        # The last line: time(1) writes "Command exited with non-zero status" before it.
        read -r w m < <(tail -n 1 "$work/time")
        if [[ -z $wall ]] || awk -v a="$w" -v b="$wall" 'BEGIN { exit !(a < b) }'; then
            wall=$w
            rss_mb=$((m / 1024))
        fi
    done
}

report=("$bin/pcctl" report ac-10 --from "$from" --to "$to" --format json)
measure "$work/live.json" "${report[@]}" --config "$work/portcullis.yaml"
live_wall=$wall live_rss=$rss_mb
measure "$work/offline.json" "${report[@]}" --events "$work/events.jsonl" --roles "$work/roles"
offline_wall=$wall offline_rss=$rss_mb
if cmp -s "$work/live.json" "$work/offline.json"; then
    identical="byte-identical ($(wc -c <"$work/live.json") bytes)"
else
    identical="DIFFERENT"
fi
measure /dev/null python3 -c 'import json, sys
for line in open(sys.argv[1], "rb"): json.loads(line)' "$work/events.jsonl"
python_wall=$wall python_rss=$rss_mb
jq_wall="-" jq_rss="-"
if command -v jq >/dev/null; then
    measure /dev/null jq -c . "$work/events.jsonl"
    jq_wall=$wall jq_rss=$rss_mb
fi

# Where the time goes: decoding one event (Foundation's JSONDecoder, what the report used, and
# ours), the engine alone over the events in memory, the live read alone.
stages=$("$bin/report-bench" --measure "$work/events.jsonl" --roles "$work/roles" --from "$from" --to "$to")
stages+=$'\n'$("$bin/report-bench" --measure-live "$work/portcullis.yaml")
stage() { sed -n "s/^$1=//p" <<<"$stages"; }

users=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["users"]))' "$work/live.json")
echo "machine: $(nproc) cores, $(uname -r); $(get events) events ($(get connections) connections, $users users in the window),"
echo "  export $(($(stat -c %s "$work/events.jsonl") / 1048576)) MiB, audit log $(($(stat -c %s "$work/data/audit.db") / 1048576)) MiB," \
    "appended in $(get append_s) s; window $from to $to; best of $RUNS"
printf "%-58s %10s %14s %10s\n" "measurement" "wall s" "peak RSS MiB" "target"
printf "%-58s %10s %14s %10s\n" "pcctl report ac-10, live (sealed audit log)" "$live_wall" "$live_rss" "< 5"
printf "%-58s %10s %14s %10s\n" "pcctl report ac-10, offline (--events, --roles)" "$offline_wall" "$offline_rss" "< 5"
printf "%-58s %10s %14s %10s\n" "baseline: python3 json.loads of every line of the export" "$python_wall" "$python_rss" ""
printf "%-58s %10s %14s %10s\n" "baseline: jq -c . over the export" "$jq_wall" "$jq_rss" ""
echo "live and offline reports: $identical"
echo "where the time goes:"
printf "  %-64s %10s\n" "decoding an event with Foundation's JSONDecoder (the report's before)" "$(stage decode_foundation_us) µs"
printf "  %-64s %10s\n" "decoding an event with AuditEvent.decode" "$(stage decode_us) µs"
printf "  %-64s %10s\n" "decoding only the fields the report reads" "$(stage decode_report_fields_us) µs"
printf "  %-64s %10s\n" "AC-10 engine alone over $(stage engine_events) evidence events in memory" "$(stage engine_s) s"
printf "  %-64s %10s\n" "live read alone: $(stage live_read_events) records opened and decoded" "$(stage live_read_s) s"
awk -v o="$offline_wall" -v l="$live_wall" -v p="$python_wall" \
    'BEGIN { printf "whole report against parsing alone in python3: offline %.2fx, live %.2fx its time\n", o / p, l / p }'
[[ $identical != DIFFERENT ]]

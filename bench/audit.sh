#!/usr/bin/env bash
# The audit store under load, with this machine's `openssl speed` beside it:
#   - sustained events/s into the store (sealed AES-256-GCM + HMAC-SHA-256 chain + signed
#     checkpoints, durable: synchronous=FULL) from WRITERS concurrent writers
#   - search latency, user + one-day range over EVENTS events (default 1,000,000)
# Targets from issue 4: >= 20,000 events/s, < 200 ms search.
set -euo pipefail
cd "$(dirname "$0")/.."
FIPS_PREFIX=${FIPS_PREFIX:-$PWD/.build-fips/prefix}
EVENTS=${EVENTS:-1000000}
WRITERS=${WRITERS:-256}

swift build -c release --product audit-bench >/dev/null
bench=$(swift build -c release --show-bin-path)/audit-bench
speed=$(env OPENSSL_CONF=$FIPS_PREFIX/ssl/openssl.cnf OPENSSL_MODULES=$FIPS_PREFIX/lib/ossl-modules \
    openssl speed -evp aes-256-gcm -bytes 1024 -seconds 2 2>/dev/null | awk '/^AES-256-GCM/ {sub(/k$/, "", $2); printf "%.0f", $2 / 1000}')
results=$("$bench" --fips-prefix "$FIPS_PREFIX" --events "$EVENTS" --writers "$WRITERS")
get() { sed -n "s/^$1=//p" <<<"$results"; }

echo "machine: $(nproc) cores, $(uname -r), $(openssl version); openssl speed aes-256-gcm (fips, 1 KiB): ${speed} MB/s"
printf "%-58s %12s %10s\n" "measurement" "portcullis" "target"
printf "%-58s %12s %10s\n" "events/s into the store ($(get events) events, $(get writers) writers)" "$(get events_per_s)" ">= 20000"
printf "%-58s %12s %10s\n" "search user + 1 day, 100 newest, median ms" "$(get search_user_day_median_ms)" "< 200"
printf "%-58s %12s %10s\n" "search user + 1 day, 100 newest, worst of 25, ms" "$(get search_user_day_max_ms)" "< 200"

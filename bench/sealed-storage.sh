#!/usr/bin/env bash
# Sealed storage and AES-256-GCM, against real baselines on this machine:
#   - AES-256-GCM MB/s through FIPSCrypto vs `openssl speed -evp aes-256-gcm` (same block size,
#     same FIPS provider, same machine, same run)
#   - sealed-backend put/get per second vs the same SQLite backend without sealing
# Usage: bench/sealed-storage.sh  (FIPS_PREFIX defaults to .build-fips/prefix)
set -euo pipefail
cd "$(dirname "$0")/.."
FIPS_PREFIX=${FIPS_PREFIX:-$PWD/.build-fips/prefix}
BLOCK=16384
SECONDS_EACH=${SECONDS_EACH:-3}

swift build -c release --product portcullis-bench >/dev/null
bench=$(swift build -c release --show-bin-path)/portcullis-bench

openssl_mbs() {  # openssl speed reports 1000s of bytes per second
    "$@" openssl speed -evp aes-256-gcm -bytes $BLOCK -seconds "$SECONDS_EACH" 2>/dev/null \
        | awk '/^AES-256-GCM/ {sub(/k$/, "", $2); printf "%.1f", $2 / 1000}'
}
ossl_fips=$(openssl_mbs env OPENSSL_CONF=$FIPS_PREFIX/ssl/openssl.cnf OPENSSL_MODULES=$FIPS_PREFIX/lib/ossl-modules)
ossl_default=$(openssl_mbs env)
results=$("$bench" --fips-prefix "$FIPS_PREFIX" --block-size $BLOCK --seconds "$SECONDS_EACH")
get() { sed -n "s/^$1=//p" <<<"$results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "machine: $(nproc) cores, $(uname -r), $(openssl version)"
echo "provider under test: $(get provider)"
echo
printf "%-50s %12s %12s %8s\n" "measurement" "portcullis" "baseline" "ratio"
printf "%-50s %12s %12s %8s\n" "AES-256-GCM MB/s, 16 KiB (vs openssl speed, fips)" "$(get aes256gcm_mb_per_s)" "$ossl_fips" "$(ratio "$(get aes256gcm_mb_per_s)" "$ossl_fips")"
printf "%-50s %12s %12s %8s\n" "AES-256-GCM MB/s, 16 KiB (vs openssl, default)" "$(get aes256gcm_mb_per_s)" "$ossl_default" "$(ratio "$(get aes256gcm_mb_per_s)" "$ossl_default")"
for op in put get put8; do
    label="sealed backend $op/s (vs unsealed SQLite)"
    [ $op = put8 ] && label="sealed backend put/s, 8 writers (vs unsealed)"
    printf "%-50s %12s %12s %8s\n" "$label" "$(get sealed_${op}_per_s)" "$(get raw_${op}_per_s)" "$(ratio "$(get sealed_${op}_per_s)" "$(get raw_${op}_per_s)")"
done
echo
echo "puts are durable (SQLite WAL, synchronous=FULL): each waits for fsync, in both columns."

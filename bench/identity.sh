#!/usr/bin/env bash
# The identity service's costs, with this machine's `openssl speed ecdsap384` beside them:
#   - logins/second (PBKDF2-HMAC-SHA-512 at the iteration count printed dominates)
#   - user certificate signings/second (ECDSA P-384 through the FIPS provider)
set -euo pipefail
cd "$(dirname "$0")/.."
FIPS_PREFIX=${FIPS_PREFIX:-$PWD/.build-fips/prefix}
LOGINS=${LOGINS:-40}

swift build -c release --product identity-bench >/dev/null
bench=$(swift build -c release --show-bin-path)/identity-bench
speed=$(env OPENSSL_CONF=$FIPS_PREFIX/ssl/openssl.cnf OPENSSL_MODULES=$FIPS_PREFIX/lib/ossl-modules \
    openssl speed -seconds 2 ecdsap384 2>/dev/null | awk '/^ *384 bits ecdsa/ {print int($7)}')
pbkdf=$(env OPENSSL_CONF=$FIPS_PREFIX/ssl/openssl.cnf OPENSSL_MODULES=$FIPS_PREFIX/lib/ossl-modules \
    python3 -c 'import hashlib,time; t=time.perf_counter(); n=5
for _ in range(n): hashlib.pbkdf2_hmac("sha512", b"benchmark passphrase", b"0123456789abcdef0123456789abcdef", 210000)
print("%.1f" % (n / (time.perf_counter() - t)))')
results=$("$bench" --fips-prefix "$FIPS_PREFIX" --logins "$LOGINS")
get() { sed -n "s/^$1=//p" <<<"$results"; }

echo "machine: $(nproc) cores, $(openssl version)"
printf "%-62s %12s %14s\n" "measurement" "portcullis" "baseline"
printf "%-62s %12s %14s\n" "logins/s, one client (PBKDF2-HMAC-SHA-512, $(get pbkdf2_iterations) iterations)" "$(get logins_per_s_sequential)" "$pbkdf"
printf "%-62s %12s %14s\n" "logins/s, two concurrent clients" "$(get logins_per_s_two_clients)" ""
printf "%-62s %12s %14s\n" "user certificate signings/s (P-384, CA key from sealed store)" "$(get certificate_signings_per_s)" "$speed"
printf "%-62s %12s %14s\n" "raw P-384 signatures/s through FIPSCrypto" "$(get p384_signatures_per_s)" "$speed"
echo "baselines: python3 hashlib PBKDF2 at the same parameters (one core); openssl speed ecdsap384 sign/s (fips provider)"

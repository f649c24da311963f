#!/usr/bin/env bash
# The HTTPS API's TLS (OpenSSL libssl in the daemon's FIPS library context) against
# `openssl s_server` in FIPS mode (the same provider build) on the same machine, same run:
# full handshakes per second with `openssl s_time -new` (TLS 1.3 and TLS 1.2), ECDSA P-256
# certificates on both sides. Target: >= 0.8x s_server.
set -euo pipefail
cd "$(dirname "$0")/.."
FIPS_PREFIX=${FIPS_PREFIX:-$PWD/.build-fips/prefix}
SECONDS_EACH=${SECONDS_EACH:-5}
work=$(mktemp -d /tmp/portcullis-tlsbench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

swift build -c release --product portcullis >/dev/null
swift build -c release --product pcctl >/dev/null
bin=$(swift build -c release --show-bin-path)
"$bin/portcullis" configure --output "$work/portcullis.yaml" --data-dir "$work/data" --kek-file "$work/kek" --force --fips-prefix "$FIPS_PREFIX" >/dev/null
web=$(free_port)
sed -i -e "s/0.0.0.0:3080/127.0.0.1:$web/" -e "s/0.0.0.0:3023/127.0.0.1:$(free_port)/" -e "s/0.0.0.0:3022/127.0.0.1:$(free_port)/" \
    -e "s/127.0.0.1:3025/127.0.0.1:$(free_port)/" "$work/portcullis.yaml"
"$bin/portcullis" start --config "$work/portcullis.yaml" >"$work/daemon.log" 2>&1 & pids+=($!)
for _ in $(seq 200); do [ -S "$work/data/admin.sock" ] && break; sleep 0.1; done
"$bin/pcctl" auth export --type tls --config "$work/portcullis.yaml" >"$work/ours.pem"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ref.key" -out "$work/ref.pem" -days 1 -subj /CN=127.0.0.1 2>/dev/null
ref=$(free_port)
OPENSSL_CONF=$FIPS_PREFIX/ssl/openssl.cnf OPENSSL_MODULES=$FIPS_PREFIX/lib/ossl-modules \
    openssl s_server -accept "127.0.0.1:$ref" -cert "$work/ref.pem" -key "$work/ref.key" -propquery fips=yes -naccept 1000000 -quiet \
    -groups P-256:P-384 -cipher 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384' -ciphersuites 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384' \
    >"$work/s_server.log" 2>&1 & pids+=($!)
sleep 1

rate() {  # port cafile version: full handshakes a second
    openssl s_time -connect "127.0.0.1:$1" -CAfile "$2" -new -time "$SECONDS_EACH" "$3" 2>/dev/null \
        | awk '/connections in .* real seconds/ { for (i = 1; i <= NF; i++) if ($i == "connections") n = $(i - 1); for (i = 1; i <= NF; i++) if ($i == "real") s = $(i - 1) } END { printf "%.0f", n / s }'
}
echo "machine: $(nproc) cores; $(openssl version); the FIPS provider from $FIPS_PREFIX on both sides"
printf "%-36s %10s %10s %7s  %s\n" "full handshakes/s (openssl s_time -new)" "portcullis" "s_server" "ratio" "target"
for version in -tls1_3 -tls1_2; do
    ours=$(rate "$web" "$work/ours.pem" $version)
    theirs=$(rate "$ref" "$work/ref.pem" $version)
    printf "%-36s %10s %10s %7s  %s\n" "  ${version#-}" "$ours" "$theirs" "$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", a / b }')" ">= 0.80"
done

#!/usr/bin/env bash
# make deb-reproducible: packages the same commit twice, into two directories, and checks that
# the two .deb files are the same bytes (time stamps from SOURCE_DATE_EPOCH, sorted members, no
# build path or host name in the package's own files). The Swift binaries are built once and
# packaged twice: this checks the packaging; the compiler's determinism is Swift's.
set -euo pipefail
cd "$(dirname "$0")/.."
first=$(mktemp -d) second=$(mktemp -d)
trap 'rm -rf "$first" "$second"' EXIT
OUT=$first bash packaging/deb/build-deb.sh >/dev/null
sleep 1   # a clock tick apart: anything taken from the wall clock would differ
OUT=$second bash packaging/deb/build-deb.sh >/dev/null
a=$(sha256sum "$first"/*.deb | cut -d' ' -f1) b=$(sha256sum "$second"/*.deb | cut -d' ' -f1)
if [ "$a" != "$b" ]; then
    echo "deb-reproducible: the two packages differ ($a, $b):" >&2
    diff <(dpkg-deb -c "$first"/*.deb) <(dpkg-deb -c "$second"/*.deb) >&2 || true
    exit 1
fi
echo "deb-reproducible: the same commit packaged twice gives the same bytes ($a)"

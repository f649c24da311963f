#!/usr/bin/env bash
# Installs the Debian packages Portcullis needs that are missing. Only asks apt when something
# is missing, so a second run is instant.
#   scripts/install-deps.sh build   what building and running needs
#   scripts/install-deps.sh test    plus the real peers the tests talk to
set -euo pipefail

# node-xterm (with libjs-xterm): the web terminal's component, which the daemon serves from its Debian path.
build=(libssl-dev libsqlite3-dev libyaml-dev libqrencode-dev libaudit-dev libpam0g-dev libbpf-dev libelf-dev zlib1g-dev liblz4-dev openssl sqlite3 pkg-config node-xterm)
# The FIPS provider build (packaging/fips/build-fips-provider.sh).
fips=(gcc make perl perl-modules-5.36 dpkg-dev xz-utils binutils ca-certificates)
# Real peers for the interop tests.
# clang-14 and bpftool: the committed BPF skeleton is checked against its source (scripts/bpf-generate.sh --check).
# zbar-tools: the QR code pcsh draws is decoded; systemd: systemd-creds, for the KEK credential;
# python3-venv: the web console browser test's Playwright (PyPI), which drives Debian's chromium.
test=(clang-14 bpftool sslscan curl openssl openssh-client openssh-server openssh-sftp-server pamtester libpam-modules sudo passwd tmux asciinema bsdutils auditd python3 python3-jsonschema python3-regex python3-rfc3987 chromium fonts-dejavu-core zbar-tools systemd python3-venv)

case "${1:-build}" in
    build) wanted=("${build[@]}" "${fips[@]}") ;;
    test) wanted=("${build[@]}" "${fips[@]}" "${test[@]}") ;;
    *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac

missing=()
for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Playwright from PyPI in a venv of its own (Debian has no package of it); no browser download:
# the tests drive Debian's chromium.
playwright() {
    [ "${1:-build}" = test ] || return 0
    local venv
    venv="$(dirname "$0")/../.build-venv"
    [ -x "$venv/bin/python3" ] && "$venv/bin/python3" -c "import playwright" 2>/dev/null && return 0
    python3 -m venv "$venv" && "$venv/bin/pip" install -q "playwright==1.65.2" \
        || echo "install-deps: could not install Playwright into .build-venv; the web console browser test will fail in CI" >&2
}
if [ ${#missing[@]} -eq 0 ]; then playwright "${1:-build}"; exit 0; fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" = 0 ]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    echo "install-deps: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
    exit 1
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
playwright "${1:-build}"

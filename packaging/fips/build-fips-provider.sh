#!/usr/bin/env bash
# Builds the OpenSSL 3 FIPS provider (fips.so) from the distribution's own OpenSSL source and
# installs it, with its self-test configuration, into PREFIX:
#
#   PREFIX/lib/ossl-modules/fips.so   the provider
#   PREFIX/ssl/fipsmodule.cnf         written by `openssl fipsinstall -self_test_onload`
#   PREFIX/ssl/openssl.cnf            activates fips + base, default_properties = fips=yes
#
# Portcullis is pointed at it with two settings (portcullis.yaml):
#   fips.openssl_config: PREFIX/ssl/openssl.cnf
#   fips.modules_dir:    PREFIX/lib/ossl-modules
# A deployment that owns a CMVP-validated module sets the same two settings to that module's
# configuration and directory instead.
#
# IMPORTANT: a provider built from distribution source behaves as a FIPS provider (self-tests,
# integrity check, approved-only algorithms) but it is NOT a validated module: only the exact
# upstream release named in a CMVP certificate, built as its Security Policy says, is.
#
# Usage: build-fips-provider.sh PREFIX [WORKDIR]
#        build-fips-provider.sh --configure-only PREFIX
# An existing, verified PREFIX is reused (nothing is rebuilt); delete it to force a rebuild.
# --configure-only runs `openssl fipsinstall` for an fips.so already in PREFIX and writes the
# configuration (what the Debian package does on the target machine, as OpenSSL asks).
# The machine's apt lists and /etc/ssl are left untouched: the source comes through private
# deb-src lists kept in WORKDIR.
set -euo pipefail

die() { echo "build-fips-provider: $*" >&2; exit 1; }
configure_only=no
if [ "${1:-}" = "--configure-only" ]; then configure_only=yes; shift; fi
[ $# -ge 1 ] || die "usage: $0 PREFIX [WORKDIR] | --configure-only PREFIX"
mkdir -p "$1"
PREFIX=$(cd "$1" && pwd)
MODULES=$PREFIX/lib/ossl-modules
SSLDIR=$PREFIX/ssl

verify() {
    # Loading the provider checks module-mac (integrity) and runs every known-answer test, since
    # fipsmodule.cnf carries no install-status. (`fipsinstall -verify` cannot be used: it insists on
    # the install-status that -self_test_onload leaves out.) A failed activation from a config file
    # is silent in OpenSSL 3.0, so look for "status: active" rather than trusting the exit code.
    local out
    out=$(OPENSSL_CONF=$SSLDIR/openssl.cnf OPENSSL_MODULES=$MODULES openssl list -providers -verbose 2>&1) || true
    if ! grep -A4 -E '^\s+fips$' <<<"$out" | grep -q 'status: active'; then
        echo "the fips provider in $MODULES does not load:" >&2; echo "$out" >&2; return 1
    fi
    echo abc | OPENSSL_CONF=$SSLDIR/openssl.cnf OPENSSL_MODULES=$MODULES openssl dgst -sha256 >/dev/null 2>&1 \
        || { echo "SHA-256 failed under the fips provider" >&2; return 1; }
    if echo abc | OPENSSL_CONF=$SSLDIR/openssl.cnf OPENSSL_MODULES=$MODULES openssl dgst -md5 >/dev/null 2>&1; then
        echo "MD5 worked under the fips provider: it is not enforcing approved algorithms" >&2; return 1
    fi
}

install_config() {
    mkdir -p "$SSLDIR"
    # -self_test_onload: no install-status is written, so the known-answer tests run at every load
    # (a power-on self-test at every start of the appliance, as FIPS 140-3 expects).
    openssl fipsinstall -quiet -self_test_onload -module "$MODULES/fips.so" -out "$SSLDIR/fipsmodule.cnf" \
        || die "openssl fipsinstall failed"
    cat >"$SSLDIR/openssl.cnf" <<CNF
# Written by build-fips-provider.sh. Activates the FIPS provider found in the modules directory
# (OPENSSL_MODULES, or Portcullis's fips.modules_dir) and makes fips=yes the default property.
config_diagnostics = 1
openssl_conf = openssl_init
.include $SSLDIR/fipsmodule.cnf

[openssl_init]
providers = provider_sect
alg_section = algorithm_sect

[provider_sect]
fips = fips_sect
base = base_sect

[base_sect]
activate = 1

[algorithm_sect]
default_properties = fips=yes
CNF
    chmod 0644 "$SSLDIR/openssl.cnf" "$SSLDIR/fipsmodule.cnf"
}

if [ "$configure_only" = yes ]; then
    [ -f "$MODULES/fips.so" ] || die "--configure-only: no $MODULES/fips.so"
    install_config
    verify || die "the provider in $PREFIX did not verify"
    echo "build-fips-provider: configured and verified $PREFIX"
    exit 0
fi

if [ -f "$MODULES/fips.so" ] && [ -f "$SSLDIR/openssl.cnf" ] && verify; then
    echo "build-fips-provider: reusing verified provider in $PREFIX"
    exit 0
fi

WORK=${2:-$PREFIX/../fips-work}
mkdir -p "$WORK"; WORK=$(cd "$WORK" && pwd)

# Build prerequisites. perl-base is not enough: Configure needs IPC::Cmd (perl-modules).
need=()
for p in gcc make perl perl-modules-5.36 dpkg-dev xz-utils binutils openssl libssl3 ca-certificates; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing packages: ${need[*]} (run as root, or install them first)"
    echo "build-fips-provider: installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Private deb-src lists, built from the machine's own Debian mirrors.
src_list=$WORK/sources-src.sources
deb_uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
sec_uri=$(awk '/^URIs:/ && $2 ~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$deb_uri" ] || deb_uri=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$deb_uri" ] || die "cannot find the Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
{
    printf 'Types: deb-src\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$deb_uri" "$codename" "$codename"
    if [ -n "$sec_uri" ]; then
        printf '\nTypes: deb-src\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$sec_uri" "$codename"
    fi
} >"$src_list"
mkdir -p "$WORK/lists/partial"
APT=(-o "Dir::Etc::SourceList=$src_list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$WORK/lists"
     -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root -qq)
apt-get "${APT[@]}" update || die "could not read the deb-src indexes from $deb_uri"

# The installed version first, then what the archive has, newest first.
installed=$(dpkg-query -W -f='${Version}' libssl3 2>/dev/null || true)
mapfile -t versions < <( { [ -n "$installed" ] && echo "$installed"; apt-cache "${APT[@]}" showsrc openssl | awk '/^Version:/ {print $2}' | sort -rV; } | awk '!seen[$0]++')
src=""
for v in "${versions[@]}"; do
    d=$WORK/src-$v
    if [ -d "$d" ] && src=$(find "$d" -maxdepth 2 -name Configure -path '*openssl-*' | head -n1) && [ -n "$src" ]; then
        echo "build-fips-provider: reusing source openssl $v"; break
    fi
    rm -rf "$d"; mkdir -p "$d"
    if (cd "$d" && apt-get "${APT[@]}" source openssl="$v" >/dev/null 2>&1); then
        src=$(find "$d" -maxdepth 2 -name Configure -path '*openssl-*' | head -n1)
        [ -n "$src" ] && { echo "build-fips-provider: building from openssl $v (installed: ${installed:-none})"; break; }
    fi
    echo "build-fips-provider: openssl $v is not fetchable from the archive, trying the next"
    rm -rf "$d"; src=""
done
[ -n "$src" ] || die "no openssl source version could be fetched (tried: ${versions[*]})"
srcdir=$(dirname "$src")

case "$(uname -m)" in
    x86_64) target=linux-x86_64 ;;
    aarch64) target=linux-aarch64 ;;
    *) die "unsupported architecture $(uname -m)" ;;
esac
build=$WORK/build
rm -rf "$build"; mkdir -p "$build"
(
    cd "$build"
    "$srcdir/Configure" enable-fips "$target" >/dev/null
    make -j"$(nproc)" build_generated >/dev/null   # fips.so alone fails without generated headers
    make -j"$(nproc)" providers/fips.so >/dev/null
) || die "building the FIPS provider failed (see output above)"

mkdir -p "$MODULES" "$SSLDIR"
install -m 0755 "$build/providers/fips.so" "$MODULES/fips.so"
strip --strip-unneeded "$MODULES/fips.so"       # before fipsinstall: module-mac covers the file
install_config
verify || die "the installed provider did not verify"
echo "build-fips-provider: installed and verified in $PREFIX"
echo "  fips.openssl_config: $SSLDIR/openssl.cnf"
echo "  fips.modules_dir:    $MODULES"

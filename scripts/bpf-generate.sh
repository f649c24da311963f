#!/bin/sh
# Regenerates the committed BPF artefacts from bpf/session.bpf.c:
#   Sources/CSessionBPF/session.skel.h   the libbpf skeleton (the BPF object embedded)
#   bpf/vmlinux.h                        only with --vmlinux: this kernel's BTF as C (CO-RE makes
#                                        the programs portable; regenerating it changes the bytes)
# SwiftPM cannot compile BPF, and `swift build` must work without clang-bpf or bpftool, so the
# skeleton is committed and checked: `--check` regenerates it in a scratch directory and fails
# when the committed one is not what the source produces (`make test` runs it).
# Pinned tools: Debian 12's clang-14 and bpftool 7.1; the same tools give the same bytes.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
clang=${BPF_CLANG:-clang-14}
check=false
for argument in "$@"; do
    case $argument in
        --check) check=true ;;
        --vmlinux) bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h ;;
        *) echo "usage: $0 [--check] [--vmlinux]" >&2; exit 2 ;;
    esac
done
for tool in "$clang" bpftool; do
    command -v "$tool" >/dev/null || { echo "bpf-generate: $tool is missing (apt-get install clang-14 bpftool libbpf-dev)" >&2; exit 1; }
done
case $("$clang" --version | head -1) in *"version 14."*) ;; *) echo "bpf-generate: $clang is not clang 14: its skeleton would differ from the committed one" >&2; exit 1 ;; esac
case $(bpftool version | head -1) in *"v7.1."*) ;; *) echo "bpf-generate: bpftool is not 7.1: its skeleton would differ from the committed one" >&2; exit 1 ;; esac

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Relative paths: they end up in the BTF line information.
# The build directory is mapped away: DWARF records it, and CI builds elsewhere.
"$clang" -O2 -g -fdebug-prefix-map="$root"=. -target bpf -D__TARGET_ARCH_x86 -Ibpf -c bpf/session.bpf.c -o "$scratch/session.bpf.o"
bpftool gen object "$scratch/session.o" "$scratch/session.bpf.o"
bpftool gen skeleton "$scratch/session.o" name session_bpf > "$scratch/session.skel.h"

if $check; then
    if ! cmp -s "$scratch/session.skel.h" Sources/CSessionBPF/session.skel.h; then
        echo "bpf-generate: Sources/CSessionBPF/session.skel.h is not what bpf/session.bpf.c produces: run scripts/bpf-generate.sh and commit it" >&2
        exit 1
    fi
    echo "bpf-generate: the committed skeleton is up to date"
else
    cp "$scratch/session.skel.h" Sources/CSessionBPF/session.skel.h
    echo "bpf-generate: wrote Sources/CSessionBPF/session.skel.h ($(wc -c < Sources/CSessionBPF/session.skel.h) bytes)"
fi

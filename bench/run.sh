#!/bin/sh
# bench/run.sh — builds the benchmarks in release, compiles the fixtures, runs our parser/loader
# and libbpf (1.6 from the pylibbpf wheel, and Debian's 1.1.x) on them, and writes the tables to
# bench/RESULTS.md (also printed), followed by the hand-written bench/FINDINGS.md.
#
#   sh bench/run.sh                  # everything (needs root for the load benchmark)
#   SKIP_LOAD=1 sh bench/run.sh      # parse + callgrind only
#
# bench/run-all.sh runs bench/service.sh (HTTP, store, start-up) and then this script with
# WITH_SERVICE=1, which puts service.sh's summary and tables into the same RESULTS.md.
#
# Knobs (environment): FIXTURES, PARSE_ITERS (2000), PARSE_WARMUP (200), PARSE_ROUNDS (3),
# LOAD_ITERS (200), LOAD_WARMUP (5), LOAD_ROUNDS (1), VMLINUX_ITERS (20), CALLGRIND_FIXTURES
# (all FIXTURES), CALLGRIND_ITERS (20), SKIP_PARSE, SKIP_LOAD, SKIP_VMLINUX, SKIP_CALLGRIND,
# SKIP_BUILD, PYLIBBPF_DIR, CLANG, OUT (default bench/RESULTS.md), WITH_SERVICE.
#
# Everything built goes under bench/.build (git-ignored): the SwiftPM scratch path, c/ (the
# libbpf_bench binaries), fixtures/ (the .o files), results/ (raw TSV lines, callgrind.out.*).
# Arena fixtures map fixed addresses, so each fixture is loaded in its own process, one at a time.
set -eu
bench=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$bench/.." && pwd)
build=$bench/.build
out_md=${OUT:-$bench/RESULTS.md}
FIXTURES=${FIXTURES:-"globals maps arena arena_list arena_htab arena_atomics arena_loop globals_run"}
PARSE_ITERS=${PARSE_ITERS:-2000}; PARSE_WARMUP=${PARSE_WARMUP:-200}; PARSE_ROUNDS=${PARSE_ROUNDS:-3}
LOAD_ITERS=${LOAD_ITERS:-200}; LOAD_WARMUP=${LOAD_WARMUP:-5}; LOAD_ROUNDS=${LOAD_ROUNDS:-1}
CALLGRIND_FIXTURES=${CALLGRIND_FIXTURES:-$FIXTURES}; CALLGRIND_ITERS=${CALLGRIND_ITERS:-20}
VMLINUX_ITERS=${VMLINUX_ITERS:-20}
log() { echo "run.sh: $*" >&2; }

# The Swift toolchain's clang (it has the bpf target), as Tests/Support/Fixtures.swift finds it.
if [ -z "${CLANG:-}" ]; then
    swift_bin=$(command -v swift) && swift_bin=$(readlink -f "$swift_bin")
    CLANG=$(dirname "$swift_bin")/clang
    [ -x "$CLANG" ] || CLANG=clang
fi
case $(uname -m) in aarch64) multiarch=aarch64-linux-gnu ;; *) multiarch=x86_64-linux-gnu ;; esac

mkdir -p "$build/c" "$build/fixtures" "$build/results"
results=$build/results/results.tsv; callgrind=$build/results/callgrind.tsv; meta=$build/results/meta.tsv
: >"$results"; : >"$callgrind"; : >"$meta"

# --- build -------------------------------------------------------------------------------------
# -gdwarf-4 for the C targets: Debian 12's valgrind 3.19 gives up on clang 21's DWARF 5.
ours=$build/release/bpfdepot-bench
if [ -z "${SKIP_BUILD:-}" ]; then
    log "swift build -c release (bench/.build)"
    swift build -c release --package-path "$bench" --scratch-path "$build" -Xcc -gdwarf-4 >&2
fi
[ -x "$ours" ] || { log "missing $ours"; exit 1; }

cc=${CC:-cc}
impls=""
if $cc -O2 -g -Wall -o "$build/c/libbpf_bench_debian" "$bench/c/libbpf_bench.c" -lbpf >"$build/c/debian.log" 2>&1; then
    impls="$impls debian"
else
    log "Debian libbpf: not built (apt libbpf-dev; see $build/c/debian.log)"
fi
# libbpf 1.6 is linked statically into the pylibbpf wheel's extension; link against that .so with
# stub definitions for the CPython symbols it references (as Tests/Oracle/build-oracle.sh does).
lib=
dirs="${PYLIBBPF_DIR:-}
/opt/pylibbpf
$(python3 -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))' 2>/dev/null || true)"
IFS='
'
for d in $dirs; do
    for f in "$d"/pylibbpf/pylibbpf.cpython-*.so; do
        [ -f "$f" ] && { lib=$f; break 2; }
    done
done
unset IFS
if [ -n "$lib" ]; then
    nm -D --undefined-only "$lib" | awk '$1 == "U" && $2 ~ /^_?Py/ { print "char " $2 "[512];" }' >"$build/c/pystubs.c"
    if $cc -O2 -g -Wall -rdynamic -o "$build/c/libbpf_bench_16" "$bench/c/libbpf_bench.c" "$build/c/pystubs.c" "$lib" \
           -l:libz.so.1 -Wl,-rpath-link,"${lib%/*}/../pylibbpf.libs" >"$build/c/libbpf16.log" 2>&1; then
        impls="16 $impls"
    else
        log "libbpf 1.6: not built (see $build/c/libbpf16.log)"
    fi
else
    log "libbpf 1.6: pylibbpf wheel not found (pip install pylibbpf==0.0.7 or set PYLIBBPF_DIR)"
fi

for fx in $FIXTURES; do
    "$CLANG" -target bpf -O2 -g -c "$root/Tests/Fixtures/$fx.bpf.c" -o "$build/fixtures/$fx.o" \
        -I "$root/Tests/Fixtures" -I "/usr/include/$multiarch"
done

is_arena() { case $1 in arena*) return 0 ;; *) return 1 ;; esac; }
# A kernel that refuses arena maps (`bpfdepot features`) loads no arena fixture: their load rows
# are left out (parsing them needs no kernel).
arena_refused=
if [ -x "$build/release/bpfdepot" ] &&
    ! "$build/release/bpfdepot" features --json | jq -e '.features[] | select(.name == "arena_maps") | .available' >/dev/null 2>&1; then
    arena_refused=1
fi
# Debian's libbpf 1.1 cannot open arena objects.
skip() { [ "$1" = debian ] && is_arena "$2"; }

# --- metadata ----------------------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'CPU\t%s (%s online CPUs)\n' "${cpu:-unknown}" "$(nproc)"
    printf 'Swift\t%s\n' "$(swift --version 2>&1 | head -1)"
    printf 'BPF clang\t%s\n' "$("$CLANG" --version | head -1)"
    for i in $impls; do
        printf 'libbpf (%s)\t%s\n' "$([ "$i" = 16 ] && echo "pylibbpf wheel" || echo "Debian libbpf-dev")" \
            "$("$build/c/libbpf_bench_$i" --version)"
    done
    printf 'load average at start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$meta"

# --- 1. parse ----------------------------------------------------------------------------------
r=1
[ -z "${SKIP_PARSE:-}" ] || r=$((PARSE_ROUNDS + 1))
while [ $r -le "$PARSE_ROUNDS" ]; do
    for fx in $FIXTURES; do
        log "parse $fx (round $r/$PARSE_ROUNDS)"
        "$ours" parse "$build/fixtures/$fx.o" "$fx" "$PARSE_ITERS" "$PARSE_WARMUP" >>"$results"
        for i in $impls; do
            skip "$i" "$fx" || "$build/c/libbpf_bench_$i" parse "$build/fixtures/$fx.o" "$fx" "$PARSE_ITERS" "$PARSE_WARMUP" >>"$results"
        done
    done
    r=$((r + 1))
done

# --- 2. open + load + unload -------------------------------------------------------------------
if [ -z "${SKIP_LOAD:-}" ]; then
    if [ "$(id -u)" != 0 ]; then
        log "not root: skipping the load benchmark"
    else
        [ -d /sys/fs/bpf ] && mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
        pins=/sys/fs/bpf/bpfdepot-bench-$$
        mkdir -p "$pins"
        trap 'rm -f "$pins"/* 2>/dev/null; rmdir "$pins" 2>/dev/null || true' EXIT
        r=1
        while [ $r -le "$LOAD_ROUNDS" ]; do
            for fx in $FIXTURES; do
                if [ -n "$arena_refused" ] && is_arena "$fx"; then
                    log "load $fx: skipped, this kernel refuses arena maps"
                    continue
                fi
                log "load $fx (round $r/$LOAD_ROUNDS)"
                "$ours" load "$build/fixtures/$fx.o" "$fx" "$LOAD_ITERS" "$LOAD_WARMUP" "$pins" >>"$results"
                for i in $impls; do
                    skip "$i" "$fx" || "$build/c/libbpf_bench_$i" load "$build/fixtures/$fx.o" "$fx" "$LOAD_ITERS" "$LOAD_WARMUP" "$pins" >>"$results"
                done
            done
            r=$((r + 1))
        done
    fi
fi

# --- vmlinux BTF ------------------------------------------------------------------------------
# libbpf reads and parses vmlinux BTF on every load that needs it; our loader once per process.
if [ -z "${SKIP_VMLINUX:-}" ] && [ -r /sys/kernel/btf/vmlinux ]; then
    log "vmlinux BTF"
    "$ours" vmlinux - vmlinux "$VMLINUX_ITERS" 2 >>"$results"
    for i in $impls; do
        "$build/c/libbpf_bench_$i" vmlinux - vmlinux "$VMLINUX_ITERS" 2 >>"$results"
    done
fi

# --- 3. callgrind ------------------------------------------------------------------------------
# Instructions inside the parse loop only (--collect-atstart=no + --toggle-collect on the loop
# function), after one warm-up parse outside it. The callgrind.out files stay in results/ for
# callgrind_annotate.
if [ -z "${SKIP_CALLGRIND:-}" ] && command -v valgrind >/dev/null; then
    for fx in $CALLGRIND_FIXTURES; do
        log "callgrind $fx"
        cg() { # IMPL TOGGLE BINARY
            f=$build/results/callgrind.out.$1.$fx
            valgrind --tool=callgrind --collect-atstart=no --toggle-collect="$2" --callgrind-out-file="$f" \
                "$3" callgrind-parse "$build/fixtures/$fx.o" "$fx" "$CALLGRIND_ITERS" >/dev/null 2>"$f.log" \
                || { log "callgrind $1 $fx failed (see $f.log)"; return 0; }
            ir=$(awk '/^totals:/ { print $2 }' "$f")
            printf '%s\t%s\t%s\t%s\n' "$4" "$fx" "$CALLGRIND_ITERS" "$ir" >>"$callgrind"
        }
        cg ours '*callgrindParseRegion*' "$ours" ours
        for i in $impls; do
            skip "$i" "$fx" || cg "libbpf$i" measured_parse "$build/c/libbpf_bench_$i" "libbpf-$("$build/c/libbpf_bench_$i" --version)"
        done
    done
fi

printf 'load average at end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$meta"
if [ -n "${WITH_SERVICE:-}" ] && [ -s "$build/results/service-meta.tsv" ]; then
    cat "$build/results/service-meta.tsv" >>"$meta"
    "$ours" report "$results" "$callgrind" "$meta" "$bench/FINDINGS.md" \
        "$build/results/summary.tsv" "$build/results/service.md" >"$out_md"
else
    "$ours" report "$results" "$callgrind" "$meta" "$bench/FINDINGS.md" >"$out_md"
fi
cat "$out_md"

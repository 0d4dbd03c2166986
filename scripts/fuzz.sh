#!/usr/bin/env bash
# libFuzzer runs of the object parser and of the typed-JSON → BTF encoder.
#
#   scripts/fuzz.sh TARGET SECONDS [JOBS]
#
# TARGET is `parser` (Fuzz/ParserFuzz: any bytes → ObjectSpec, summaries, every variable's
# initial value, the value written back) or `encoder` (Fuzz/EncoderFuzz: a fixture variable and
# JSON text → patch, then round-trip properties). Both are built with the Swift toolchain
# (`swiftc -sanitize=fuzzer,address`, its clang for the C shim) into a scratch folder, outside
# SwiftPM, so `swift build` and `swift test` never compile them.
#
# Seeds: the Tests/Fixtures/*.bpf.c objects compiled with the toolchain clang (as the tests do),
# the encoder's seeds derived from them (each variable's decoded initial value), and the
# committed regression inputs under Tests/FuzzRegressions/TARGET/. New inputs go to a corpus
# folder that persists between runs. JOBS processes (default 1) fuzz side by side on the same
# corpus, each picking up what the others find.
#
# Prints the executions run and the crashes found; exits 1 when there is a crash (a Swift trap,
# an ASan report, a timeout over 10 s, more than 2 GB of memory), after printing where the
# crashing input was saved. Reproduce one with: .build-fuzz/bin/TARGET-fuzz CRASH_FILE
# (for the encoder, with BPFDEPOT_FUZZ_FIXTURES=.build-fuzz/fixtures).
#
# Environment:
#   FUZZ_BUILD    scratch folder (default .build-fuzz; gitignored)
#   FUZZ_CORPUS   corpus folder of this target (default $FUZZ_BUILD/corpus/TARGET)
#   FUZZ_ARGS     extra libFuzzer flags, e.g. "-max_len=65536 -seed=1"
#   CLANG         clang with the bpf target (default: the one beside `swift`)
# The whole script is one block, read before any of it runs: editing the file while a long run
# is going does not change what that run does next.
{
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { echo "usage: $0 parser|encoder SECONDS [JOBS]" >&2; exit 64; }
[[ $# -ge 2 && $# -le 3 ]] || usage
target=$1 seconds=$2 jobs=${3:-1}
case $target in
    parser) entry=Fuzz/ParserFuzz/main.swift ;;
    encoder) entry=Fuzz/EncoderFuzz/main.swift ;;
    *) usage ;;
esac
[[ $seconds =~ ^[0-9]+$ && $jobs =~ ^[1-9][0-9]*$ ]] || usage

build=${FUZZ_BUILD:-$root/.build-fuzz}
mkdir -p "$build"
build=$(cd "$build" && pwd)
corpus=${FUZZ_CORPUS:-$build/corpus/$target}
mkdir -p "$corpus" "$build/bin" "$build/lib" "$build/fixtures" "$build/artifacts/$target"

swiftc=$(command -v swiftc)
toolchain=$(dirname "$(readlink -f "$(command -v swift)")")
clang=${CLANG:-$toolchain/clang}
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

# --- fixtures (same flags as Tests/Support/Fixtures.swift, so the seeds are the test objects) ---
fixture_dir=$root/Tests/Fixtures
for src in "$fixture_dir"/*.bpf.c; do
    obj=$build/fixtures/$(basename "$src" .bpf.c).o
    if [[ ! -f $obj || $src -nt $obj || $fixture_dir/bpfdepot_common.h -nt $obj ]]; then
        "$clang" -target bpf -O2 -g -c "$src" -o "$obj" -I "$fixture_dir" -I "/usr/include/$multiarch" \
            -fdebug-prefix-map="$fixture_dir=Tests/Fixtures"
    fi
done

# --- build: BPFObject as a sanitized static module, then the entry against it ---
sanitize=(-sanitize=fuzzer,address -O -g -swift-version 6 -parse-as-library -use-ld=lld)
mkdir -p "$build/modules/CELFShim" "$build/modules/BPFObject"
cat >"$build/modules/CELFShim/module.modulemap" <<EOF
module CELFShim {
    header "$root/Sources/CELFShim/include/celf_shim.h"
    export *
}
EOF
imports=(-I "$root/Sources/CLibELF" -I "$build/modules/CELFShim" -I "$build/modules/BPFObject")

# Rebuilds what is older than any of its inputs.
stale() { # OUTPUT INPUT...
    local out=$1; shift
    [[ -f $out ]] || return 0
    [[ -n $(find "$@" -newer "$out" -print -quit) ]]
}

shim=$build/lib/celf_shim.o
if stale "$shim" Sources/CELFShim; then
    "$clang" -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CELFShim/include -c Sources/CELFShim/celf_shim.c -o "$shim"
fi
lib=$build/lib/libBPFObject.a
mapfile -t sources < <(find Sources/BPFObject -name '*.swift' | sort)
if stale "$lib" Sources/BPFObject Sources/CLibELF Sources/CELFShim; then
    echo "building BPFObject (sanitized) ..." >&2
    "$swiftc" "${sanitize[@]}" -whole-module-optimization -module-name BPFObject "${imports[@]}" \
        -emit-module -emit-module-path "$build/modules/BPFObject/BPFObject.swiftmodule" \
        -emit-library -static -o "$lib" "${sources[@]}"
fi
bin=$build/bin/$target-fuzz
if stale "$bin" "$entry" "$lib" "$shim"; then
    echo "building $target-fuzz ..." >&2
    "$swiftc" "${sanitize[@]}" -module-name "$(basename "$(dirname "$entry")")" "${imports[@]}" \
        "$entry" "$lib" "$shim" -lelf -o "$bin"
fi

# --- seeds ---
seeds=$build/seeds/$target
rm -rf "$seeds"
mkdir -p "$seeds"
export BPFDEPOT_FUZZ_FIXTURES=$build/fixtures
# Swift's own crash handler would take over a trap and then trip ASan reading memory for its
# backtrace; libFuzzer's handler reports the trap (the message is printed before) and saves the input.
export SWIFT_BACKTRACE=enable=no
flags=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/artifacts/$target/")
case $target in
    parser)
        # The objects as compiled, and without DWARF (which the parser never reads), so that
        # mutations land more often on the sections it does read.
        for obj in "$build"/fixtures/*.o; do
            cp "$obj" "$seeds/"
            "$toolchain/llvm-objcopy" --strip-debug "$obj" "$seeds/$(basename "$obj" .o).nodebug.o"
        done
        flags+=(-max_len=65536)
        ;;
    encoder)
        if ! BPFDEPOT_FUZZ_EMIT_SEEDS=$seeds BPFDEPOT_FUZZ_EMIT_DICT=$build/encoder.dict \
            "$bin" -runs=0 "$seeds" >"$build/encoder-seeds.log" 2>&1; then
            cat "$build/encoder-seeds.log" >&2
            exit 1
        fi
        flags+=(-max_len=4096 -dict="$build/encoder.dict")
        ;;
esac
if [[ -d Tests/FuzzRegressions/$target ]]; then
    find "Tests/FuzzRegressions/$target" -type f ! -name '*.md' -exec cp {} "$seeds/" \;
fi
# shellcheck disable=SC2206
extra=(${FUZZ_ARGS:-})

# --- run ---
logs=$build/logs/$target
rm -rf "$logs"
mkdir -p "$logs"
marker=$logs/.start
touch "$marker"
echo "fuzzing $target for ${seconds}s with $jobs job(s); corpus $corpus" >&2
pids=()
for ((j = 0; j < jobs; j++)); do
    # Each job starts from the shared corpus plus the seeds and writes new inputs to the corpus.
    "$bin" "${flags[@]}" -max_total_time="$seconds" "${extra[@]}" "$corpus" "$seeds" >"$logs/job$j.log" 2>&1 &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done

execs=0
for log in "$logs"/job*.log; do
    n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    execs=$((execs + ${n:-0}))
done
mapfile -t crashes < <(find "$build/artifacts/$target" -type f -newer "$marker" \
    \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
echo "$target: $execs executions in ${seconds}s ($jobs job(s)), corpus $(find "$corpus" -type f | wc -l) inputs, ${#crashes[@]} crash(es)"
if ((${#crashes[@]} > 0)) || ((status != 0)); then
    for log in "$logs"/job*.log; do
        grep -q -E 'ERROR: libFuzzer|ERROR: AddressSanitizer|Fatal error|SUMMARY' "$log" || continue
        echo "--- $log" >&2
        grep -E -A 12 'Fatal error|ERROR: (libFuzzer|AddressSanitizer)|^SUMMARY' "$log" | head -n 60 >&2 || true
    done
    for c in "${crashes[@]}"; do echo "crash: $c"; done
    ((${#crashes[@]} > 0)) || echo "a fuzzer process failed without saving an input; see $logs" >&2
    exit 1
fi
exit 0
}

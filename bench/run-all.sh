#!/bin/sh
# bench/run-all.sh — every benchmark in one run, each pair measured in that run: the service
# (bench/service.sh: HTTP vs a bare libmicrohttpd server, store vs raw SHA-256 + SQLite insert,
# start-up, RSS), then the loader (bench/run.sh: parse and open+load vs libbpf). Writes
# bench/RESULTS.md (summary of ratios and goals first) and prints the summary table.
#
#   sh bench/run-all.sh                     # everything: 10-15 minutes on 2 cores, needs root
#   QUICK=1 sh bench/run-all.sh             # shorter runs (a few minutes; noisier)
#   SKIP_LOADER=1 sh bench/run-all.sh       # service only; SKIP_SERVICE=1: loader only; SKIP_WATCHERS=1: no watchers run
#   SKIP_SCALE=1 sh bench/run-all.sh        # without bench/scale.py (10,000 objects, 200 loads, 10,000 variables)
#
# Every knob of service.sh and run.sh passes through (SKIP_HTTP, SKIP_STORE, SKIP_STARTUP,
# WRK_SECONDS, CALLGRIND_REQUESTS, SKIP_LOAD, PARSE_ROUNDS, ...); see their headers.
set -eu
# bpfdepot is built as README's "Deploying" builds it (--static-swift-stdlib); STATIC_STDLIB=
# (empty) measures the dynamically linked build instead.
STATIC_STDLIB=${STATIC_STDLIB-1}; export STATIC_STDLIB
bench=$(cd "$(dirname "$0")" && pwd)
build=$bench/.build
if [ -n "${QUICK:-}" ]; then
    export WRK_SECONDS=${WRK_SECONDS:-3} WRK_ROUNDS=${WRK_ROUNDS:-1} PROBE_COUNT=${PROBE_COUNT:-500}
    export CALLGRIND_REQUESTS=${CALLGRIND_REQUESTS:-200} UPLOAD_COUNT=${UPLOAD_COUNT:-3} STORE_ROUNDS=${STORE_ROUNDS:-1}
    export PATCH_BIG=${PATCH_BIG:-5} PATCH_SMALL=${PATCH_SMALL:-50} STARTUP_RUNS=${STARTUP_RUNS:-3}
    export PARSE_ROUNDS=${PARSE_ROUNDS:-1} PARSE_ITERS=${PARSE_ITERS:-500} LOAD_ITERS=${LOAD_ITERS:-20}
    export CALLGRIND_FIXTURES=${CALLGRIND_FIXTURES:-"globals arena"}
fi
if [ -z "${SKIP_BUILD:-}" ]; then
    echo "run-all.sh: swift build -c release (bpfdepot-bench and bpfdepot, bench/.build)" >&2
    swift build -c release --package-path "$bench" --scratch-path "$build" -Xcc -gdwarf-4 >&2
    swift build -c release --package-path "$bench" --scratch-path "$build" -Xcc -gdwarf-4 --product bpfdepot \
        ${STATIC_STDLIB:+--static-swift-stdlib} >&2
fi
rm -f "$build/results/summary.tsv" "$build/results/service.md" "$build/results/service-meta.tsv"
[ -n "${SKIP_SERVICE:-}" ] || SKIP_BUILD=1 sh "$bench/service.sh" >/dev/null
# How costs grow with stored objects, live loads and variables (bench/scale.py): its summary rows
# join service.sh's, its section is appended below.
rm -f "$build/results/scale.md"
if [ -z "${SKIP_SCALE:-}" ]; then
    mkdir -p "$build/results"
    if [ -n "${QUICK:-}" ]; then export SCALE_OBJECTS=${SCALE_OBJECTS:-100,1000} SCALE_LOADS=${SCALE_LOADS:-50} WRK_SECONDS=${WRK_SECONDS:-3}; fi
    [ -x "$build/c/http_probe" ] || { mkdir -p "$build/c"; cc -O2 -g -Wall -o "$build/c/http_probe" "$bench/c/http_probe.c"; }
    BPFDEPOT="$build/release/bpfdepot" PROBE="$build/c/http_probe" python3 "$bench/scale.py" "$build/results/summary.tsv" \
        >"$build/results/scale.md"
fi
if [ -n "${SKIP_LOADER:-}" ]; then
    export SKIP_PARSE=1 SKIP_LOAD=1 SKIP_VMLINUX=1 SKIP_CALLGRIND=1
fi
SKIP_BUILD=1 WITH_SERVICE=1 sh "$bench/run.sh" >/dev/null
out=${OUT:-$bench/RESULTS.md}
[ ! -s "$build/results/scale.md" ] || cat "$build/results/scale.md" >>"$out"
# Open event streams: what 1,000 idle (then active) watchers cost the server (bench/watchers.py).
if [ -z "${SKIP_WATCHERS:-}" ]; then
    watchers=$(BPFDEPOT="$build/release/bpfdepot" WATCH_SECONDS="${WATCH_SECONDS:-30}" python3 "$bench/watchers.py")
    # The same with no two streams sharing a read (N different resources).
    distinct=$(DISTINCT=1 BPFDEPOT="$build/release/bpfdepot" WATCH_SECONDS="${WATCH_SECONDS:-30}" python3 "$bench/watchers.py")
    {
        echo
        echo "## Watchers: 1,000 open event streams"
        echo
        echo "\`python3 bench/watchers.py\`, then \`DISTINCT=1 python3 bench/watchers.py\` (N=1000, 30 s per phase; goal: idle < 5% of a core):"
        echo
        echo '```'
        echo "$watchers"
        echo "$distinct"
        echo '```'
    } >>"$out"
fi
echo "run-all.sh: wrote $out" >&2
# The summary table (up to the next section).
awk '/^## Summary/ { on = 1 } on && /^## / && !/^## Summary/ { exit } on' "$out"

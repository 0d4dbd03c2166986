#!/bin/sh
# bench/service.sh — the service side of the benchmarks: `bpfdepot serve` (release) on loopback
# against a bare libmicrohttpd server (bench/c/bare_mhd.c) with the same daemon flags, and the
# store costs. Each pair is measured in this run, interleaved. Writes
#   bench/.build/results/service.tsv   raw lines (one per measurement and round)
#   bench/.build/results/summary.tsv   the ratio/goal rows RESULTS.md's summary table shows
#   bench/.build/results/service.md    the detailed tables
# which bench/run.sh's report (and so bench/run-all.sh) puts into RESULTS.md.
#
#   sh bench/service.sh                      # everything (root: it loads BPF objects)
#   SKIP_STORE=1 SKIP_STARTUP=1 sh bench/service.sh   # HTTP only
#
# Knobs (environment): WRK_SECONDS (10), WRK_ROUNDS (3), WRK_CONNECTIONS (64), WRK_THREADS (2),
# PROBE_COUNT (2000, one-connection requests per measurement), UPLOAD_COUNT (6 uploads of the
# 16 MiB object and as many raw inserts, per round), STORE_ROUNDS (2), PATCH_BIG (20),
# PATCH_SMALL (300), STARTUP_OBJECTS (1000), STARTUP_RUNS (7), CALLGRIND_REQUESTS (500; 0
# skips callgrind), SKIP_HTTP, SKIP_STORE, SKIP_STARTUP, SKIP_BUILD, STATIC_STDLIB (build
# bpfdepot with --static-swift-stdlib), CLANG, KEEP (keep the databases in bench/.build/service).
set -eu
bench=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$bench/.." && pwd)
build=$bench/.build
work=$build/service
res=$build/results
WRK_SECONDS=${WRK_SECONDS:-10}; WRK_ROUNDS=${WRK_ROUNDS:-3}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-64}; WRK_THREADS=${WRK_THREADS:-2}
PROBE_COUNT=${PROBE_COUNT:-2000}
UPLOAD_COUNT=${UPLOAD_COUNT:-6}; STORE_ROUNDS=${STORE_ROUNDS:-2}
PATCH_BIG=${PATCH_BIG:-20}; PATCH_SMALL=${PATCH_SMALL:-300}
STARTUP_OBJECTS=${STARTUP_OBJECTS:-1000}; STARTUP_RUNS=${STARTUP_RUNS:-7}
CALLGRIND_REQUESTS=${CALLGRIND_REQUESTS:-500}
log() { echo "service.sh: $*" >&2; }

if [ -z "${CLANG:-}" ]; then
    swift_bin=$(command -v swift) && swift_bin=$(readlink -f "$swift_bin")
    CLANG=$(dirname "$swift_bin")/clang
    [ -x "$CLANG" ] || CLANG=clang
fi
case $(uname -m) in aarch64) multiarch=aarch64-linux-gnu ;; *) multiarch=x86_64-linux-gnu ;; esac
[ "$(id -u)" = 0 ] || { log "needs root (it loads BPF objects)"; exit 1; }
for tool in wrk curl jq; do
    command -v $tool >/dev/null || { log "needs $tool (apt-get install wrk curl jq)"; exit 1; }
done

rm -rf "$work"
mkdir -p "$build/c" "$build/fixtures" "$res" "$work"
tsv=$res/service.tsv; summary=$res/summary.tsv; md=$res/service.md; smeta=$res/service-meta.tsv
: >"$tsv"; : >"$summary"; : >"$md"; : >"$smeta"
pkgver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo unknown; }
{
    printf 'wrk	%s
' "$(pkgver wrk)"
    printf 'libmicrohttpd	%s (Debian libmicrohttpd12)
' "$(pkgver libmicrohttpd12)"
    printf 'SQLite	%s (Debian libsqlite3-0)
' "$(pkgver libsqlite3-0)"
    printf 'bpfdepot build	%s
' "swift build -c release${STATIC_STDLIB:+ --static-swift-stdlib} (bench/.build)"
    printf 'load average before the service benchmarks	%s
' "$(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$smeta"

# --- build ------------------------------------------------------------------------------------
bpfdepot=$build/release/bpfdepot
benchbin=$build/release/bpfdepot-bench
if [ -z "${SKIP_BUILD:-}" ]; then
    log "swift build -c release (bpfdepot and bpfdepot-bench in bench/.build)"
    swift build -c release --package-path "$bench" --scratch-path "$build" -Xcc -gdwarf-4 >&2
    swift build -c release --package-path "$bench" --scratch-path "$build" -Xcc -gdwarf-4 --product bpfdepot \
        ${STATIC_STDLIB:+--static-swift-stdlib} >&2
fi
[ -x "$bpfdepot" ] && [ -x "$benchbin" ] || { log "missing $bpfdepot or $benchbin"; exit 1; }
cc=${CC:-cc}
$cc -O2 -g -gdwarf-4 -Wall -o "$build/c/bare_mhd" "$bench/c/bare_mhd.c" -lmicrohttpd
$cc -O2 -g -Wall -o "$build/c/http_probe" "$bench/c/http_probe.c"
probe=$build/c/http_probe; bare=$build/c/bare_mhd

fx=$build/fixtures
compile() { # SOURCE OUT
    "$CLANG" -target bpf -O2 -g -c "$1" -o "$2" -I "$root/Tests/Fixtures" -I "/usr/include/$multiarch"
}
compile "$root/Tests/Fixtures/service_arena.bpf.c" "$fx/service_arena.o"
# Where the kernel refuses arena maps (`bpfdepot features`), the one-variable read is a .data
# `__u32` (seed_knob of seeded.o) and the 1,000 variables have no arena share (their .bss takes it).
if "$bpfdepot" features --json | jq -e '.features[] | select(.name == "arena_maps") | .available' >/dev/null; then
    single_obj=$fx/service_arena.o; single_var=svc_counter; single_what='one arena `int`'; noarena=
else
    single_obj=$fx/seeded.o; single_var=seed_knob; single_what='one .data `__u32`; this kernel refuses arena maps'; noarena=1
fi
printf 'meta\tsingle variable\t%s\n' "$single_var ($single_what)" >>"$tsv"
NOARENA=$noarena sh "$bench/fixtures/gen-vars.sh" 1000 >"$fx/vars1000.bpf.c"
compile "$fx/vars1000.bpf.c" "$fx/vars1000.o"
compile "$bench/fixtures/big.bpf.c" "$fx/big.o"
compile "$bench/fixtures/seeded.bpf.c" "$fx/seeded.o"

# --- helpers ----------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_serve DB PORT [ARG...]: starts `bpfdepot serve` through http_probe (which clocks exec →
# first 200 on /healthz); sets serve_pid and serve_ms.
start_serve() {
    sdb=$1; sport=$2; shift 2
    line=$(PROBE_LOG=$work/serve.log "$probe" startup "$sport" 30000 "$bpfdepot" serve --db "$sdb" --listen "127.0.0.1:$sport" "$@")
    serve_ms=$(echo "$line" | awk '{ print $2 }')
    serve_pid=$(echo "$line" | awk '{ print $4 }')
}
stop_pid() { # PID: SIGTERM, then wait until it is gone (it is not our child)
    kill "$1" 2>/dev/null || return 0
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
}
# "VMRSS_KIB<TAB>RSSANON_KIB": all resident pages, and the anonymous ones (heap, stacks; the rest
# are pages of the executable and shared libraries).
# Then PSS (smaps_rollup): shared pages divided among the processes mapping them, what a fleet
# pays per process beside its private (anonymous) memory.
rss_kib() {
    awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } END { printf "%s\t%s", r, a }' "/proc/$1/status"
    awk '/^Pss:/ { printf "\t%s", $2 }' "/proc/$1/smaps_rollup"
}
cpu_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }  # user and system clock ticks

# start_bare BODY ETAG [STATUS]: sets bare_pid and bare_port.
start_bare() {
    "$bare" 0 "$1" "$2" "${3:-200}" >"$work/bare.out" 2>>"$work/bare.log" &
    bare_pid=$!
    i=0
    while [ ! -s "$work/bare.out" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    bare_port=$(awk '{ print $2 }' "$work/bare.out")
    : >"$work/bare.out"
}

# wrk_run CASE IMPL PID URL [HEADER]: one wrk run; appends
# "wrk CASE IMPL REQ_PER_S P50_US P99_US CPU_US_PER_REQ NON2XX USER_US_PER_REQ SYS_US_PER_REQ".
wrk_run() {
    t0=$(cpu_ticks "$3")
    if [ -n "${5:-}" ]; then
        out=$(wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${WRK_SECONDS}s" --latency -H "$5" "$4")
    else
        out=$(wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${WRK_SECONDS}s" --latency "$4")
    fi
    t1=$(cpu_ticks "$3")
    echo "$out" | awk -v c="$1" -v impl="$2" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" '
        function us(v) {
            if (v ~ /us$/) return v + 0
            if (v ~ /ms$/) return (v + 0) * 1000
            if (v ~ /s$/) return (v + 0) * 1000000
            return v + 0
        }
        $1 == "50%" { p50 = us($2) }
        $1 == "99%" { p99 = us($2) }
        /requests in/ { n = $1 }
        /Non-2xx/ { bad = $NF }
        /^Requests\/sec:/ { rps = $2 }
        END {
            split(t0, a, " "); split(t1, b, " ")
            u = n ? (b[1] - a[1]) * 1e6 / hz / n : 0; s = n ? (b[2] - a[2]) * 1e6 / hz / n : 0
            printf "wrk\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.2f\t%d\t%.2f\t%.2f\n", c, impl, rps, p50, p99, u + s, bad + 0, u, s
        }' >>"$tsv"
}

# probe_run CASE IMPL PORT PATH STATUS [HEADER]: one connection, PROBE_COUNT requests; appends
# "probe CASE IMPL N P50_US P90_US P99_US MIN_US MAX_US".
probe_run() {
    if [ -n "${6:-}" ]; then
        line=$("$probe" req GET "$3" "$4" "$PROBE_COUNT" 200 "$5" -H "$6")
    else
        line=$("$probe" req GET "$3" "$4" "$PROBE_COUNT" 200 "$5")
    fi
    printf 'probe\t%s\t%s\t%s\n' "$1" "$2" "$(echo "$line" | tr ' ' '\t')" >>"$tsv"
}

# callgrind_serve / callgrind_bare: the server under callgrind (cg_load prepares bpfdepot's
# loads), 100 warm-up requests, then CALLGRIND_REQUESTS requests on one connection between
# zeroing and dumping the counters. Appends
# "callgrind CASE IMPL TOTAL_IR_PER_REQUEST HANDLER_IR_PER_REQUEST".
callgrind_serve() { # CASE IMPL PATH STATUS HEADER [SERVE_ARG...]
    c=$1; impl=$2; cpath=$3; cstatus=$4; chdr=$5; shift 5
    port=$(free_port)
    f=$work/callgrind.out.$impl.$c
    valgrind --tool=callgrind --callgrind-out-file="$f" "$bpfdepot" serve --db "$work/cg.sqlite" \
        --listen "127.0.0.1:$port" "$@" >"$f.log" 2>&1 &
    vg=$!
    i=0
    until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || [ $i -ge 240 ]; do sleep 0.5; i=$((i + 1)); done
    cg_load "$port"
    callgrind_measure "$c" "$impl" "$vg" "$port" "$cpath" "$cstatus" "$chdr"
    stop_pid "$vg"
    rm -f "$work"/cg.sqlite*
}
callgrind_bare() { # CASE BODY ETAG STATUS PATH [HEADER]
    port=$(free_port)
    f=$work/callgrind.out.bare.$1
    valgrind --tool=callgrind --callgrind-out-file="$f" "$bare" "$port" "$2" "$3" "$4" >"$f.log" 2>&1 &
    vg=$!
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$port/" || [ $i -ge 240 ]; do sleep 0.5; i=$((i + 1)); done
    callgrind_measure "$1" bare "$vg" "$port" "$5" "$4" "${6:-}"
    stop_pid "$vg"
}
callgrind_measure() { # CASE IMPL VGPID PORT PATH STATUS HEADER
    f=$work/callgrind.out.$2.$1
    cg_probe "$4" "$5" 100 "$6" "$7" >/dev/null
    callgrind_control -z "$3" >/dev/null
    cg_probe "$4" "$5" "$CALLGRIND_REQUESTS" "$6" "$7" >/dev/null
    callgrind_control -d "$3" >/dev/null
    dump=$(ls -t "$f".* 2>/dev/null | grep -v '\.log$' | head -1)
    total=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
    # Inclusive cost of bpfdepot's own MHD callbacks (0 for the bare server).
    handler=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null | swift demangle --simplified |
        awk '/@objc closure #1 in variable initialization expression of (accessHandlerCallback|uriLogCallback|requestCompletedCallback) \[/ {
                 gsub(",", "", $1); s += $1 }
             END { printf "%.0f\n", s }')
    printf 'callgrind\t%s\t%s\t%s\t%s\n' "$1" "$2" "$((total / CALLGRIND_REQUESTS))" "$((handler / CALLGRIND_REQUESTS))" >>"$tsv"
}
cg_probe() { # PORT PATH COUNT STATUS HEADER
    if [ -n "$5" ]; then
        "$probe" req GET "$1" "$2" "$3" 0 "$4" -H "$5"
    else
        "$probe" req GET "$1" "$2" "$3" 0 "$4"
    fi
}

u() { echo "http://127.0.0.1:$1"; }
upload() { # PORT FILE NAME → object id
    curl -sf --data-binary @"$2" "$(u "$1")/v1/objects?name=$3" | jq -r .id
}
load_object() { # PORT OBJECT_ID → load id
    curl -sf -X POST "$(u "$1")/v1/objects/$2/loads" | jq -r .id
}
etag_of() { # HEADERS_FILE
    awk 'tolower($1) == "etag:" { sub(/\r$/, "", $2); print $2 }' "$1"
}

# --- 1. HTTP ---------------------------------------------------------------------------------
if [ -z "${SKIP_HTTP:-}" ]; then
    port=$(free_port)
    start_serve "$work/http.sqlite" "$port"
    http_pid=$serve_pid
    printf 'rss\tafter start (HTTP server)\t%s\n' "$(rss_kib "$http_pid")" >>"$tsv"
    svc=$(upload "$port" "$single_obj" single)
    svc_load=$(load_object "$port" "$svc")
    vars=$(upload "$port" "$fx/vars1000.o" vars1000)
    vars_load=$(load_object "$port" "$vars")
    single=/v1/loads/$svc_load/variables/$single_var
    batch=/v1/loads/$vars_load/variables
    curl -sf -D "$work/single.h" -o "$work/single.body" "$(u "$port")$single"
    curl -sf -D "$work/batch.h" -o "$work/batch.body" "$(u "$port")$batch"
    single_etag=$(etag_of "$work/single.h"); batch_etag=$(etag_of "$work/batch.h")
    nvars=$(jq '.variables | length' "$work/batch.body")
    printf 'meta\tsingle body bytes\t%s\n' "$(wc -c <"$work/single.body")" >>"$tsv"
    printf 'meta\tbatch body bytes\t%s\n' "$(wc -c <"$work/batch.body")" >>"$tsv"
    printf 'meta\tbatch variables\t%s\n' "$nvars" >>"$tsv"
    printf 'meta\tresponse header fields (bpfdepot, single)\t%s\n' "$(grep -c ':' "$work/single.h")" >>"$tsv"
    curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $batch_etag" "$(u "$port")$batch" | grep -q 304 ||
        { log "If-None-Match with $batch_etag did not give 304"; exit 1; }

    # The same server without its access log (one line per request at the default level info).
    quiet_port=$(free_port)
    start_serve "$work/quiet.sqlite" "$quiet_port" --log-level notice
    quiet_pid=$serve_pid
    quiet_load=$(load_object "$quiet_port" "$(upload "$quiet_port" "$single_obj" single)")
    quiet_single=/v1/loads/$quiet_load/variables/$single_var

    start_bare "$work/single.body" "$single_etag"; bare_single_pid=$bare_pid; bare_single=$bare_port
    start_bare "$work/batch.body" "$batch_etag"; bare_batch_pid=$bare_pid; bare_batch=$bare_port
    start_bare "$work/batch.body" "$batch_etag" 304; bare_304_pid=$bare_pid; bare_304=$bare_port
    start_bare "$work/single.body" "$single_etag" 304; bare_s304_pid=$bare_pid; bare_s304=$bare_port
    printf 'meta\tresponse header fields (bare, single)\t%s\n' \
        "$(curl -s -D - -o /dev/null "$(u "$bare_single")$single" | grep -c ':')" >>"$tsv"

    r=1
    while [ $r -le "$WRK_ROUNDS" ]; do
        log "wrk round $r/$WRK_ROUNDS (${WRK_SECONDS}s each, 7 runs)"
        # Alternate which side goes first.
        if [ $((r % 2)) = 1 ]; then first=bare; else first=ours; fi
        # serve --log-level notice, next to this round's bare run of the same request.
        [ $first = bare ] || wrk_run single quiet "$quiet_pid" "$(u "$quiet_port")$quiet_single"
        for c in single single304 batch poll304; do
            case $c in
                single) bp=$bare_single_pid; bport=$bare_single; path=$single; hdr= ;;
                single304) bp=$bare_s304_pid; bport=$bare_s304; path=$single; hdr="If-None-Match: $single_etag" ;;
                batch) bp=$bare_batch_pid; bport=$bare_batch; path=$batch; hdr= ;;
                poll304) bp=$bare_304_pid; bport=$bare_304; path=$batch; hdr="If-None-Match: $batch_etag" ;;
            esac
            if [ $first = bare ]; then
                wrk_run $c bare "$bp" "$(u "$bport")$path" "$hdr"
                wrk_run $c ours "$http_pid" "$(u "$port")$path" "$hdr"
            else
                wrk_run $c ours "$http_pid" "$(u "$port")$path" "$hdr"
                wrk_run $c bare "$bp" "$(u "$bport")$path" "$hdr"
            fi
        done
        [ $first = ours ] || wrk_run single quiet "$quiet_pid" "$(u "$quiet_port")$quiet_single"
        r=$((r + 1))
    done
    log "one-connection latency ($PROBE_COUNT requests each)"
    probe_run single bare "$bare_single" "$single" 200
    probe_run single ours "$port" "$single" 200
    probe_run single quiet "$quiet_port" "$quiet_single" 200
    probe_run single304 bare "$bare_s304" "$single" 304 "If-None-Match: $single_etag"
    probe_run single304 ours "$port" "$single" 304 "If-None-Match: $single_etag"
    probe_run batch bare "$bare_batch" "$batch" 200
    probe_run batch ours "$port" "$batch" 200
    probe_run poll304 bare "$bare_304" "$batch" 304 "If-None-Match: $batch_etag"
    probe_run poll304 ours "$port" "$batch" 304 "If-None-Match: $batch_etag"
    printf 'rss\tafter the HTTP benchmark (2 live loads)\t%s\n' "$(rss_kib "$http_pid")" >>"$tsv"
    stop_pid "$bare_single_pid"; stop_pid "$bare_batch_pid"; stop_pid "$bare_304_pid"; stop_pid "$bare_s304_pid"
    stop_pid "$http_pid"; stop_pid "$quiet_pid"

    # Instructions per request (deterministic, unlike the timings): the same requests on one
    # connection, counted by callgrind between zeroing and dumping its counters.
    if [ "$CALLGRIND_REQUESTS" -gt 0 ] && command -v valgrind >/dev/null; then
        log "callgrind ($CALLGRIND_REQUESTS requests per case; slow)"
        rm -f "$work"/cg.sqlite*
        cg_load() { # PORT: the two loads, as above (fresh database: load ids 1 and 2)
            o=$(upload "$1" "$single_obj" single); load_object "$1" "$o" >/dev/null
            o=$(upload "$1" "$fx/vars1000.o" vars1000); load_object "$1" "$o" >/dev/null
        }
        # Separate servers per case so each dump holds one kind of request.
        callgrind_serve single serve "/v1/loads/1/variables/$single_var" 200 ""
        callgrind_serve single quiet "/v1/loads/1/variables/$single_var" 200 "" --log-level notice
        callgrind_serve batch serve "/v1/loads/2/variables" 200 ""
        callgrind_serve poll304 serve "/v1/loads/2/variables" 304 "If-None-Match: $batch_etag"
        callgrind_bare single "$work/single.body" "$single_etag" 200 "$single"
        callgrind_bare batch "$work/batch.body" "$batch_etag" 200 "$batch"
        callgrind_bare poll304 "$work/batch.body" "$batch_etag" 304 "$batch" "If-None-Match: $batch_etag"
    fi
fi

# --- 2. Store ---------------------------------------------------------------------------------
if [ -z "${SKIP_STORE:-}" ]; then
    printf 'meta\tbig object bytes\t%s\n' "$(wc -c <"$fx/big.o")" >>"$tsv"
    port=$(free_port)
    start_serve "$work/store.sqlite" "$port"
    store_pid=$serve_pid
    r=1
    while [ $r -le "$STORE_ROUNDS" ]; do
        log "store round $r/$STORE_ROUNDS: $UPLOAD_COUNT raw inserts, $UPLOAD_COUNT uploads of $(wc -c <"$fx/big.o") bytes"
        "$benchbin" store-raw "$fx/big.o" "$UPLOAD_COUNT" "$work/raw.sqlite" >>"$tsv"
        rm -f "$work"/raw.sqlite*
        # Distinct objects in every round: the seed moves on (http_probe uses i + 1).
        line=$("$probe" upload "$port" "$fx/big.o" "$UPLOAD_COUNT" "big$r" $(((r - 1) * UPLOAD_COUNT + 1)))
        printf 'upload\tbig\t%s\n' "$(echo "$line" | tr ' ' '\t')" >>"$tsv"
        r=$((r + 1))
    done
    big=$(upload "$port" "$fx/big.o" big)
    small=$(upload "$port" "$fx/seeded.o" seeded)
    log "patches: $PATCH_BIG on the 16 MiB object, $PATCH_SMALL on a small one"
    line=$("$probe" req PATCH "$port" "/v1/objects/$big/variables" "$PATCH_BIG" 2 200 -b '{"big_knob": %d}')
    printf 'patch\tbig\t%s\n' "$(echo "$line" | tr ' ' '\t')" >>"$tsv"
    line=$("$probe" req PATCH "$port" "/v1/objects/$small/variables" "$PATCH_SMALL" 10 200 -b '{"seed_knob": %d}')
    printf 'patch\tsmall\t%s\n' "$(echo "$line" | tr ' ' '\t')" >>"$tsv"
    sleep 1
    printf 'rss\tafter the store benchmark (uploads of 16 MiB, patches)\t%s\n' "$(rss_kib "$store_pid")" >>"$tsv"
    stop_pid "$store_pid"
    [ -n "${KEEP:-}" ] || rm -f "$work"/store.sqlite*
fi

# --- 3. Start-up with many stored objects -----------------------------------------------------
if [ -z "${SKIP_STARTUP:-}" ]; then
    port=$(free_port)
    db=$work/startup.sqlite
    start_serve "$db" "$port"
    printf 'startup\tempty database (created)\t%s\t%s\n' "$serve_ms" "$(rss_kib "$serve_pid")" >>"$tsv"
    log "storing $STARTUP_OBJECTS small objects"
    line=$("$probe" upload "$port" "$fx/seeded.o" "$STARTUP_OBJECTS" seeded)
    printf 'upload\tsmall\t%s\n' "$(echo "$line" | tr ' ' '\t')" >>"$tsv"
    stop_pid "$serve_pid"
    n=$(sqlite3 "$db" 'SELECT count(*) FROM objects' 2>/dev/null || echo "$STARTUP_OBJECTS")
    printf 'meta\tstored objects at start-up\t%s\n' "$n" >>"$tsv"
    r=1
    while [ $r -le "$STARTUP_RUNS" ]; do
        start_serve "$db" "$port"
        sleep 0.2
        printf 'startup\t%s objects\t%s\t%s\n' "$n" "$serve_ms" "$(rss_kib "$serve_pid")" >>"$tsv"
        stop_pid "$serve_pid"
        r=$((r + 1))
    done
    [ -n "${KEEP:-}" ] || rm -f "$work"/startup.sqlite*
fi
[ -n "${KEEP:-}" ] || rm -f "$work"/*.sqlite*

printf 'load average after the service benchmarks\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$smeta"

# --- tables -----------------------------------------------------------------------------------
"$benchbin" service-report "$tsv" "$summary" >"$md"
cat "$md"

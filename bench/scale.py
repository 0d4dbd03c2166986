#!/usr/bin/env python3
"""bench/scale.py: how bpfdepot's costs grow with what it holds.

  1. Stored objects (100, 1,000, 10,000; SCALE_OBJECTS): start-up (exec -> first 200 on /healthz,
     `http_probe startup`), the time of `GET /v1/objects` (first page, default limit) on one
     keep-alive connection, and the idle memory of `serve` (VmRSS, RssAnon, PSS), from which the
     memory per stored object. The objects are real uploads through `POST /v1/objects`
     (`http_probe upload`, each a distinct copy of bench/fixtures/seeded.bpf.c).
  2. Live loads (1, then 200; SCALE_LOADS): wrk on one live variable of the first load with 1
     and with 200 loads alive, and memory idle and right after wrk (per live load: the
     difference over 199).
  3. Variables per object (1,000 to 10,000; SCALE_VARS): one live read of 1,000 of them
     (`?names=`, spread over the object) per request, on one keep-alive connection.

Prints a Markdown section on stdout, and appends its summary rows (MEASURE OURS LIMIT RATIO GOAL
MET) to SUMMARY (argument 1) so bench/run.sh's report shows them in RESULTS.md's table.

Environment: BPFDEPOT (the release binary), PROBE (bench/.build/c/http_probe), CLANG,
SCALE_OBJECTS, SCALE_LOADS, SCALE_VARS, SCALE_REQUESTS (timed requests per point, 300),
WRK_SECONDS (5). Needs root (loads) and wrk.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
BUILD = os.path.join(BENCH, ".build")
BPFDEPOT = os.environ.get("BPFDEPOT", os.path.join(BUILD, "release", "bpfdepot"))
PROBE = os.environ.get("PROBE", os.path.join(BUILD, "c", "http_probe"))
OBJECT_COUNTS = [int(x) for x in os.environ.get("SCALE_OBJECTS", "100,1000,10000").split(",")]
LOADS = int(os.environ.get("SCALE_LOADS", "200"))
VAR_COUNTS = [int(x) for x in os.environ.get("SCALE_VARS", "1000,2500,5000,10000").split(",")]
REQUESTS = int(os.environ.get("SCALE_REQUESTS", "300"))
WRK_SECONDS = os.environ.get("WRK_SECONDS", "5")


def clang():
    if os.environ.get("CLANG"):
        return os.environ["CLANG"]
    swift = shutil.which("swift")
    if swift:
        c = os.path.join(os.path.dirname(os.path.realpath(swift)), "clang")
        if os.access(c, os.X_OK):
            return c
    return "clang"


def log(msg):
    print("scale.py: " + msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def memory(pid):
    """(VmRSS, RssAnon, Pss) in KiB."""
    rss = anon = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("RssAnon:"):
                anon = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, anon, pss


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def memtext(m):
    return f"{mib(m[0])} ({mib(m[1])}; PSS {mib(m[2])})"


class Server:
    def __init__(self, db, *args):
        self.port = free_port()
        env = dict(os.environ, PROBE_LOG=db + ".log")
        out = subprocess.run([PROBE, "startup", str(self.port), "60000", BPFDEPOT, "serve", "--db", db,
                              "--listen", f"127.0.0.1:{self.port}", "--pin-root", "", "--log-level", "notice", *args],
                             capture_output=True, text=True, env=env, check=True).stdout.split()
        self.startup_ms = float(out[1])
        self.pid = int(out[3])
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port)

    def request(self, method, path, body=None, expect=(200,)):
        self.conn.request(method, path, body=body)
        r = self.conn.getresponse()
        data = r.read()
        if r.status not in expect:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
        return data

    def timed(self, path, n=REQUESTS, warmup=20):
        for _ in range(warmup):
            self.request("GET", path)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            self.request("GET", path)
            times.append((time.perf_counter() - t) * 1e6)
        times.sort()
        return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]

    def stop(self):
        self.conn.close()
        os.kill(self.pid, signal.SIGTERM)
        for _ in range(300):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def us(v):
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def compile_fixture(src, out):
    subprocess.run([clang(), "-target", "bpf", "-O2", "-g", "-c", src, "-o", out, "-I", os.path.join(ROOT, "Tests", "Fixtures"),
                    "-I", "/usr/include/x86_64-linux-gnu"], check=True)


def arena_available():
    out = subprocess.run([BPFDEPOT, "features", "--json"], capture_output=True, text=True).stdout
    try:
        return any(f["name"] == "arena_maps" and f["available"] for f in json.loads(out)["features"])
    except (ValueError, KeyError):
        return False


def wrk(port, path):
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{WRK_SECONDS}s", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else 0.0


def main():
    summary_path = sys.argv[1] if len(sys.argv) > 1 else None
    work = tempfile.mkdtemp(prefix="bpfdepot-scale-")
    rows = []  # summary rows
    md = ["", "## Scale: what grows with stored objects, live loads and variables", ""]
    md.append("`python3 bench/scale.py` (release build, `serve --log-level notice`, no pin root). Timings of "
              "single requests are taken by a Python `http.client` on one keep-alive connection (so they include "
              "about 50–100 µs of client time); throughput by `wrk -t2 -c64`. Memory is VmRSS (RssAnon; PSS from "
              "smaps_rollup).")
    try:
        seeded = os.path.join(work, "seeded.o")
        compile_fixture(os.path.join(BENCH, "fixtures", "seeded.bpf.c"), seeded)

        # --- 1. stored objects --------------------------------------------------------------
        db = os.path.join(work, "objects.sqlite")
        stored = 0
        table = []
        points = []
        for target in OBJECT_COUNTS:
            s = Server(db)
            if target > stored:
                log(f"storing objects {stored + 1}..{target}")
                subprocess.run([PROBE, "upload", str(s.port), seeded, str(target - stored), "scale", str(stored + 1)],
                               check=True, capture_output=True)
                stored = target
            s.stop()
            starts, mems = [], []
            for _ in range(3):
                s = Server(db)
                time.sleep(0.3)
                starts.append(s.startup_ms)
                mems.append(memory(s.pid))
                s.stop()
            s = Server(db)
            time.sleep(0.3)
            idle = memory(s.pid)
            p50, p99 = s.timed("/v1/objects")
            page = json.loads(s.request("GET", "/v1/objects"))
            shown = len(page.get("objects", []))
            s.stop()
            start = statistics.median(starts)
            mem = tuple(statistics.median(m[i] for m in mems) for i in range(3))
            points.append((target, start, p50, mem))
            table.append([f"{target:,}", f"{start:.1f} ms", f"{us(p50)} / {us(p99)} ({shown} objects)", memtext(mem)])
        md += ["", "### Stored objects", "",
               "| stored objects | start-up (median of 3) | `GET /v1/objects` first page, p50 / p99 | idle memory after start |",
               "| ---: | ---: | ---: | ---: |"]
        md += ["| " + " | ".join(r) + " |" for r in table]
        (n0, s0, g0, m0), (n1, s1, g1, m1) = points[0], points[-1]
        per_obj = [(m1[i] - m0[i]) / (n1 - n0) for i in range(3)]
        md.append("")
        md.append(f"From {n0:,} to {n1:,} objects: start-up {s0:.1f} → {s1:.1f} ms, the page {us(g0)} → {us(g1)}, "
                  f"memory per stored object {per_obj[0]:.2f} KiB RSS, {per_obj[1]:.2f} KiB anonymous, {per_obj[2]:.2f} KiB PSS "
                  "(the difference over the objects added, idle after start).")
        rows.append([f"Scale: start-up with {n1:,} stored objects (grows {s0:.1f} → {s1:.1f} ms from {n0:,})", f"{s1:.1f} ms",
                     "—", "—", "< 200 ms", "yes" if s1 < 200 else "**no**"])
        rows.append([f"Scale: `GET /v1/objects` first page with {n1:,} stored objects, p50 (from {us(g0)} at {n0:,})", us(g1),
                     "—", "—", "< 5 ms", "yes" if g1 < 5000 else "**no**"])
        rows.append(["Scale: memory per stored object, idle (RSS; anonymous; PSS)",
                     f"{per_obj[0]:.2f}; {per_obj[1]:.2f}; {per_obj[2]:.2f} KiB", "—", "—", "—", "—"])

        # --- 2. live loads ---------------------------------------------------------------------
        db = os.path.join(work, "loads.sqlite")
        s = Server(db)
        oid = json.loads(s.request("POST", "/v1/objects?name=seeded.o", open(seeded, "rb").read(), expect=(200, 201)))["id"]
        first = json.loads(s.request("POST", f"/v1/objects/{oid}/loads", expect=(201,)))["id"]
        path = f"/v1/loads/{first}/variables/seed_knob"
        s.request("GET", path)
        time.sleep(0.3)
        idle1 = memory(s.pid)
        rps1 = [wrk(s.port, path) for _ in range(2)]
        busy1 = memory(s.pid)
        log(f"{LOADS} live loads")
        last = first
        for _ in range(LOADS - 1):
            last = json.loads(s.request("POST", f"/v1/objects/{oid}/loads", expect=(201,)))["id"]
        time.sleep(0.3)
        idleN = memory(s.pid)
        rpsN = [wrk(s.port, path) for _ in range(2)]
        rpsLast = wrk(s.port, f"/v1/loads/{last}/variables/seed_knob")
        busyN = memory(s.pid)
        s.stop()
        r1, rN = statistics.median(rps1), statistics.median(rpsN)
        per_load = [(idleN[i] - idle1[i]) / (LOADS - 1) for i in range(3)]
        per_load_busy = [(busyN[i] - busy1[i]) / (LOADS - 1) for i in range(3)]
        md += ["", "### Live loads", "",
               f"One object (seeded.bpf.c: .data, .rodata, .bss, one program) loaded once, then {LOADS} times; wrk on "
               "`seed_knob` of the first load (median of 2 runs).", "",
               "| live loads | req/s | memory idle | memory right after wrk |", "| ---: | ---: | ---: | ---: |",
               f"| 1 | {r1:,.0f} | {memtext(idle1)} | {memtext(busy1)} |",
               f"| {LOADS} | {rN:,.0f} (the last load: {rpsLast:,.0f}) | {memtext(idleN)} | {memtext(busyN)} |", "",
               f"Per live load: {per_load[0]:.1f} KiB RSS, {per_load[1]:.1f} KiB anonymous, {per_load[2]:.1f} KiB PSS idle; "
               f"{per_load_busy[0]:.1f} / {per_load_busy[1]:.1f} / {per_load_busy[2]:.1f} KiB after wrk (the process's own "
               "memory: the maps themselves are kernel memory, charged to the memory cgroup)."]
        ratio = rN / r1 if r1 else 0
        rows.append([f"Scale: live GET with {LOADS} loads alive vs 1, req/s (wrk, 64 conn.)", f"{rN:,.0f}/s",
                     f"{r1:,.0f}/s (1 load)", f"{ratio:.2f}×", "≥ 0.9×", "yes" if ratio >= 0.9 else "**no**"])
        rows.append(["Scale: memory per live load, idle / after wrk (RSS; anonymous; PSS)",
                     f"{per_load[0]:.1f}; {per_load[1]:.1f}; {per_load[2]:.1f} KiB / "
                     f"{per_load_busy[0]:.1f}; {per_load_busy[1]:.1f}; {per_load_busy[2]:.1f} KiB", "—", "—", "—", "—"])

        # --- 3. variables per object --------------------------------------------------------------
        noarena = "" if arena_available() else "1"
        db = os.path.join(work, "vars.sqlite")
        s = Server(db)
        vtable = []
        vpoints = []
        for n in VAR_COUNTS:
            src = os.path.join(work, f"vars{n}.bpf.c")
            with open(src, "w") as f:
                subprocess.run(["sh", os.path.join(BENCH, "fixtures", "gen-vars.sh"), str(n)], stdout=f, check=True,
                               env=dict(os.environ, NOARENA=noarena))
            obj = os.path.join(work, f"vars{n}.o")
            compile_fixture(src, obj)
            oid = json.loads(s.request("POST", f"/v1/objects?name=vars{n}.o", open(obj, "rb").read(), expect=(200, 201)))["id"]
            lid = json.loads(s.request("POST", f"/v1/objects/{oid}/loads", expect=(201,)))["id"]
            allvars = json.loads(s.request("GET", f"/v1/loads/{lid}/variables"))["variables"]
            names = [v["name"] for v in allvars] if isinstance(allvars, list) else list(allvars.keys())
            step = max(1, len(names) // 1000)
            picked = names[::step][:1000]
            p50, p99 = s.timed(f"/v1/loads/{lid}/variables?names=" + ",".join(picked), n=max(50, REQUESTS // 3))
            vpoints.append((n, p50))
            vtable.append([f"{len(names):,}", f"{len(picked):,}", f"{us(p50)} / {us(p99)}"])
        s.stop()
        md += ["", "### Variables per object", "",
               "A generated object (bench/fixtures/gen-vars.sh N" + (", NOARENA=1: this kernel refuses arena maps" if noarena else "") +
               ") loaded once per size; each request reads 1,000 of its variables (`?names=`, every N/1000-th).", "",
               "| variables in the object | read per request | p50 / p99 |", "| ---: | ---: | ---: |"]
        md += ["| " + " | ".join(r) + " |" for r in vtable]
        (va, ta), (vb, tb) = vpoints[0], vpoints[-1]
        rows.append([f"Scale: 1,000 live variables per request from an object of {vb:,} (from {us(ta)} at {va:,}), p50", us(tb),
                     us(ta) + f" ({va:,} variables)", f"{tb / ta:.2f}×", "—", "—"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(md))
    if summary_path:
        with open(summary_path, "a") as f:
            for r in rows:
                f.write("\t".join(r) + "\n")


if __name__ == "__main__":
    main()

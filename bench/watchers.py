#!/usr/bin/env python3
"""bench/watchers.py: what N open event streams cost a running bpfdepot.

Starts `bpfdepot serve` (BPFDEPOT, default .build/release/bpfdepot) on a fresh database,
loads Tests/Fixtures/globals_run.bpf.c, opens N streams of
`GET /v1/loads/{id}/variables/input?watch=1&interval=1s` (N=1000 by default) and reads them
for WATCH_SECONDS (30): first idle (nothing changes), then active (a PATCH changes the variable every
second, so every stream gets one event per second). Prints, for each phase, the server's CPU
time over the phase as % of one core (utime+stime from /proc/PID/stat), its RSS and anonymous
memory (/proc/PID/status), events received, and bpfdepot_watchers from /metrics.

Watchers of one resource checked in the same round share one read; DISTINCT=1 adds a query
parameter of its own to each stream (`&viewer=I`, ignored by the route), so no two share: the
cost of N watchers of N different things.

    python3 bench/watchers.py                 # N=1000 WATCH_SECONDS=30
    N=200 WATCH_SECONDS=10 python3 bench/watchers.py
    DISTINCT=1 python3 bench/watchers.py
"""
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

N = int(os.environ.get("N", "1000"))
SECONDS = float(os.environ.get("WATCH_SECONDS", "30"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BPFDEPOT", os.path.join(ROOT, ".build/release/bpfdepot"))
PORT = int(os.environ.get("PORT", "18399"))
DISTINCT = os.environ.get("DISTINCT", "") not in ("", "0")
BASE = f"http://127.0.0.1:{PORT}"


def clang():
    swift = subprocess.run(["sh", "-c", "readlink -f $(command -v swift)"], capture_output=True, text=True).stdout.strip()
    return os.path.join(os.path.dirname(swift), "clang")


def request(method, path, body=None):
    req = urllib.request.Request(BASE + path, data=body, method=method)
    with urllib.request.urlopen(req) as r:
        return r.read()


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def memory(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon"):
                out[k] = int(v.split()[0]) / 1024
    return out


def watchers():
    for line in request("GET", "/metrics").decode().splitlines():
        if line.startswith("bpfdepot_watchers "):
            return int(float(line.split()[1]))
    return None


def phase(name, pid, socks, sel, seconds, writer=None):
    hz = os.sysconf("SC_CLK_TCK")
    events = 0
    t0, c0 = time.monotonic(), cpu_ticks(pid)
    next_write = t0 + 1
    value = 100
    while time.monotonic() - t0 < seconds:
        timeout = max(0.0, min(next_write - time.monotonic(), 0.2)) if writer else 0.2
        for key, _ in sel.select(timeout):
            data = key.fileobj.recv(65536)
            events += data.count(b"\nevent: ")
        if writer and time.monotonic() >= next_write:
            value += 1
            writer(value)
            next_write += 1
    elapsed, c1 = time.monotonic() - t0, cpu_ticks(pid)
    mem = memory(pid)
    cpu = (c1 - c0) / hz / elapsed * 100
    print(f"{name:7s} streams {len(socks):5d}  server CPU {cpu:6.2f}% of a core  RSS {mem.get('VmRSS', 0):6.1f} MiB"
          f"  anon {mem.get('RssAnon', 0):6.1f} MiB  events {events:6d} in {elapsed:.1f} s  bpfdepot_watchers {watchers()}")
    return cpu


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, N + 256)), hard))
    work = tempfile.mkdtemp(prefix="bpfdepot-watchers-")
    obj = os.path.join(work, "globals_run.o")
    subprocess.run([clang(), "-target", "bpf", "-O2", "-g", "-c", os.path.join(ROOT, "Tests/Fixtures/globals_run.bpf.c"),
                    "-o", obj, "-I", os.path.join(ROOT, "Tests/Fixtures"),
                    "-I/usr/include/" + subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True).stdout.strip()],
                   check=True)
    server = subprocess.Popen([BIN, "serve", "--db", os.path.join(work, "depot.sqlite"), "--listen", f"127.0.0.1:{PORT}",
                               "--max-watchers", str(N + 10), "--max-connections", str(N + 100), "--log-level", "warning"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        with open(obj, "rb") as f:
            oid = json.loads(request("POST", "/v1/objects?name=globals_run.o", f.read()))["id"]
        load = json.loads(request("POST", f"/v1/objects/{oid}/loads"))["id"]
        path = f"/v1/loads/{load}/variables/input?watch=1&interval=1s"
        print(f"bench/watchers.py: {BIN}, {N} streams of {path}{'&viewer=I (DISTINCT=1: no shared reads)' if DISTINCT else ''},"
              f" {SECONDS:.0f} s per phase")
        sel = selectors.DefaultSelector()
        socks = []
        for i in range(N):
            s = socket.create_connection(("127.0.0.1", PORT))
            target = f"{path}&viewer={i}" if DISTINCT else path
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks.append(s)
        time.sleep(2)  # every stream open and its first event sent
        for key, _ in sel.select(0.5):
            key.fileobj.recv(65536)
        phase("idle", server.pid, socks, sel, SECONDS)

        def write(v):
            request("PATCH", f"/v1/loads/{load}/variables", json.dumps({"input": v}).encode())
        phase("active", server.pid, socks, sel, SECONDS, writer=write)
        for s in socks:
            s.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())

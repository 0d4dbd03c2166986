#!/usr/bin/env python3
"""The kernel test matrix: the kernel-facing suites on this host and in VMs on Debian kernels.

    scripts/kernel-matrix.py [--kernels 6.12,6.1] [--skip-host] [--out DIR]

Runs the already built test bundle (`swift build --build-tests`, or the build `swift test`
leaves) with the kernel-facing suites on the host and, through scripts/vmtest.py, on each
kernel, each run writing xUnit results. Prints one table, suite × kernel → passed / failed /
skipped, the reasons tests were skipped, and each run's time. Fails (exit 1) when:
- any test failed or a run did not finish, on any kernel;
- no arena test ran on any kernel (tests marked `.arenaTally` append a line to
  $BPFDEPOT_ARENA_TALLY when they run; skipped ones never do);
- a test the host skips passed on no VM kernel (the host leg runs every suite of the targets
  that may touch the kernel: all but BPFObjectTests and DepotStoreTests, which never do);
- on a kernel listed in EXPECT_PASSED, a named test did not pass (was skipped or missing):
  on 6.12 the arena suites, on 6.1 the typed "no arena maps" refusals.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Suites that talk to the kernel. The pure ones (parsers, store, HTTP framing) run on the host
# in `swift test` and gain nothing from another kernel; timing-sensitive HTTP suites would only
# measure how slow TCG is.
KERNEL_SUITES = [
    "BPFKernelTests.SysTests",
    "BPFKernelTests.LoaderTests",
    "BPFKernelTests.PinningTests",
    "BPFKernelTests.ArenaFixtureLoadTests",
    "BPFKernelTests.AdoptionTests",
    "BPFKernelTests.ModuleBTFTests",
    "BPFKernelTests.KsymTests",
    "BPFKernelTests.LinkTests",
    "BPFKernelTests.NetworkLinkTests",
    "BPFKernelTests.ProbeLinkTests",
    "DepotHTTPTests.ServiceEndToEndTests",
    "DepotHTTPTests.ServiceRouterTests",
    "DepotHTTPTests.ConditionalRequestTests",
    "DepotHTTPTests.FastPathTests",
    "DepotHTTPTests.ObservabilityTests",
    "DepotHTTPTests.LoadLimitsTests",
    "DepotHTTPTests.ServeProcessTests",
    "DepotHTTPTests.RestartTests",
    "DepotHTTPTests.SystemReportTests",
    "DepotHTTPTests.FeaturesCommandTests",
    "DepotHTTPTests.LinkServiceTests",
    "DepotHTTPTests.ArenaLinkServiceTests",
    "DepotHTTPTests.IteratorOutputServiceTests",
    "DepotHTTPTests.LoadAttachCommandTests",
    "BPFKernelTests.ArenaPageProbeTests",
    "DepotHTTPTests.ArenaFollowTests",
    "DepotHTTPTests.MapEntriesTests",
    "BPFKernelTests.MapEntriesKernelTests",
]

# Test targets that never touch the kernel (BPFObject is pure; the store is SQLite): their
# skips (a missing oracle, say) are not the host kernel's to prove elsewhere.
SKIP_PURE_TARGETS = ["--skip", "BPFObjectTests", "--skip", "DepotStoreTests"]

# Tests that must have passed (not merely not failed) on a kernel: what that kernel proves.
EXPECT_PASSED = {
    "6.12": [
        "BPFKernelTests.ArenaFixtureLoadTests/arenaListDefaultLength()",
        "BPFKernelTests.LoaderTests/arenaGlobalsKfuncsAndKconfig()",
        "BPFKernelTests.AdoptionTests/anAdoptedLoadHasTheSameObjectsMemoryAndValues()",
        "DepotHTTPTests.ServiceEndToEndTests/arenaPatchLoadRunAndLiveValues()",
        "DepotHTTPTests.RestartTests/aLoadSurvivesKill9WithItsLiveValuesAndStillUnloads()",
        "DepotHTTPTests.SystemReportTests/arenaMapsAgreesWithARealArenaMap()",
        "DepotHTTPTests.ArenaLinkServiceTests/aTracingLinkCountsIntoAnArenaVariableReadLiveOverHTTP()",
        "DepotHTTPTests.ArenaFollowTests/anArenaListReadsAsItsNodesAndNoReadAllocatesAPage()",
        "DepotHTTPTests.ArenaFollowTests/aKernelStyleHlistReadsAsItsElementsAndTheAllocatorCountsNoNewPage()",
        "BPFKernelTests.ArenaPageProbeTests/theProbeLoadsAndAnswersOnlyForArenas()",
        "DepotHTTPTests.MapEntriesTests/everyMapKindReadsBackWhatTheProgramWrote()",
        # Hooks this host's kernel refuses or lacks (fentry, lsm, map iterators, kprobes).
        "BPFKernelTests.LinkTests/fentryCountsNanosleeps()",
        "BPFKernelTests.LinkTests/lsmCountsOpensAndAllowsThem()",
        "BPFKernelTests.LinkTests/mapIteratorPrintsTheNamedMapsElements()",
        "BPFKernelTests.ProbeLinkTests/kprobesCountNanosleeps()",
        "BPFKernelTests.ProbeLinkTests/kprobeMultiCountsNanosleeps()",
        "DepotHTTPTests.LinkServiceTests/linksSurviveKill9AndStillDetach()",
    ],
    "6.1": [
        "BPFKernelTests.LoaderTests/arenaObjectOnAKernelWithoutArenasIsATypedRefusal()",
        "DepotHTTPTests.ServiceEndToEndTests/anArenaLoadOnAKernelWithoutArenasIsA422KernelFeatureProblem()",
        "DepotHTTPTests.SystemReportTests/arenaMapsAgreesWithARealArenaMap()",
        "DepotHTTPTests.MapEntriesTests/everyMapKindReadsBackWhatTheProgramWrote()",
    ],
}


def log(msg: str) -> None:
    print(f"kernel-matrix: {msg}", file=sys.stderr, flush=True)


def existing_suites(bundle: Path) -> list[str]:
    """KERNEL_SUITES that the bundle has (a filter matching nothing is an error for no one)."""
    listed = subprocess.run([str(bundle), "--testing-library", "swift-testing", "--list-tests"],
                            capture_output=True, text=True).stdout
    present = {line.split("/")[0] for line in listed.splitlines() if "/" in line}
    return [s for s in KERNEL_SUITES if s in present]


def test_command(bundle: Path, suites: list[str]) -> list[str]:
    filters = [arg for s in suites for arg in ("--filter", s)]
    return [str(bundle), "--testing-library", "swift-testing", *filters]


class Run:
    def __init__(self, kernel: str, out: Path):
        self.kernel = kernel
        self.out = out
        self.status: int | None = None
        self.seconds = 0.0
        self.cases: dict[str, str] = {}        # "Suite/test()" → passed / failed / skipped
        self.skip_reasons: collections.Counter[str] = collections.Counter()
        self.arena_ran = 0

    def read(self) -> None:
        xml = self.out / "tests.xml"
        try:
            cases = list(ET.parse(xml).getroot().iter("testcase")) if xml.exists() else []
        except ET.ParseError as e:
            # A run cut off (a guest panic, the timeout) leaves the file half written.
            log(f"{self.kernel}: {xml} is not complete XML ({e}): no results from this run")
            cases = []
        if cases:
            for case in cases:
                key = f"{case.get('classname')}/{case.get('name')}"
                if case.find("failure") is not None or case.find("error") is not None:
                    state = "failed"
                elif (skipped := case.find("skipped")) is not None:
                    state = "skipped"
                    self.skip_reasons[(skipped.text or skipped.get("message") or "").strip()] += 1
                else:
                    state = "passed"
                # A parameterised test has one row per case: any failure fails it.
                if self.cases.get(key) != "failed":
                    self.cases[key] = state
        tally = self.out / "arena-tally.txt"
        if tally.exists():
            self.arena_ran = sum(1 for line in tally.read_text().splitlines() if line.strip())


def run_host(bundle: Path, suites: list[str], out: Path) -> Run:
    run = Run("host", out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = dict(os.environ, BPFDEPOT_ARENA_TALLY=str(out / "arena-tally.txt"))
    started = time.monotonic()
    with open(out / "console.log", "w") as console:
        command = test_command(bundle, suites) if suites else [str(bundle), "--testing-library", "swift-testing", *SKIP_PURE_TARGETS]
        run.status = subprocess.run(command + ["--xunit-output", str(out / "tests.xml")], stdout=console,
                                    stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
    run.seconds = time.monotonic() - started
    run.read()
    return run


def run_vm(kernel: str, bundle: Path, suites: list[str], out: Path, timeout: float) -> Run:
    run = Run(kernel, out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    # $VMTEST_RESULTS is the guest's path of `out`; the shell in the guest expands it.
    inner = ('BPFDEPOT_ARENA_TALLY="$VMTEST_RESULTS/arena-tally.txt" exec '
             + shlex.join(test_command(bundle, suites)) + ' --xunit-output "$VMTEST_RESULTS/tests.xml"')
    cmd = [sys.executable, str(ROOT / "scripts" / "vmtest.py"), "--kernel", kernel, "--results", str(out),
           "--timeout", str(timeout), "--", "sh", "-c", inner]
    started = time.monotonic()
    with open(out / "console.log", "w") as console:
        run.status = subprocess.run(cmd, stdout=console, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    run.seconds = time.monotonic() - started
    run.read()
    return run


def cell(run: Run, suite: str) -> str:
    states = collections.Counter(state for key, state in run.cases.items() if key.split("/")[0] == suite)
    if not states:
        return "—"
    parts = [f"{states[s]} {s}" for s in ("passed", "failed", "skipped") if states[s]]
    return ", ".join(parts)


def report(runs: list[Run], suites: list[str]) -> list[str]:
    problems: list[str] = []
    header = ["suite"] + [r.kernel for r in runs]
    rows = [[s.split(".", 1)[1]] + [cell(r, s) for r in runs] for s in suites]
    rows.append(["arena tests that ran"] + [str(r.arena_ran) for r in runs])
    rows.append(["time (s)"] + [f"{r.seconds:.0f}" for r in runs])
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    print()
    for r in runs:
        for reason, n in r.skip_reasons.most_common():
            print(f"{r.kernel}: {n} skipped: {reason}")
        refused = [line for line in (r.out / "console.log").read_text(errors="replace").splitlines()
                   if "arena load refused:" in line]
        for line in refused[:1]:
            print(f"{r.kernel}: {line.strip()}")
        failed = sorted(k for k, s in r.cases.items() if s == "failed")
        for k in failed:
            problems.append(f"{r.kernel}: {k} failed")
        if r.status != 0:
            problems.append(f"{r.kernel}: the test run exited {r.status} (console: {r.out / 'console.log'})")
        console = (r.out / "console.log").read_text(errors="replace")
        if "Kernel panic" in console:
            oops = next((line.strip() for line in console.splitlines() if "Oops" in line or "BUG:" in line), "")
            problems.append(f"{r.kernel}: the guest kernel panicked: {oops}")
        if not r.cases:
            problems.append(f"{r.kernel}: no test results")
        series = re.match(r"\d+\.\d+", r.kernel)
        for name in EXPECT_PASSED.get(series.group(0) if series else r.kernel, []):
            if r.cases.get(name) != "passed":
                problems.append(f"{r.kernel}: {name} must pass here, found {r.cases.get(name, 'not run')}")
    # What the host cannot run must be proven in a VM.
    host = next((r for r in runs if r.kernel == "host"), None)
    vms = [r for r in runs if r.kernel != "host"]
    if host and vms:
        for name, state in sorted(host.cases.items()):
            if state == "skipped" and not any(r.cases.get(name) == "passed" for r in vms):
                where = ", ".join(f"{r.kernel}: {r.cases.get(name, 'not run')}" for r in vms)
                problems.append(f"{name} is skipped on the host and passed on no VM kernel ({where})"
                                + ("" if name.split("/")[0] in suites else "; add its suite to KERNEL_SUITES"))
    if sum(r.arena_ran for r in runs) == 0:
        problems.append("no arena test ran on any kernel")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", default="6.12,6.1", help="comma-separated kernel series or package names")
    ap.add_argument("--skip-host", action="store_true")
    ap.add_argument("--bundle", default=str(ROOT / ".build" / "debug" / "bpfdepotPackageTests.xctest"))
    ap.add_argument("--out", default="/var/tmp/bpfdepot-kernel-matrix")
    ap.add_argument("--timeout", type=float, default=2400, help="seconds per VM")
    args = ap.parse_args()
    bundle = Path(args.bundle)
    if not bundle.exists():
        log(f"no test bundle at {bundle}: run `swift build --build-tests` first")
        return 1
    # The VMs read the bundle over 9p while it runs: a copy keeps a rebuild from changing it
    # under them. `bpfdepot` goes beside it (the service tests start it from there).
    snapshot = Path(args.out) / "bin"
    shutil.rmtree(snapshot, ignore_errors=True)
    snapshot.mkdir(parents=True)
    for name in (bundle.name, "bpfdepot"):
        shutil.copy2(bundle.parent / name, snapshot / name)
    bundle = snapshot / bundle.name
    suites = existing_suites(bundle)
    log(f"suites: {', '.join(s.split('.', 1)[1] for s in suites)}")

    runs: list[Run] = []
    if not args.skip_host:
        log("host: running")
        # Every suite that may touch the kernel, so any test the host skips is held to the VMs.
        runs.append(run_host(bundle, [], Path(args.out) / "host"))
        log(f"host: exit {runs[-1].status} after {runs[-1].seconds:.0f} s")
    for kernel in [k for k in args.kernels.split(",") if k]:
        log(f"{kernel}: booting")
        runs.append(run_vm(kernel, bundle, suites, Path(args.out) / kernel, args.timeout))
        log(f"{kernel}: exit {runs[-1].status} after {runs[-1].seconds:.0f} s")

    problems = report(runs, suites)
    for p in problems:
        print(f"kernel-matrix: FAILED: {p}")
    if not problems:
        print("kernel-matrix: passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

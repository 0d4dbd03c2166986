// bpfdepot-bench: our side of the parser/loader benchmarks; bench/run.sh drives it together with
// bench/c/libbpf_bench.c (libbpf's side) and turns both outputs into bench/RESULTS.md.
//
//   bpfdepot-bench parse FIXTURE.o NAME ITERATIONS WARMUP
//       ObjectSpec(elf:name:) on bytes already in memory.
//   bpfdepot-bench load FIXTURE.o NAME ITERATIONS WARMUP PIN_ROOT
//       ObjectSpec(elf:name:) + Loader.load + unload().
//   bpfdepot-bench vmlinux - NAME ITERATIONS WARMUP
//       read /sys/kernel/btf/vmlinux + BTFIndex(parsing:) (one pass over the records; types are
//       decoded when asked for) + KernelBTF's first find: what our loader does once per process
//       (KernelBTF.vmlinux() caches it).
//   bpfdepot-bench callgrind-parse FIXTURE.o NAME ITERATIONS
//       one untimed warm-up parse, then ITERATIONS parses inside callgrindParseRegion, the
//       function run.sh collects with `--toggle-collect='*callgrindParseRegion*'`.
//   bpfdepot-bench store-raw OBJ COUNT DB
//       SHA-256 (swift-crypto) + one SQLite blob insert per distinct variant of OBJ: the raw
//       cost under `POST /v1/objects` (bench/service.sh; see StoreRaw.swift).
//   bpfdepot-bench service-report SERVICE.tsv SUMMARY.tsv
//       the Markdown tables of bench/service.sh's measurements (stdout) and the summary rows
//       (SUMMARY.tsv) that `report` puts at the top of RESULTS.md (ServiceReport.swift).
//   bpfdepot-bench report RESULTS.tsv CALLGRIND.tsv META.tsv [NOTES.md [SUMMARY.tsv SERVICE.md]]
//       the Markdown tables of RESULTS.md from the collected lines: a summary of ratios and
//       goals, the service tables (SERVICE.md), the loader tables, then NOTES.md verbatim.
//
// parse/load print one tab-separated line, the same format as libbpf_bench:
//   IMPL  OP  NAME  N  COLD_US  MEDIAN_US  P90_US  MIN_US
// COLD_US is the first iteration of this fresh process. For load that includes what our loader
// caches per process (vmlinux BTF, kernel config) and the kernel feature probes.
import BPFKernel
import BPFObject
import Glibc

func fail(_ message: String) -> Never {
    let line = "bpfdepot-bench: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

func nowMicros() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1e6 + Double(ts.tv_nsec) / 1e3
}

func readBytes(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { fail("cannot open \(path)") }
    defer { fclose(f) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n <= 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return out
}

/// Nearest-rank percentile of a sorted sample (same rule as libbpf_bench.c).
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    let rank = min(max(Int((p / 100 * Double(sorted.count)).rounded(.up)), 1), sorted.count)
    return sorted[rank - 1]
}

func clearPins(_ root: String) {
    guard let d = opendir(root) else { return }
    defer { closedir(d) }
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name.hasPrefix(".") { continue }
        unlink("\(root)/\(name)")
    }
}

@inline(never)
func parse(_ bytes: [UInt8], _ name: String) -> ObjectSpec {
    do { return try ObjectSpec(elf: bytes, name: name) } catch { fail("parse \(name): \(error)") }
}

/// Everything callgrind counts for our parse (see run.sh).
@inline(never)
func callgrindParseRegion(_ bytes: [UInt8], _ name: String, _ iterations: Int) -> Int {
    var programs = 0
    for _ in 0..<iterations { programs &+= parse(bytes, name).programs.count }
    return programs
}

/// Times `body`; `between` runs after each iteration, outside the timed region.
func timed(op: String, name: String, iterations: Int, warmup: Int, body: () -> Void, between: () -> Void = {}) {
    var sample: [Double] = []
    sample.reserveCapacity(iterations)
    var cold = 0.0
    for i in 0..<(max(warmup, 1) + iterations) {
        let t0 = nowMicros()
        body()
        let t = nowMicros() - t0
        between()
        if i == 0 { cold = t }
        if i >= max(warmup, 1) { sample.append(t) }
    }
    sample.sort()
    print("ours\t\(op)\t\(name)\t\(iterations)\t\(fmt(cold, 1))\t\(fmt(percentile(sample, 50), 2))\t\(fmt(percentile(sample, 90), 2))\t\(fmt(sample[0], 2))")
}

/// `v` with exactly `digits` decimals (no exponent notation).
func fmt(_ v: Double, _ digits: Int) -> String {
    var scale = 1
    for _ in 0..<digits { scale *= 10 }
    let n = Int((abs(v) * Double(scale)).rounded())
    var s = (v < 0 && n != 0 ? "-" : "") + String(n / scale)
    if digits > 0 {
        let frac = String(n % scale)
        s += "." + String(repeating: "0", count: digits - frac.count) + frac
    }
    return s
}

let args = CommandLine.arguments
guard args.count >= 2 else { fail("usage: bpfdepot-bench parse|load|callgrind-parse|report ...") }
switch args[1] {
case "parse":
    guard args.count >= 6 else { fail("usage: bpfdepot-bench parse OBJ NAME ITERATIONS WARMUP") }
    let bytes = readBytes(args[2]), name = args[3]
    timed(op: "parse", name: name, iterations: Int(args[4]) ?? 2000, warmup: Int(args[5]) ?? 200) {
        _ = parse(bytes, name)
    }
case "load":
    guard args.count >= 7 else { fail("usage: bpfdepot-bench load OBJ NAME ITERATIONS WARMUP PIN_ROOT") }
    let bytes = readBytes(args[2]), name = args[3]
    var options = LoadOptions()
    options.pinRoot = args[6]
    timed(op: "load", name: name, iterations: Int(args[4]) ?? 200, warmup: Int(args[5]) ?? 10, body: {
        let spec = parse(bytes, name)
        do {
            let obj = try Loader.load(spec, options: options)
            obj.unload()
        } catch {
            fail("load \(name): \(error)")
        }
    }, between: {
        // Every iteration creates maps.bpf.c's PIN_BY_NAME map again, as libbpf_bench's do.
        clearPins(options.pinRoot)
    })
case "vmlinux":
    guard args.count >= 6 else { fail("usage: bpfdepot-bench vmlinux - NAME ITERATIONS WARMUP") }
    // The loader keeps its KernelBTF for the life of the process, so freeing it (a quarter of
    // the time, mostly the name index) happens outside the timed region.
    var kept: KernelBTF?
    timed(op: "vmlinux", name: args[3], iterations: Int(args[4]) ?? 20, warmup: Int(args[5]) ?? 2, body: {
        let bytes = readBytes("/sys/kernel/btf/vmlinux")
        do {
            let kernel = KernelBTF(index: try BTFIndex(parsing: bytes))
            guard kernel.find("bpf_arena_alloc_pages", kind: .function) != nil else { fail("bpf_arena_alloc_pages not in vmlinux BTF") }
            kept = kernel
        } catch {
            fail("vmlinux BTF: \(error)")
        }
    }, between: { if kept != nil { kept = nil } })
case "callgrind-parse":
    guard args.count >= 5 else { fail("usage: bpfdepot-bench callgrind-parse OBJ NAME ITERATIONS") }
    let bytes = readBytes(args[2]), name = args[3], n = Int(args[4]) ?? 20
    _ = parse(bytes, name)
    let programs = callgrindParseRegion(bytes, name, n)
    print("ours\tcallgrind-parse\t\(name)\t\(n)\t\(programs)")
case "store-raw":
    guard args.count >= 5, let n = Int(args[3]), n > 0 else { fail("usage: bpfdepot-bench store-raw OBJ COUNT DB") }
    storeRaw(path: args[2], count: n, dbPath: args[4])
case "service-report":
    guard args.count >= 4 else { fail("usage: bpfdepot-bench service-report SERVICE.tsv SUMMARY.tsv") }
    var report = ServiceReport(path: args[2])
    print(report.markdown(), terminator: "")
    let text = report.summary.map { $0.joined(separator: "\t") + "\n" }.joined()
    guard let f = fopen(args[3], "w") else { fail("cannot write \(args[3])") }
    fputs(text, f)
    fclose(f)
case "report":
    guard args.count >= 5 else { fail("usage: bpfdepot-bench report RESULTS.tsv CALLGRIND.tsv META.tsv [NOTES.md [SUMMARY.tsv SERVICE.md]]") }
    var report = Report(results: args[2], callgrind: args[3], meta: args[4])
    if args.count >= 6 { report.notesPath = args[5] }
    if args.count >= 8 {
        report.serviceSummaryPath = args[6]
        report.serviceMarkdownPath = args[7]
    }
    print(report.markdown())
default:
    fail("unknown operation \(args[1])")
}

import Glibc

/// Turns run.sh's collected lines into RESULTS.md's Markdown.
///
/// results.tsv: `IMPL OP NAME N COLD_US MEDIAN_US P90_US MIN_US` (bpfdepot-bench, libbpf_bench)
/// callgrind.tsv: `IMPL NAME N IR` (IR: instructions inside the toggled region for N parses)
/// meta.tsv: `KEY VALUE`, printed in order as the header list.
struct Report {
    struct Timing {
        let n: Int
        let cold, median, p90, min: Double
    }

    var meta: [(String, String)] = []
    /// [op][impl][fixture]
    var timings: [String: [String: [String: Timing]]] = [:]
    /// [impl][fixture] → instructions per parse
    var instructions: [String: [String: Double]] = [:]
    /// Implementations and fixtures in first-seen order; "ours" first.
    var impls: [String] = ["ours"]
    var fixtures: [String] = []
    var callgrindFixtures: [String] = []

    init(results: String, callgrind: String, meta: String) {
        for f in Self.rows(meta) where f.count >= 2 { self.meta.append((f[0], f[1...].joined(separator: "\t"))) }
        // Several rounds (separate processes) of the same measurement: each figure is the median
        // of the rounds' figures.
        var rounds: [String: [String: [String: [Timing]]]] = [:]
        for f in Self.rows(results) where f.count >= 8 {
            guard let n = Int(f[3]), let c = Double(f[4]), let m = Double(f[5]), let p = Double(f[6]), let lo = Double(f[7]) else { continue }
            note(impl: f[0], fixture: f[2])
            rounds[f[1], default: [:]][f[0], default: [:]][f[2], default: []].append(Timing(n: n, cold: c, median: m, p90: p, min: lo))
        }
        for (op, byImpl) in rounds {
            for (impl, byFixture) in byImpl {
                for (fixture, ts) in byFixture {
                    timings[op, default: [:]][impl, default: [:]][fixture] = Timing(
                        n: ts[0].n, cold: Self.median(ts.map(\.cold)), median: Self.median(ts.map(\.median)),
                        p90: Self.median(ts.map(\.p90)), min: ts.map(\.min).min() ?? 0)
                    roundCount[op] = max(roundCount[op] ?? 0, ts.count)
                }
            }
        }
        for f in Self.rows(callgrind) where f.count >= 4 {
            guard let n = Int(f[2]), n > 0, let ir = Double(f[3]) else { continue }
            note(impl: f[0], fixture: f[1])
            if !callgrindFixtures.contains(f[1]) { callgrindFixtures.append(f[1]) }
            instructions[f[0], default: [:]][f[1]] = ir / Double(n)
        }
    }

    var roundCount: [String: Int] = [:]

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    func roundsNote(_ op: String) -> String {
        let r = roundCount[op] ?? 1
        return r > 1 ? " Each figure is the median over \(r) rounds (separate processes, implementations interleaved)." : ""
    }

    private mutating func note(impl: String, fixture: String) {
        if !impls.contains(impl) { impls.append(impl) }
        if !fixtures.contains(fixture) { fixtures.append(fixture) }
    }

    static func rows(_ path: String) -> [[String]] {
        guard let f = fopen(path, "r") else { return [] }
        defer { fclose(f) }
        var text: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            text.append(contentsOf: buf[0..<n])
        }
        return String(decoding: text, as: UTF8.self).split(separator: "\n").map {
            $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        }
    }

    var others: [String] { impls.filter { $0 != "ours" } }

    func label(_ impl: String) -> String {
        impl.hasPrefix("libbpf-v") ? "libbpf \(impl.dropFirst("libbpf-v".count))" : impl
    }

    func ratio(_ a: Double?, _ b: Double?) -> String {
        guard let a, let b, b > 0 else { return "—" }
        let r = a / b
        return (r >= 0.095 ? fmt(r, 2) : r >= 0.0095 ? fmt(r, 3) : fmt(r, 4)) + "×"
    }

    func us(_ v: Double?) -> String { v.map { fmt($0, $0 < 100 ? 1 : 0) } ?? "—" }
    func ms(_ v: Double?) -> String { v.map { fmt($0 / 1000, $0 < 10_000 ? 2 : 1) } ?? "—" }

    func table(_ header: [String], _ rows: [[String]]) -> String {
        var out = "| " + header.joined(separator: " | ") + " |\n"
        out += "|" + header.enumerated().map { $0.offset == 0 ? " --- |" : " ---: |" }.joined() + "\n"
        for r in rows { out += "| " + r.joined(separator: " | ") + " |\n" }
        return out
    }

    /// bench/service.sh's summary rows (`MEASURE OURS LIMIT RATIO GOAL MET`) and its tables.
    var serviceSummaryPath = ""
    var serviceMarkdownPath = ""

    /// One row per loader comparison: the range of ours / libbpf over the fixtures.
    func loaderSummary() -> [[String]] {
        var out: [[String]] = []
        for (op, what) in [("parse", "Loader: parse, ours / libbpf median"), ("load", "Loader: open+load+unload, ours / libbpf median")] {
            guard let t = timings[op], let ours = t["ours"] else { continue }
            for o in others {
                guard let theirs = t[o] else { continue }
                let r = fixtures.compactMap { fx -> Double? in
                    guard let a = ours[fx]?.median, let b = theirs[fx]?.median, b > 0 else { return nil }
                    return a / b
                }
                guard !r.isEmpty else { continue }
                let met = r.filter { $0 <= 1 }.count
                out.append(["\(what) (\(label(o)), \(r.count) fixtures)", "—", label(o),
                            "\(ratio(r.min(), 1)) … \(ratio(r.max(), 1)) (median \(ratio(Self.median(r), 1)))", "≤ 1.0×",
                            met == r.count ? "yes" : "**\(met) of \(r.count)**"])
            }
        }
        return out
    }

    func markdown() -> String {
        var out = "# bpfdepot benchmarks\n\n"
        for (k, v) in meta { out += "- **\(k)**: \(v)\n" }

        let summary = Self.rows(serviceSummaryPath).filter { $0.count >= 6 } + loaderSummary()
        if !summary.isEmpty {
            out += "\n## Summary: each pair measured in this run\n\n"
            out += "*ratio* = ours / the limit (for req/s higher is better, for times lower is better). "
            out += "Details and method in the sections below.\n\n"
            out += table(["measure", "bpfdepot", "limit", "ratio", "goal", "met"], summary)
        }
        if let service = Self.text(serviceMarkdownPath), !service.isEmpty {
            out += service
        }

        let parse = timings["parse"] ?? [:]
        if !parse.isEmpty {
            let n = parse["ours"]?.values.first?.n ?? 0
            out += "\n## 1. Parse: `ObjectSpec(elf:name:)` vs `bpf_object__open_mem` + `bpf_object__close`\n\n"
            out += "Microseconds per object, bytes already in memory; median and p90 of \(n) iterations after warm-up, "
            out += "each fixture in a fresh process; *min* is the fastest iteration of all rounds. Ratio = ours / libbpf on "
            out += "the median (< 1: we are faster), and on the minimum, which is the steadier figure on this shared VM."
            out += roundsNote("parse") + "\n\n"
            var header = ["fixture", "ours median", "ours p90", "ours min"]
            for o in others {
                header += ["\(label(o)) median", "\(label(o)) p90", "\(label(o)) min", "ours / \(label(o))", "(on min)"]
            }
            let rows = fixtures.filter { parse["ours"]?[$0] != nil }.map { fx -> [String] in
                let ours = parse["ours"]?[fx]
                var r = [fx, us(ours?.median), us(ours?.p90), us(ours?.min)]
                for o in others {
                    let t = parse[o]?[fx]
                    r += [us(t?.median), us(t?.p90), us(t?.min), ratio(ours?.median, t?.median), ratio(ours?.min, t?.min)]
                }
                return r
            }
            out += table(header, rows)
        }

        let load = timings["load"] ?? [:]
        if !load.isEmpty {
            let n = load["ours"]?.values.first?.n ?? 0
            out += "\n## 2. Open + load + unload\n\n"
            out += "Milliseconds per object: ours = `ObjectSpec(elf:name:)` + `Loader.load` + `unload()`; libbpf = "
            out += "`bpf_object__open_mem` + `bpf_object__load` + `bpf_object__close`. *cold* is the first iteration "
            out += "in a fresh process (ours then reads and parses vmlinux BTF and the kernel config, which it caches "
            out += "per process; both run their kernel feature probes). *median*/*p90* are the steady state over \(n) "
            out += "iterations after warm-up: there ours reuses the cached vmlinux BTF and kconfig while libbpf "
            out += "re-reads and re-parses vmlinux BTF on every load that needs it (kfuncs, ksyms, `tp_btf`/`iter` "
            out += "targets). **The ratio compares the steady-state medians.**" + roundsNote("load") + "\n\n"
            var header = ["fixture", "ours cold", "ours median", "ours p90"]
            for o in others { header += ["\(label(o)) cold", "\(label(o)) median", "\(label(o)) p90", "ours / \(label(o))"] }
            let rows = fixtures.filter { load["ours"]?[$0] != nil }.map { fx -> [String] in
                let ours = load["ours"]?[fx]
                var r = [fx, ms(ours?.cold), ms(ours?.median), ms(ours?.p90)]
                for o in others {
                    let t = load[o]?[fx]
                    r += [ms(t?.cold), ms(t?.median), ms(t?.p90), ratio(ours?.median, t?.median)]
                }
                return r
            }
            out += table(header, rows)
        }

        let vmlinux = timings["vmlinux"] ?? [:]
        if vmlinux["ours"]?["vmlinux"] != nil {
            out += "\n## vmlinux BTF\n\n"
            out += "Milliseconds to read `/sys/kernel/btf/vmlinux`, parse it and look up one kfunc by name: libbpf "
            out += "(`btf__load_vmlinux_btf` + `btf__find_by_name_kind` + `btf__free`) pays this on every load that "
            out += "needs kernel BTF; our loader once per process (`KernelBTF.vmlinux()`: one pass over the type "
            out += "records, types decoded when a lookup reaches them). It explains most of the gap between *cold* "
            out += "and *median* above.\n\n"
            var header = ["", "ours"]
            for o in others { header += [label(o), "ours / \(label(o))"] }
            var rowsOut: [[String]] = []
            for (what, key) in [("median", \Timing.median), ("p90", \Timing.p90)] {
                let ours = vmlinux["ours"]?["vmlinux"]?[keyPath: key]
                var r = [what, ms(ours)]
                for o in others {
                    let t = vmlinux[o]?["vmlinux"]?[keyPath: key]
                    r += [ms(t), ratio(ours, t)]
                }
                rowsOut.append(r)
            }
            out += table(header, rowsOut)
        }

        if !instructions.isEmpty {
            out += "\n## 3. Instructions per parse (callgrind)\n\n"
            out += "`valgrind --tool=callgrind --collect-atstart=no --toggle-collect=…`: instructions executed inside the "
            out += "parse loop (after one untimed warm-up parse) divided by its iterations; deterministic, unlike the "
            out += "timings on this shared 2-core machine.\n\n"
            var header = ["fixture", "ours Ir"]
            for o in others { header += ["\(label(o)) Ir", "ours / \(label(o))"] }
            let rows = callgrindFixtures.map { fx -> [String] in
                let ours = instructions["ours"]?[fx]
                var r = [fx, ours.map { grouped(Int($0.rounded())) } ?? "—"]
                for o in others {
                    let t = instructions[o]?[fx]
                    r += [t.map { grouped(Int($0.rounded())) } ?? "—", ratio(ours, t)]
                }
                return r
            }
            out += table(header, rows)
        }
        if let notes = Self.text(notesPath), !notes.isEmpty {
            out += "\n" + notes
        }
        return out
    }

    /// Hand-written findings appended to the generated tables (bench/FINDINGS.md).
    var notesPath: String = ""

    static func text(_ path: String) -> String? {
        guard !path.isEmpty, let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: buf[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func grouped(_ v: Int) -> String {
        let digits = Array(String(v))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return out
    }
}

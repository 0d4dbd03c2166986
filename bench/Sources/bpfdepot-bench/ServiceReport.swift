/// `bpfdepot-bench service-report SERVICE.tsv SUMMARY.tsv`: the Markdown of bench/service.sh's
/// measurements (stdout), and the rows of RESULTS.md's summary table (SUMMARY.tsv:
/// `MEASURE OURS LIMIT RATIO GOAL MET`), which `report` reads back.
///
/// service.tsv lines (several rounds of the same measurement are summarised by their median):
///   wrk CASE IMPL REQ_PER_S P50_US P99_US CPU_US_PER_REQUEST NON_2XX_3XX USER_US SYS_US
///   probe CASE IMPL N P50_US P90_US P99_US MIN_US MAX_US
///   callgrind CASE IMPL IR_PER_REQUEST CALLBACK_IR_PER_REQUEST
///   raw-store OP N P50_US P90_US P99_US MIN_US MAX_US      (OP: sha, insert, total)
///   upload WHAT N P50_US P90_US P99_US MIN_US MAX_US
///   patch WHAT N P50_US P90_US P99_US MIN_US MAX_US
///   startup LABEL MS VMRSS_KIB RSSANON_KIB
///   rss LABEL VMRSS_KIB RSSANON_KIB
///   meta KEY VALUE
struct ServiceReport {
    var rows: [[String]]
    var summary: [[String]] = []

    init(path: String) { rows = Report.rows(path) }

    func lines(_ kind: String, _ a: String? = nil, _ b: String? = nil) -> [[String]] {
        rows.filter { $0.first == kind && (a == nil || ($0.count > 1 && $0[1] == a)) && (b == nil || ($0.count > 2 && $0[2] == b)) }
    }

    /// Median of column `col` over the matching lines, nil if none.
    func median(_ kind: String, _ a: String?, _ b: String?, col: Int) -> Double? {
        let v = lines(kind, a, b).compactMap { $0.count > col ? Double($0[col]) : nil }
        return v.isEmpty ? nil : Report.median(v)
    }

    func meta(_ key: String) -> String? { lines("meta", key).first.flatMap { $0.count > 2 ? $0[2] : nil } }

    // MARK: formatting

    func us(_ v: Double?) -> String {
        guard let v else { return "—" }
        if v >= 10_000 { return fmt(v / 1000, v >= 100_000 ? 0 : 1) + " ms" }
        if v >= 1000 { return fmt(v / 1000, 2) + " ms" }
        return fmt(v, 0) + " µs"
    }

    func count(_ v: Double?) -> String { v.map { grouped(Int($0.rounded())) } ?? "—" }

    func ratio(_ a: Double?, _ b: Double?) -> String {
        guard let a, let b, b > 0 else { return "—" }
        return fmt(a / b, a / b < 0.1 ? 3 : 2) + "×"
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

    func table(_ header: [String], _ rows: [[String]]) -> String {
        var out = "| " + header.joined(separator: " | ") + " |\n"
        out += "|" + header.enumerated().map { $0.offset == 0 ? " --- |" : " ---: |" }.joined() + "\n"
        for r in rows { out += "| " + r.joined(separator: " | ") + " |\n" }
        return out
    }

    /// "33.5 MiB (2.7 MiB; PSS 12.1 MiB)" from KiB: VmRSS and, when known, RssAnon and PSS.
    func mib(_ rss: Double, _ anon: Double?, pss: Double? = nil) -> String {
        var s = fmt(rss / 1024, 1) + " MiB"
        if let anon { s += " (" + fmt(anon / 1024, 1) + " MiB" + (pss.map { "; PSS " + fmt($0 / 1024, 1) + " MiB" } ?? "") + ")" }
        return s
    }

    /// The one-variable case's name and kind (`meta single variable`).
    var singleLabel: String { meta("single variable") ?? "svc_counter (one arena `int`)" }
    var singleShort: String { "one live variable" }

    func met(_ ok: Bool?) -> String { ok.map { $0 ? "yes" : "**no**" } ?? "—" }

    /// "34.0 µs (20.5 + 13.5)": server CPU time per request, and its user and system parts.
    func cpu(_ c: String, _ impl: String) -> String {
        guard let total = median("wrk", c, impl, col: 6) else { return "—" }
        var s = fmt(total, 1) + " µs"
        if let u = median("wrk", c, impl, col: 8), let k = median("wrk", c, impl, col: 9) { s += " (" + fmt(u, 1) + " + " + fmt(k, 1) + ")" }
        return s
    }

    /// The median over rounds of ours / bare, each round's pair measured back to back.
    func pairedRatio(_ c: String, col: Int, impl: String = "ours") -> Double? {
        let ours = lines("wrk", c, impl).compactMap { Double($0[col]) }
        let bare = lines("wrk", c, "bare").compactMap { Double($0[col]) }
        let r = zip(ours, bare).compactMap { $1 > 0 ? $0 / $1 : nil }
        return r.isEmpty ? nil : Report.median(r)
    }

    // MARK: markdown

    mutating func markdown() -> String {
        var out = ""
        let cases: [(String, String)] = [
            ("single", "`GET /v1/loads/{id}/variables/\(singleLabel.prefix { $0 != " " })` (\(singleLabel.drop { $0 != "(" }.dropFirst().dropLast()))"),
            ("single304", "the same with `If-None-Match` → 304"),
            ("batch", "`GET /v1/loads/{id}/variables` (all \(meta("batch variables") ?? "1,000") variables)"),
            ("poll304", "the same with `If-None-Match` → 304"),
        ]
        let wrkRuns = lines("wrk", "single", "ours").count
        if wrkRuns > 0 {
            let conns = "64 connections, 2 threads"
            out += "\n## HTTP: `bpfdepot serve` vs a bare libmicrohttpd server\n\n"
            out += "`wrk -t2 -c64 --latency` (\(conns)) on 127.0.0.1 against `bpfdepot serve` (release) and "
            out += "against bench/c/bare_mhd.c: the same MHD flags (`INTERNAL_POLLING_THREAD | EPOLL | "
            out += "ALLOW_SUSPEND_RESUME`, a thread pool of one thread per core, the same connection limit and "
            out += "timeout), "
            out += "answering every request with the bytes bpfdepot sent for that URL (\(meta("single body bytes") ?? "?") bytes for one "
            out += "variable, \(meta("batch body bytes") ?? "?") for all of them) and the same extra header fields "
            out += "(Content-Type, ETag, X-Request-Id; \(meta("response header fields (bpfdepot, single)") ?? "?") header lines "
            out += "for bpfdepot, \(meta("response header fields (bare, single)") ?? "?") for bare). Medians of \(wrkRuns) rounds, the two "
            out += "servers alternating; *ratio* is the median of each round's ours / bare. *CPU/req* is the server "
            out += "process's user + system time (from /proc) divided by the requests wrk completed: it does not "
            out += "depend on how much of the 2 shared cores wrk and other jobs took.\n\n"
            var t: [[String]] = []
            for (c, label) in cases where !lines("wrk", c).isEmpty {
                t.append([
                    label,
                    count(median("wrk", c, "ours", col: 3)), count(median("wrk", c, "bare", col: 3)), ratio(pairedRatio(c, col: 3), 1),
                    us(median("wrk", c, "ours", col: 4)), us(median("wrk", c, "bare", col: 4)),
                    us(median("wrk", c, "ours", col: 5)), us(median("wrk", c, "bare", col: 5)),
                    cpu(c, "ours"), cpu(c, "bare"),
                ])
            }
            if !lines("wrk", "single", "quiet").isEmpty {
                t.append([
                    "the first, from `serve --log-level notice` (no access-log line per request)",
                    count(median("wrk", "single", "quiet", col: 3)), count(median("wrk", "single", "bare", col: 3)),
                    ratio(pairedRatio("single", col: 3, impl: "quiet"), 1),
                    us(median("wrk", "single", "quiet", col: 4)), us(median("wrk", "single", "bare", col: 4)),
                    us(median("wrk", "single", "quiet", col: 5)), us(median("wrk", "single", "bare", col: 5)),
                    cpu("single", "quiet"), cpu("single", "bare"),
                ])
            }
            out += table(["request", "ours req/s", "bare req/s", "ours / bare", "ours p50", "bare p50", "ours p99", "bare p99",
                          "ours CPU/req (user + sys)", "bare CPU/req (user + sys)"], t)
            let bad = lines("wrk").compactMap { $0.count > 7 ? Int($0[7]) : nil }.reduce(0, +)
            if bad > 0 { out += "\nwrk counted \(bad) responses with a status ≥ 400: these runs are not valid.\n" }
        }
        if !lines("probe").isEmpty {
            let n = lines("probe").first.map { $0[3] } ?? "?"
            out += "\nOne client, one keep-alive connection, \(n) requests one after another (`http_probe req`, after 200 "
            out += "warm-up requests): the latency one poller sees.\n\n"
            var t: [[String]] = []
            for (c, label) in cases where !lines("probe", c).isEmpty {
                t.append([label,
                          us(median("probe", c, "ours", col: 4)), us(median("probe", c, "ours", col: 5)), us(median("probe", c, "ours", col: 6)),
                          us(median("probe", c, "bare", col: 4)), us(median("probe", c, "bare", col: 5)), us(median("probe", c, "bare", col: 6)),
                          ratio(median("probe", c, "ours", col: 4), median("probe", c, "bare", col: 4))])
            }
            if !lines("probe", "single", "quiet").isEmpty {
                t.append(["the first, from `serve --log-level notice`",
                          us(median("probe", "single", "quiet", col: 4)), us(median("probe", "single", "quiet", col: 5)),
                          us(median("probe", "single", "quiet", col: 6)),
                          us(median("probe", "single", "bare", col: 4)), us(median("probe", "single", "bare", col: 5)),
                          us(median("probe", "single", "bare", col: 6)),
                          ratio(median("probe", "single", "quiet", col: 4), median("probe", "single", "bare", col: 4))])
            }
            out += table(["request", "ours p50", "ours p90", "ours p99", "bare p50", "bare p90", "bare p99", "ours / bare (p50)"], t)
        }
        if !lines("callgrind").isEmpty {
            out += "\nInstructions per request in the server process (`valgrind --tool=callgrind`, counters zeroed after "
            out += "100 warm-up requests, then the requests above on one connection): all threads, user space only. "
            out += "*callbacks* is the part inside bpfdepot's MHD callbacks (routing, handler, response). "
            out += "About 49,000 of the bare server's instructions per request are MHD clearing its 32 KiB "
            out += "per-connection memory pool with `rep stosb`, which callgrind counts once per byte.\n\n"
            var t: [[String]] = []
            for (c, label) in cases where !lines("callgrind", c).isEmpty {
                let o = median("callgrind", c, "serve", col: 3), h = median("callgrind", c, "serve", col: 4)
                let b = median("callgrind", c, "bare", col: 3)
                t.append([label, count(o), count(h), count(b), ratio(o, b), count(o.flatMap { o in b.map { o - $0 } })])
            }
            if !lines("callgrind", "single", "quiet").isEmpty {
                let o = median("callgrind", "single", "quiet", col: 3), h = median("callgrind", "single", "quiet", col: 4)
                let b = median("callgrind", "single", "bare", col: 3)
                t.append(["the first, from `serve --log-level notice`", count(o), count(h), count(b), ratio(o, b),
                          count(o.flatMap { o in b.map { o - $0 } })])
            }
            out += table(["request", "ours Ir/request", "of which callbacks", "bare Ir/request", "ours / bare", "ours − bare"], t)
        }

        // Store
        let rawTotal = median("raw-store", "total", nil, col: 3)
        let upload = median("upload", "big", nil, col: 3)
        if rawTotal != nil || upload != nil {
            out += "\n## Store\n\n"
            let size = meta("big object bytes").flatMap(Double.init)
            out += "Upload of a \(size.map { fmt($0 / 1_048_576, 1) } ?? "16") MiB object (bench/fixtures/big.bpf.c: a 16 MiB "
            out += "`.rodata` table) through `POST /v1/objects` (one keep-alive connection; every upload a new object, "
            out += "its `bench_seed` changed), against the raw floor: SHA-256 of the same bytes with swift-crypto (what "
            out += "DepotStore's `Digest` uses) plus one `INSERT` of them as one blob in a `BEGIN IMMEDIATE` "
            out += "transaction, with the pragmas GRDB's `DatabasePool` gives DepotStore (`journal_mode=WAL`, "
            out += "`synchronous=NORMAL`, `foreign_keys=ON`), blob bound without a copy (`bpfdepot-bench store-raw`, "
            out += "StoreRaw.swift). Medians over \(lines("upload", "big").count) rounds of "
            out += "\(lines("upload", "big").first.map { $0[2] } ?? "?") uploads each.\n\n"
            var t: [[String]] = []
            t.append(["raw: SHA-256 (swift-crypto)", us(median("raw-store", "sha", nil, col: 3)), us(median("raw-store", "sha", nil, col: 5)), ""])
            t.append(["raw: one blob INSERT + COMMIT", us(median("raw-store", "insert", nil, col: 3)), us(median("raw-store", "insert", nil, col: 5)), ""])
            t.append(["raw: both (the floor the goal compares with)", us(rawTotal), us(median("raw-store", "total", nil, col: 5)), "1×"])
            let same = median("raw-store", "same-bytes", nil, col: 3)
            if same != nil {
                t.append(["raw: SHA-256 + the ELF blob + its data-section images, one transaction (the bytes bpfdepot stores)",
                          us(same), us(median("raw-store", "same-bytes", nil, col: 5)), ratio(same, rawTotal)])
            }
            t.append(["`POST /v1/objects` (HTTP, parse, hash, store ELF + revision 1 images)", us(upload),
                      us(median("upload", "big", nil, col: 5)), ratio(upload, rawTotal)])
            out += table(["16 MiB object", "median", "p99", "vs raw"], t)
            if let same = median("raw-store", "same-bytes", nil, col: 3), let upload {
                out += "\nAgainst the same bytes stored raw, the upload is \(ratio(upload, same)): bpfdepot stores each "
                out += "object twice over (the ELF, and revision 1's images of its data sections), which by itself "
                out += "costs \(ratio(same, rawTotal)) the one-blob floor.\n"
            }
        }
        if !lines("patch").isEmpty {
            out += "\n`PATCH /v1/objects/{id}/variables` of one `__u32` (a new revision each time), one connection, "
            out += "after warm-up:\n\n"
            var t: [[String]] = []
            for (w, label) in [("big", "16 MiB object (big.bpf.c)"), ("small", "small object (seeded.bpf.c)")] where !lines("patch", w).isEmpty {
                t.append([label, lines("patch", w).first?[2] ?? "?", us(median("patch", w, nil, col: 3)), us(median("patch", w, nil, col: 4)),
                          us(median("patch", w, nil, col: 5)), us(median("patch", w, nil, col: 7))])
            }
            out += table(["object", "patches", "p50", "p90", "p99", "max"], t)
        }
        let startups = lines("startup").filter { $0[1].hasSuffix(" objects") }
        if !startups.isEmpty || !lines("startup").isEmpty {
            out += "\n## Start-up and memory\n\n"
            out += "Start-up: from `fork`+`exec` of `bpfdepot serve` to the first 200 on `/healthz` (`http_probe startup`, "
            out += "polling every 0.2 ms); RSS: `VmRSS` of /proc/PID/status 0.2 s later, and in brackets its "
            out += "`RssAnon` (heap, stacks; the rest are pages of the executable and the shared libraries, "
            out += "Swift's runtime and Foundation among them).\n\n"
            var t: [[String]] = []
            for label in Self.ordered(lines("startup").map { $0[1] }) {
                let l = lines("startup", label)
                let ms = l.compactMap { Double($0[2]) }.sorted()
                let rss = l.compactMap { Double($0[3]) }
                let anon = l.compactMap { $0.count > 4 ? Double($0[4]) : nil }
                let pss = l.compactMap { $0.count > 5 ? Double($0[5]) : nil }
                t.append([label, "\(l.count)", fmt(Report.median(ms), 1) + " ms", fmt(ms.first ?? 0, 1) + " ms", fmt(ms.last ?? 0, 1) + " ms",
                          mib(Report.median(rss), anon.isEmpty ? nil : Report.median(anon), pss: pss.isEmpty ? nil : Report.median(pss))])
            }
            out += table(["database", "runs", "median", "min", "max", "RSS after start"], t)
            if let small = lines("upload", "small").first {
                out += "\nStoring those objects (`POST /v1/objects` of a \(small.count > 2 ? small[2] : "?")-object series of small ones): "
                out += "median \(us(Double(small[3]))), p99 \(us(Double(small[5]))).\n"
            }
        }
        if !lines("rss").isEmpty {
            out += "\n"
            out += table(["`bpfdepot serve`", "VmRSS (RssAnon; PSS)"],
                         lines("rss").map { [$0[1], mib(Double($0[2]) ?? 0, $0.count > 3 ? Double($0[3]) : nil, pss: $0.count > 4 ? Double($0[4]) : nil)] })
        }
        buildSummary()
        return out
    }

    static func ordered(_ v: [String]) -> [String] {
        var seen: [String] = []
        for x in v where !seen.contains(x) { seen.append(x) }
        return seen
    }

    /// The summary rows: MEASURE OURS LIMIT RATIO GOAL MET.
    mutating func buildSummary() {
        func add(_ m: String, _ ours: String, _ limit: String, _ r: String, _ goal: String, _ ok: Bool?) {
            summary.append([m, ours, limit, r, goal, met(ok)])
        }
        if !lines("wrk", "single").isEmpty {
            let r = pairedRatio("single", col: 3)
            add("HTTP: one live variable, req/s (wrk, 64 conn.)", count(median("wrk", "single", "ours", col: 3)) + "/s",
                count(median("wrk", "single", "bare", col: 3)) + "/s (bare MHD)", r.map { fmt($0, 2) + "×" } ?? "—", "≥ 0.9×", r.map { $0 >= 0.9 })
            let p99 = median("wrk", "single", "ours", col: 5)
            add("HTTP: one live variable, p99 (wrk, 64 conn.)", us(p99), us(median("wrk", "single", "bare", col: 5)) + " (bare MHD)",
                ratio(p99, median("wrk", "single", "bare", col: 5)), "< 1 ms", p99.map { $0 < 1000 })
        }
        if !lines("wrk", "single").isEmpty {
            let o = median("wrk", "single", "ours", col: 6), b = median("wrk", "single", "bare", col: 6)
            add("HTTP: one live variable, server CPU per request (user + sys, wrk)", cpu("single", "ours"),
                cpu("single", "bare") + " (bare MHD)", ratio(o, b), "≤ 1.2×", o.flatMap { o in b.map { o / $0 <= 1.2 } })
        }
        if !lines("wrk", "single304").isEmpty {
            let r = pairedRatio("single304", col: 3)
            let o = median("wrk", "single304", "ours", col: 6), b = median("wrk", "single304", "bare", col: 6)
            add("HTTP: one live variable, 304 (If-None-Match), req/s and CPU/request (wrk, 64 conn.)",
                count(median("wrk", "single304", "ours", col: 3)) + "/s, " + cpu("single304", "ours"),
                count(median("wrk", "single304", "bare", col: 3)) + "/s, " + cpu("single304", "bare") + " (bare MHD 304)",
                (r.map { fmt($0, 2) + "×" } ?? "—") + ", CPU " + ratio(o, b), "≥ 0.9×, ≤ 1.2×",
                r.flatMap { r in o.flatMap { o in b.map { r >= 0.9 && o / $0 <= 1.2 } } })
        }
        if !lines("wrk", "single", "quiet").isEmpty {
            let r = pairedRatio("single", col: 3, impl: "quiet")
            add("HTTP: the same from `serve --log-level notice` (no access log), req/s and CPU/request",
                count(median("wrk", "single", "quiet", col: 3)) + "/s, " + cpu("single", "quiet"),
                count(median("wrk", "single", "bare", col: 3)) + "/s, " + cpu("single", "bare") + " (bare MHD)",
                r.map { fmt($0, 2) + "×" } ?? "—", "(≥ 0.9×)", r.map { $0 >= 0.9 })
        }
        if !lines("probe", "single").isEmpty {
            let p99 = median("probe", "single", "ours", col: 6)
            add("HTTP: one live variable, p99 (one connection)", us(p99), us(median("probe", "single", "bare", col: 6)) + " (bare MHD)",
                ratio(p99, median("probe", "single", "bare", col: 6)), "< 1 ms", p99.map { $0 < 1000 })
        }
        if !lines("callgrind", "single").isEmpty {
            let o = median("callgrind", "single", "serve", col: 3), b = median("callgrind", "single", "bare", col: 3)
            add("HTTP: one live variable, instructions/request (callgrind)", count(o), count(b) + " (bare MHD)", ratio(o, b), "—", nil)
        }
        if !lines("probe", "batch").isEmpty {
            let p50 = median("probe", "batch", "ours", col: 4), p99 = median("probe", "batch", "ours", col: 6)
            add("HTTP: all \(meta("batch variables") ?? "1,000") variables, per request p50 / p99 (one connection)",
                us(p50) + " / " + us(p99), us(median("probe", "batch", "bare", col: 4)) + " / " + us(median("probe", "batch", "bare", col: 6)) + " (bare MHD)",
                ratio(p50, median("probe", "batch", "bare", col: 4)), "< 2 ms", p50.map { $0 < 2000 })
        }
        if !lines("wrk", "batch").isEmpty {
            add("HTTP: all variables, req/s (wrk, 64 conn.)", count(median("wrk", "batch", "ours", col: 3)) + "/s",
                count(median("wrk", "batch", "bare", col: 3)) + "/s (bare MHD)", ratio(pairedRatio("batch", col: 3), 1), "—", nil)
        }
        if !lines("wrk", "poll304").isEmpty {
            add("HTTP: 304 poll of all variables, req/s and p99 (wrk, 64 conn.)",
                count(median("wrk", "poll304", "ours", col: 3)) + "/s, " + us(median("wrk", "poll304", "ours", col: 5)),
                count(median("wrk", "poll304", "bare", col: 3)) + "/s, " + us(median("wrk", "poll304", "bare", col: 5)) + " (bare MHD 304)",
                ratio(pairedRatio("poll304", col: 3), 1), "—", nil)
        }
        if let up = median("upload", "big", nil, col: 3), let raw = median("raw-store", "total", nil, col: 3) {
            add("Store: upload of a 16 MiB object", us(up), us(raw) + " (SHA-256 + 1 SQLite insert)", ratio(up, raw), "≤ 1.5×", up / raw <= 1.5)
            if let same = median("raw-store", "same-bytes", nil, col: 3) {
                add("Store: upload of a 16 MiB object vs the same bytes stored raw (ELF + images)", us(up), us(same) + " (SHA-256 + 2 blobs)",
                    ratio(up, same), "—", nil)
            }
        }
        for (w, label) in [("big", "16 MiB"), ("small", "small")] where !lines("patch", w).isEmpty {
            add("Store: patch one variable (new revision), \(label) object, p50 / p99",
                us(median("patch", w, nil, col: 3)) + " / " + us(median("patch", w, nil, col: 5)), "—", "—", "—", nil)
        }
        let startups = lines("startup").filter { $0[1].hasSuffix(" objects") }
        if !startups.isEmpty {
            let ms = Report.median(startups.compactMap { Double($0[2]) })
            add("Start-up with \(meta("stored objects at start-up") ?? "1000") stored objects (exec → first 200), median",
                fmt(ms, 1) + " ms", "—", "—", "< 200 ms", ms < 200)
            let rss = Report.median(startups.compactMap { Double($0[3]) })
            let anon = startups.compactMap { $0.count > 4 ? Double($0[4]) : nil }
            let pss = startups.compactMap { $0.count > 5 ? Double($0[5]) : nil }
            add("Idle RSS of `serve` after start: VmRSS (RssAnon; PSS)",
                mib(rss, anon.isEmpty ? nil : Report.median(anon), pss: pss.isEmpty ? nil : Report.median(pss)), "—", "—",
                "≤ 25 MiB", rss / 1024 <= 25)
            if !anon.isEmpty {
                let a = Report.median(anon)
                add("Idle anonymous memory of `serve` after start (RssAnon)", fmt(a / 1024, 1) + " MiB", "—", "—", "≤ 4 MiB", a / 1024 <= 4)
            }
        }
        let after = lines("rss").filter { $0[1].hasPrefix("after the") }
        if let worst = after.max(by: { (Double($0[2]) ?? 0) < (Double($1[2]) ?? 0) }), let kib = Double(worst[2]) {
            add("Idle RSS of `serve` \(worst[1]): VmRSS (RssAnon; PSS)",
                mib(kib, worst.count > 3 ? Double(worst[3]) : nil, pss: worst.count > 4 ? Double(worst[4]) : nil), "—", "—",
                "≤ 25 MiB", kib / 1024 <= 25)
        }
    }
}

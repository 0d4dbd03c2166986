import BPFTestSupport
@testable import DepotCore
import DepotHTTP
import DepotStore
import Foundation
import Glibc
import KernelTestSupport
import Testing

/// Limits an operator relies on: slow clients are cut off, a connection flood gets 503s and the
/// server keeps answering, a fast client gets 429 past its rate, loads beyond the concurrency
/// or arena budget get 503/413 — each as problem+json.
@Suite("operations: limits") struct LimitsTests {
    static func healthz(_ port: UInt16) -> Int { (try? RawHTTP(port: port).request("GET", "/healthz").status) ?? -1 }

    static func router() -> Router {
        var r = Router()
        r.get("/healthz", .immediate { _ in .json(.object([("status", .string("ok"))])) })
        return r
    }

    /// Sends a request head one byte every 200 ms; returns the seconds until the server closed
    /// the connection, or nil if it never did within `limit` seconds.
    static func trickle(port: UInt16, limit: Double) throws -> Double? {
        let fd = try RawHTTP(port: port).connect(timeout: 0.2)
        defer { close(fd) }
        let start = Date()
        let head = Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 1000)
        var i = 0
        var buf = [UInt8](repeating: 0, count: 512)
        while Date().timeIntervalSince(start) < limit {
            if i < head.count, !RawHTTP.send(fd, [head[i]]) { return Date().timeIntervalSince(start) }
            i += 1
            // recv returns 0 (EOF) or an error once the server shut the socket down.
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return Date().timeIntervalSince(start) }
        }
        return nil
    }

    @Test func aSlowlorisClientIsCutOffWhileOthersAreServed() throws {
        let server = try LoopbackServer(router: Self.router()) { $0.headerTimeoutSeconds = 1 }
        defer { server.stop() }
        let port = try #require(server.server.port)
        let cut = try Self.trickle(port: port, limit: 6)
        let seconds = try #require(cut, "expected the server to close a connection that trickles its head, found it open after 6 s")
        #expect(seconds >= 0.9 && seconds < 3, "cut after \(seconds) s with a 1 s head deadline")
        // A client that connects and sends nothing is cut off the same way.
        let silent = try RawHTTP(port: port).connect(timeout: 5)
        defer { close(silent) }
        let start = Date()
        #expect(RawHTTP.readAll(silent).isEmpty)
        #expect(Date().timeIntervalSince(start) < 3)
        // A keep-alive connection that was answered owes its next head within the deadline too.
        let idle = try RawHTTP(port: port).connect(timeout: 5)
        defer { close(idle) }
        let request = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(request.withUnsafeBytes { write(idle, $0.baseAddress, $0.count) } == request.count)
        let answered = Date()
        let text = String(decoding: RawHTTP.readAll(idle), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200"), "\(text)")
        let idleFor = Date().timeIntervalSince(answered)
        #expect(idleFor >= 0.9 && idleFor < 3, "an idle keep-alive connection was closed after \(idleFor) s with a 1 s head deadline")
        #expect(Self.healthz(port) == 200)
    }

    @Test func aConnectionFloodGets503sAndTheServerStillAnswers() throws {
        let server = try LoopbackServer(router: Self.router()) { $0.connectionLimit = 8 }
        defer { server.stop() }
        let port = try #require(server.server.port)
        let flood = try (0..<20).map { _ in try RawHTTP(port: port).connect() }
        usleep(200_000)  // MHD's threads accept them
        let refused = try RawHTTP(port: port).request("GET", "/healthz")
        #expect(refused.status == 503)
        #expect(refused.headers["content-type"] == "application/problem+json")
        #expect(refused.json["type"] as? String == "urn:bpfdepot:problem:too-many-connections")
        #expect(refused.headers["retry-after"] == "1")
        // Far beyond the limit MHD itself refuses; nothing crashes.
        let more = (0..<40).compactMap { _ in try? RawHTTP(port: port).connect(timeout: 1) }
        flood.forEach { close($0) }
        more.forEach { close($0) }
        var status = -1
        for _ in 0..<100 where status != 200 {
            status = Self.healthz(port)
            if status != 200 { usleep(20_000) }
        }
        #expect(status == 200)
    }

    @Test func aClientOverItsRateGets429() throws {
        let server = try LoopbackServer(router: Self.router()) { $0.requestsPerSecondPerClient = 5 }
        defer { server.stop() }
        let port = try #require(server.server.port)
        let statuses = try (0..<30).map { _ in try RawHTTP(port: port).request("GET", "/healthz") }
        #expect(statuses.prefix(10).allSatisfy { $0.status == 200 })  // the burst
        let limited = statuses.filter { $0.status == 429 }
        #expect(limited.count >= 15)
        #expect(limited.first?.json["type"] as? String == "urn:bpfdepot:problem:rate-limited")
        #expect(limited.first?.headers["retry-after"] == "1")
        usleep(1_100_000)
        #expect(Self.healthz(port) == 200)  // tokens come back
    }
}

@Suite("operations: load limits", .serialized, .enabled(if: LoadSupport.bpfPermitted, LoadSupport.skipMessage))
struct LoadLimitsTests {
    static func service(limits: DepotLimits) throws -> (Depot, HTTPDispatcher, () -> Void) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-limits-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store = try DepotStore(path: dir + "/depot.sqlite")
        let depot = Depot(store: store, limits: limits)
        let dispatcher = HTTPDispatcher(router: DepotRoutes.router(depot: depot, openAPI: "x"))
        let close = {
            if let loads = try? depot.loads(limit: 1000, after: nil) {
                for l in loads where l.record.state == .loaded { try? depot.unload(id: l.record.id) }
            }
            try? store.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
        return (depot, dispatcher, close)
    }

    static func upload(_ d: HTTPDispatcher, _ fixture: String) throws -> String {
        let r = d.respond(to: try request(.POST, "/v1/objects?name=\(fixture).o",
                                          headers: ["Content-Type": "application/octet-stream"], body: try Fixtures.bytes(fixture)))
        return try #require(CurlResponse(r).json["id"] as? String)
    }

    static func post(_ d: HTTPDispatcher, _ target: String) throws -> CurlResponse {
        CurlResponse(d.respond(to: try request(.POST, target)))
    }

    @Test func loadsBeyondTheConcurrencyLimitGet503() throws {
        let (depot, d, close) = try Self.service(limits: DepotLimits(maxConcurrentLoads: 1))
        defer { close() }
        let oid = try Self.upload(d, "globals_run")
        // One load is being verified (held here), so the next one is refused at once.
        depot.budget.withLock { $0.loadsInProgress = 1 }
        let busy = try Self.post(d, "/v1/objects/\(oid)/loads")
        #expect(busy.status == 503)
        #expect(busy.json["type"] as? String == "urn:bpfdepot:problem:busy")
        #expect(busy.headers["Retry-After"] == "1")
        depot.budget.withLock { $0.loadsInProgress = 0 }
        #expect(try Self.post(d, "/v1/objects/\(oid)/loads").status == 201)
        #expect(depot.budget.withLock { $0.loadsInProgress } == 0)
    }

    @Test(.needsArenaMaps, .arenaTally) func arenasBeyondTheBudgetGet503AndAnArenaLargerThanItGets413() throws {
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        // arena_anyaddr asks for 8 pages (the kernel places it, so two can be live at once).
        let (_, d, close) = try Self.service(limits: DepotLimits(maxArenaBytes: 12 * page))
        defer { close() }
        let oid = try Self.upload(d, "arena_anyaddr")
        let first = try Self.post(d, "/v1/objects/\(oid)/loads")
        #expect(first.status == 201, "\(first.text)")
        let second = try Self.post(d, "/v1/objects/\(oid)/loads")
        #expect(second.status == 503)
        #expect(second.json["type"] as? String == "urn:bpfdepot:problem:arena-budget-exhausted")
        #expect(second.json["inUse"] as? Int == Int(8 * page))
        let id = try #require((first.json["id"] as? NSNumber)?.int64Value)
        #expect(CurlResponse(d.respond(to: try request(.DELETE, "/v1/loads/\(id)"))).status == 204)
        #expect(try Self.post(d, "/v1/objects/\(oid)/loads").status == 201)  // the budget came back

        let (_, small, closeSmall) = try Self.service(limits: DepotLimits(maxArenaBytes: 4 * page))
        defer { closeSmall() }
        let oid2 = try Self.upload(small, "arena_anyaddr")
        let tooLarge = try Self.post(small, "/v1/objects/\(oid2)/loads")
        #expect(tooLarge.status == 413)
        #expect(tooLarge.json["type"] as? String == "urn:bpfdepot:problem:arena-too-large")
    }
}

/// The real binary: HTTPS with --tls-cert/--tls-key (checked with curl), and 1,000 load/unload
/// cycles through the API leave the server's fds and RSS where they were.
@Suite("operations: the serve process", .serialized, .enabled(if: LoadSupport.bpfPermitted, LoadSupport.skipMessage))
struct ServeProcessTests {
    static func procStatus(_ pid: pid_t, _ key: String) -> Int {
        guard let text = ProcFile.text("/proc/\(pid)/status") else { return -1 }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
        }
        return -1
    }

    /// What each open fd of `pid` refers to (socket:[…], anon_inode:bpf-map, a path…), sorted.
    static func fdTargets(_ pid: pid_t) -> [String] {
        let dir = "/proc/\(pid)/fd"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).map { fd in
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\(fd)")) ?? "?"
            // Sockets and pipes differ by inode from one connection to the next; the kind is what counts.
            if let bracket = target.firstIndex(of: "[") { return String(target[..<bracket]) }
            return target
        }.sorted()
    }

    static func bpfMappings(_ pid: pid_t) -> Int {
        (ProcFile.text("/proc/\(pid)/maps") ?? "").split(separator: "\n").filter { $0.contains("anon_inode:bpf") }.count
    }

    @Test func servesHTTPSWithTheGivenCertificate() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try runProcess("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem",
            "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        try #require(made.code == 0, "openssl: \(made.err)")
        let serve = try ServeProcess(directory: dir, pinRoot: "")
        try serve.start(extra: ["--tls-cert", dir + "/cert.pem", "--tls-key", dir + "/key.pem"], readiness: .tls(caFile: dir + "/cert.pem"))
        defer { serve.terminate() }
        let url = "https://127.0.0.1:\(serve.port)/healthz"
        let ok = try Curl.get(url, ["--cacert", dir + "/cert.pem"])
        #expect(ok.status == 200)
        #expect(ok.text.contains("\"ok\""))
        // The certificate is the one given: curl without it refuses to trust the server.
        let untrusted = try Curl.run(["-s", "-o", "/dev/null", url])
        #expect(untrusted.code == 60)  // CURLE_PEER_FAILED_VERIFICATION
        // Plain HTTP on the TLS port gets no HTTP answer.
        let plain = try Curl.run(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", "http://127.0.0.1:\(serve.port)/healthz"])
        #expect(plain.out != "200")
        #expect(serve.log.contains("tls=on"))
    }

    @Test func aThousandLoadUnloadCyclesLeaveFdsAndMemoryFlat() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-leak-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let pinRoot = "/sys/fs/bpf/bpfdepot-leak-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: pinRoot) }
        let serve = try ServeProcess(directory: dir, pinRoot: pinRoot)
        try serve.start()
        defer { serve.terminate() }
        let c = serve.client
        // An arena object too where the kernel has arenas.
        let fixtures = KernelRequirements.arenaMaps.available ? ["globals_run", "arena_anyaddr"] : ["globals_run", "globals"]
        let objects = try fixtures.map { fixture in
            let r = try c.request("POST", "/v1/objects?name=\(fixture).o", body: try Fixtures.bytes(fixture), contentType: "application/octet-stream")
            return try #require(r.json["id"] as? String)
        }
        func cycle(_ i: Int) throws {
            let r = try c.request("POST", "/v1/objects/\(objects[i % objects.count])/loads")
            let id = try #require((r.json["id"] as? NSNumber)?.int64Value, "\(r.text)")
            #expect(try c.request("GET", "/v1/loads/\(id)/variables").status == 200)
            #expect(try c.request("DELETE", "/v1/loads/\(id)").status == 204)
        }
        for i in 0..<100 { try cycle(i) }  // warm-up: caches, allocator arenas, SQLite pages
        // The server closes a finished connection's socket a moment after the client: let it settle.
        func settledFDs() -> [String] {
            var last = Self.fdTargets(serve.pid)
            for _ in 0..<50 {
                usleep(20_000)
                let now = Self.fdTargets(serve.pid)
                if now == last { return now }
                last = now
            }
            return last
        }
        let fds0 = settledFDs(), maps0 = Self.bpfMappings(serve.pid), rss0 = Self.procStatus(serve.pid, "VmRSS")
        for i in 0..<1000 { try cycle(i) }
        let fds1 = settledFDs(), maps1 = Self.bpfMappings(serve.pid), rss1 = Self.procStatus(serve.pid, "VmRSS")
        print("leak check: fds \(fds0.count) → \(fds1.count), bpf mappings \(maps0) → \(maps1), VmRSS \(rss0) → \(rss1) KiB over 1000 cycles")
        #expect(fds1 == fds0)
        #expect(maps1 == maps0)
        #expect(rss1 - rss0 < 4096, "RSS grew by \(rss1 - rss0) KiB over 1000 load/unload cycles")
        #expect(serve.pinnedLoadIDs.isEmpty)
    }
}

import BPFKernel
import BPFTestSupport
import Foundation
import Glibc
import KernelTestSupport
import Testing

/// Links through a real `serve` process: programs of a load attached to real hooks, counting
/// what this test process does (getpid(2): glibc no longer caches it, so every call enters the
/// kernel), read back live over HTTP; detached, and kept across kill -9.
@Suite("links through the service", .serialized, .needsBPF)
struct LinkServiceTests {
    static func getpids(_ n: Int) {
        for _ in 0..<n { _ = getpid() }
    }

    static func liveCount(_ c: RawHTTP, load: Int64, _ name: String) throws -> Int {
        try #require((try RestartTests.liveValue(c, load: load, name) as? NSNumber)?.intValue)
    }

    /// Loads the fixture (with `body`), watching this process's getpid calls.
    static func load(_ c: RawHTTP, body: String = "{}") throws -> (load: Int64, response: RawHTTP.Response) {
        let oid = try RestartTests.upload(c, "service_links")
        let r = try c.json("POST", "/v1/objects/\(oid)/loads", body)
        let load = try #require((r.json["id"] as? NSNumber)?.int64Value, "\(r.text)")
        let watch = try c.json("PATCH", "/v1/loads/\(load)/variables", #"{"watch_tgid": \#(getpid())}"#)
        #expect(watch.status == 200, "\(watch.text)")
        return (load, r)
    }

    static func programID(_ c: RawHTTP, load: Int64, _ name: String) throws -> Int? {
        let programs = try c.request("GET", "/v1/loads/\(load)").json["programs"] as? [[String: Any]] ?? []
        return (programs.first { $0["name"] as? String == name }?["id"] as? NSNumber)?.intValue
    }

    @Test func aRawTracepointLinkCountsGetpidUntilItIsDetached() throws {
        let (dir, pinRoot) = try RestartTests.workspace()
        defer { try? FileManager.default.removeItem(atPath: dir); _ = PinRootCleanup.remove(pinRoot) }
        let serve = try ServeProcess(directory: dir, pinRoot: pinRoot)
        try serve.start()
        defer { serve.terminate() }
        let c = serve.client
        let (load, _) = try Self.load(c)

        let created = try c.json("POST", "/v1/loads/\(load)/links", #"{"program": "count_getpid"}"#)
        #expect(created.status == 201, "\(created.text)")
        let link = try #require((created.json["id"] as? NSNumber)?.int64Value)
        #expect(created.headers["location"] == "/v1/links/\(link)")
        #expect(created.json["type"] as? String == "raw_tracepoint")
        #expect(created.json["state"] as? String == "attached")
        #expect(created.json["program"] as? String == "count_getpid")
        #expect((created.json["load"] as? NSNumber)?.int64Value == load)
        let kernelID = try #require((created.json["kernelId"] as? NSNumber)?.intValue)
        #expect(FileManager.default.fileExists(atPath: "\(pinRoot)/\(load)/links/\(link)"))

        let before = try Self.liveCount(c, load: load, "getpid_hits")
        Self.getpids(100)
        let after = try Self.liveCount(c, load: load, "getpid_hits")
        #expect(after - before >= 100, "getpid_hits \(before) → \(after) over 100 getpid calls")

        // What the kernel says of the link: the same id, our program.
        let info = try c.request("GET", "/v1/links/\(link)")
        #expect(info.status == 200)
        let kernel = info.json["kernel"] as? [String: Any] ?? [:]
        #expect((kernel["id"] as? NSNumber)?.intValue == kernelID, "\(info.text)")
        #expect(kernel["typeName"] as? String == "raw_tracepoint", "\(info.text)")
        #expect((kernel["programId"] as? NSNumber)?.intValue == (try Self.programID(c, load: load, "count_getpid")))
        let list = try c.request("GET", "/v1/loads/\(load)/links").json["links"] as? [[String: Any]] ?? []
        #expect(list.compactMap { ($0["id"] as? NSNumber)?.int64Value } == [link])

        #expect(try c.request("DELETE", "/v1/links/\(link)").status == 204)
        #expect(!FileManager.default.fileExists(atPath: "\(pinRoot)/\(load)/links/\(link)"))
        let stopped = try Self.liveCount(c, load: load, "getpid_hits")
        Self.getpids(50)
        #expect(try Self.liveCount(c, load: load, "getpid_hits") == stopped)
        let detached = try c.request("GET", "/v1/links/\(link)")
        #expect(detached.json["state"] as? String == "detached")
        #expect(detached.json["kernel"] == nil)
        let again = try c.request("DELETE", "/v1/links/\(link)")
        #expect(again.status == 409, "\(again.text)")
        #expect((again.json["type"] as? String)?.hasSuffix("not-attached") == true, "\(again.text)")
        #expect(try c.request("DELETE", "/v1/loads/\(load)").status == 204)
    }

    @Test func refusedAttachesAreProblemsThatSayWhy() throws {
        let (dir, pinRoot) = try RestartTests.workspace()
        defer { try? FileManager.default.removeItem(atPath: dir); _ = PinRootCleanup.remove(pinRoot) }
        let serve = try ServeProcess(directory: dir, pinRoot: pinRoot)
        try serve.start()
        defer { serve.terminate() }
        let c = serve.client
        let (load, _) = try Self.load(c)
        func problem(_ body: String, _ status: Int, _ type: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
            let r = try c.json("POST", "/v1/loads/\(load)/links", body)
            #expect(r.status == status, "\(body) → \(r.text)", sourceLocation: sourceLocation)
            #expect(r.headers["content-type"] == "application/problem+json", sourceLocation: sourceLocation)
            #expect((r.json["type"] as? String)?.hasSuffix(type) == true, "\(r.text)", sourceLocation: sourceLocation)
            return r.json
        }
        #expect(try problem(#"{"program": "xdp_pass"}"#, 422, "missing-target")["field"] as? String == "interface")
        let unsupported = try problem(#"{"program": "run_only"}"#, 422, "unsupported-hook")
        #expect(unsupported["section"] as? String == "syscall")
        #expect((unsupported["supported"] as? [String])?.contains("xdp") == true, "\(unsupported)")
        _ = try problem(#"{"program": "xdp_pass", "interface": "nosuchif0"}"#, 422, "unknown-target")
        _ = try problem(#"{"program": "no_such_program"}"#, 404, "not-found")
        _ = try problem(#"{"program": "count_getpid", "bogus": 1}"#, 422, "invalid-body")
        _ = try problem(#"{"program": "xdp_pass", "mode": "turbo"}"#, 422, "invalid-body")
        _ = try problem(#"{"interface": "lo"}"#, 422, "invalid-body")
        let none = try c.json("POST", "/v1/loads/99999/links", #"{"program": "count_getpid"}"#)
        #expect(none.status == 404, "\(none.text)")
        // Nothing was attached by any of them.
        let rows = try c.request("GET", "/v1/loads/\(load)/links").json["links"] as? [[String: Any]] ?? []
        #expect(rows.allSatisfy { $0["state"] as? String == "failed" }, "\(rows)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: "\(pinRoot)/\(load)/links")) ?? []).isEmpty)
        #expect(try c.request("DELETE", "/v1/loads/\(load)").status == 204)
    }

    /// `links` when loading is all or nothing: the second attach fails, so the first is detached
    /// again, the object unloaded and the load left failed.
    @Test func linksAtLoadTimeAreAllOrNothing() throws {
        let (dir, pinRoot) = try RestartTests.workspace()
        defer { try? FileManager.default.removeItem(atPath: dir); _ = PinRootCleanup.remove(pinRoot) }
        let serve = try ServeProcess(directory: dir, pinRoot: pinRoot)
        try serve.start()
        defer { serve.terminate() }
        let c = serve.client
        let oid = try RestartTests.upload(c, "service_links")
        let r = try c.json("POST", "/v1/objects/\(oid)/loads",
                           #"{"links": [{"program": "count_getpid"}, {"program": "xdp_pass", "interface": "nosuchif0"}]}"#)
        #expect(r.status == 422, "\(r.text)")
        #expect((r.json["type"] as? String)?.hasSuffix("unknown-target") == true)
        let loads = try c.request("GET", "/v1/loads").json["loads"] as? [[String: Any]] ?? []
        #expect(loads.compactMap { $0["state"] as? String } == ["failed"], "\(loads)")
        let failed = try #require((loads.first?["id"] as? NSNumber)?.int64Value)
        let rows = try c.request("GET", "/v1/loads/\(failed)/links").json["links"] as? [[String: Any]] ?? []
        #expect(rows.compactMap { $0["state"] as? String } == ["detached", "failed"], "\(rows)")
        // The first link is gone from the kernel, and nothing of the load is pinned.
        if let kernelID = (rows.first?["kernelId"] as? NSNumber)?.uint32Value {
            #expect((try? BPFSys.linkGetFDByID(kernelID)) == nil, "link \(kernelID) is still in the kernel")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(pinRoot)/\(failed)"))

        // With only the one that can attach, and `attach: true` for the rest that can: the
        // tracepoint joins it, the XDP program (it needs an interface) is skipped.
        let ok = try c.json("POST", "/v1/objects/\(oid)/loads", #"{"links": [{"program": "count_getpid"}], "attach": true}"#)
        #expect(ok.status == 201, "\(ok.text)")
        let made = (ok.json["links"] as? [[String: Any]] ?? []).compactMap { $0["program"] as? String }
        #expect(made.sorted() == ["count_getpid", "tp_getpid"], "\(ok.text)")
        let load = try #require((ok.json["id"] as? NSNumber)?.int64Value)
        _ = try c.json("PATCH", "/v1/loads/\(load)/variables", #"{"watch_tgid": \#(getpid())}"#)
        let raw0 = try Self.liveCount(c, load: load, "getpid_hits"), tp0 = try Self.liveCount(c, load: load, "tp_hits")
        Self.getpids(40)
        #expect(try Self.liveCount(c, load: load, "getpid_hits") - raw0 >= 40)
        #expect(try Self.liveCount(c, load: load, "tp_hits") - tp0 >= 40)
        // The kernel's run statistics (serve keeps them on): the tracepoint ran at least once
        // per getpid made here (other processes' count too), the unattached program never.
        let programs = try c.request("GET", "/v1/loads/\(load)/programs")
        #expect(programs.status == 200, "\(programs.text)")
        let byName = Dictionary(uniqueKeysWithValues: (programs.json["programs"] as? [[String: Any]] ?? []).compactMap { p in
            (p["name"] as? String).map { ($0, p) }
        })
        let tp = try #require(byName["tp_getpid"], "\(programs.text)")
        #expect((tp["runCount"] as? NSNumber)?.intValue ?? 0 >= 40, "\(tp)")
        #expect((tp["runTimeNs"] as? NSNumber)?.intValue ?? 0 > 0, "\(tp)")
        #expect((tp["verifiedInstructions"] as? NSNumber)?.intValue ?? 0 > 0)
        #expect((tp["kernelId"] as? NSNumber)?.intValue == (try Self.programID(c, load: load, "tp_getpid")))
        #expect((tp["tag"] as? String)?.count == 16)
        #expect((byName["run_only"]?["runCount"] as? NSNumber)?.intValue == 0)
        let metrics = try c.request("GET", "/metrics").text
        let series = metrics.split(separator: "\n").first { $0.hasPrefix("bpfdepot_program_runs_total{") && $0.contains("load=\"\(load)\"") && $0.contains("program=\"tp_getpid\"") }
        #expect(Int(series?.split(separator: " ").last ?? "") ?? 0 >= 40, "\(series ?? "no series")")
        // Unloading detaches every link first.
        #expect(try c.request("DELETE", "/v1/loads/\(load)").status == 204)
        let after = try c.request("GET", "/v1/loads/\(load)/links").json["links"] as? [[String: Any]] ?? []
        #expect(after.compactMap { $0["state"] as? String } == ["detached", "detached"], "\(after)")
        #expect(!FileManager.default.fileExists(atPath: "\(pinRoot)/\(load)"))
    }

    /// kill -9 with links attached: the next start adopts them (same kernel link ids), the
    /// counters keep going up while no service runs and after; deleting one stops it.
    @Test func linksSurviveKill9AndStillDetach() throws {
        let (dir, pinRoot) = try RestartTests.workspace()
        defer { try? FileManager.default.removeItem(atPath: dir); _ = PinRootCleanup.remove(pinRoot) }
        let serve = try ServeProcess(directory: dir, pinRoot: pinRoot)
        try serve.start()
        defer { serve.kill9() }
        let c = serve.client
        let (load, r) = try Self.load(c, body: #"{"attach": true}"#)
        let links = r.json["links"] as? [[String: Any]] ?? []
        let ids = Dictionary(uniqueKeysWithValues: links.compactMap { l -> (String, Int)? in
            guard let p = l["program"] as? String, let k = (l["kernelId"] as? NSNumber)?.intValue else { return nil }
            return (p, k)
        })
        #expect(ids.keys.sorted() == ["count_getpid", "tp_getpid"], "\(r.text)")
        Self.getpids(10)
        let before = try Self.liveCount(c, load: load, "getpid_hits")

        serve.kill9()
        Self.getpids(30)  // counted with no service running: the pins hold the links
        try serve.start()
        #expect(serve.log.contains("adopted link"), "\(serve.log)")
        let after = try c.request("GET", "/v1/loads/\(load)/links").json["links"] as? [[String: Any]] ?? []
        for l in after {
            #expect(l["state"] as? String == "attached", "\(l)")
            #expect((l["kernelId"] as? NSNumber)?.intValue == ids[l["program"] as? String ?? ""])
        }
        #expect(try Self.liveCount(c, load: load, "getpid_hits") - before >= 30)
        let raw = try #require(after.first { $0["program"] as? String == "count_getpid" })
        let rawID = try #require((raw["id"] as? NSNumber)?.int64Value)
        #expect(try c.request("DELETE", "/v1/links/\(rawID)").status == 204)
        let stopped = try Self.liveCount(c, load: load, "getpid_hits")
        let tp = try Self.liveCount(c, load: load, "tp_hits")
        Self.getpids(25)
        #expect(try Self.liveCount(c, load: load, "getpid_hits") == stopped)
        #expect(try Self.liveCount(c, load: load, "tp_hits") - tp >= 25)
        #expect(try c.request("DELETE", "/v1/loads/\(load)").status == 204)
        #expect(serve.pinnedLoadIDs.isEmpty)
        serve.terminate()
    }
}

/// The mission's scenario end to end, where the kernel has arenas: a tracing program attached
/// to a real hook counts into an `__arena` variable, read live over HTTP straight from the
/// mmap'ed arena while this test makes the events.
@Suite("links: a tracing program counting into the arena", .serialized, .needsBPF)
struct ArenaLinkServiceTests {
    @Test(.needsArenaMaps, .arenaTally) func aTracingLinkCountsIntoAnArenaVariableReadLiveOverHTTP() throws {
        let (dir, pinRoot) = try RestartTests.workspace()
        defer { try? FileManager.default.removeItem(atPath: dir); _ = PinRootCleanup.remove(pinRoot) }
        let serve = try ServeProcess(directory: dir, pinRoot: pinRoot)
        try serve.start()
        defer { serve.terminate() }
        let c = serve.client
        let oid = try RestartTests.upload(c, "service_arena_links")
        // The watched tgid is tuned before load, as an initial arena value.
        let patched = try c.json("PATCH", "/v1/objects/\(oid)/variables", #"{"arena_watch_tgid": \#(getpid())}"#)
        #expect(patched.status == 200, "\(patched.text)")
        let r = try c.json("POST", "/v1/objects/\(oid)/loads", #"{"links": [{"program": "arena_count_getpid"}]}"#)
        #expect(r.status == 201, "\(r.text)")
        let load = try #require((r.json["id"] as? NSNumber)?.int64Value)
        #expect((r.json["links"] as? [[String: Any]])?.first?["type"] as? String == "raw_tracepoint")
        let before = try LinkServiceTests.liveCount(c, load: load, "arena_hits")
        var seen: [Int] = [before]
        for _ in 0..<5 {
            LinkServiceTests.getpids(20)
            seen.append(try LinkServiceTests.liveCount(c, load: load, "arena_hits"))
        }
        print("arena_hits read live over HTTP after each 20 getpid calls: \(seen)")
        for (a, b) in zip(seen, seen.dropFirst()) { #expect(b - a >= 20, "\(seen)") }
        #expect(try LinkServiceTests.liveCount(c, load: load, "arena_last_tgid") == Int(getpid()))
        #expect(try c.request("DELETE", "/v1/loads/\(load)").status == 204)
    }
}

/// An iterator link read through the service, like `cat` of a pinned iterator.
@Suite("links: iterator output", .serialized, .needsBPF)
struct IteratorOutputServiceTests {
    @Test func aTaskIteratorLinkListsThisProcess() throws {
        let (dir, pinRoot) = try RestartTests.workspace()
        defer { try? FileManager.default.removeItem(atPath: dir); _ = PinRootCleanup.remove(pinRoot) }
        let serve = try ServeProcess(directory: dir, pinRoot: pinRoot)
        try serve.start()
        defer { serve.terminate() }
        let c = serve.client
        let oid = try RestartTests.upload(c, "links")
        let r = try c.json("POST", "/v1/objects/\(oid)/loads", #"{"links": [{"program": "dump_tasks"}, {"program": "raw_getpid"}]}"#)
        #expect(r.status == 201, "\(r.text)")
        let links = r.json["links"] as? [[String: Any]] ?? []
        let iter = try #require((links.first { $0["program"] as? String == "dump_tasks" }?["id"] as? NSNumber)?.int64Value)
        let raw = try #require((links.first { $0["program"] as? String == "raw_getpid" }?["id"] as? NSNumber)?.int64Value)
        #expect(links.first { $0["program"] as? String == "dump_tasks" }?["type"] as? String == "iter")

        // "TGID PID" per task: this test process's main thread is among them.
        let out = try c.request("GET", "/v1/links/\(iter)/output")
        #expect(out.status == 200, "\(out.text)")
        #expect(out.headers["content-type"]?.hasPrefix("text/plain") == true)
        #expect(out.headers["bpfdepot-output-truncated"] == "false")
        let me = "\(getpid()) \(getpid())"
        #expect(out.text.split(separator: "\n").contains { $0 == me }, "no line '\(me)' in \(out.text.prefix(300))…")
        // Bounded: a few bytes only, and it says so.
        let cut = try c.request("GET", "/v1/links/\(iter)/output?maxBytes=8")
        #expect(cut.status == 200)
        #expect(cut.body.count <= 8)
        #expect(cut.headers["bpfdepot-output-truncated"] == "true")
        // Not an iterator: a problem, not bytes.
        let notIter = try c.request("GET", "/v1/links/\(raw)/output")
        #expect(notIter.status == 422, "\(notIter.text)")
        #expect(try c.request("DELETE", "/v1/links/\(iter)").status == 204)
        let detached = try c.request("GET", "/v1/links/\(iter)/output")
        #expect(detached.status == 409, "\(detached.text)")
        #expect(try c.request("DELETE", "/v1/loads/\((r.json["id"] as? NSNumber)?.int64Value ?? 0)").status == 204)
    }
}

/// `bpfdepot load FILE --attach PROG --show VAR`: attached until Ctrl-C, values printed every
/// second, then detached and unloaded.
@Suite("bpfdepot load --attach", .serialized, .needsBPF)
struct LoadAttachCommandTests {
    @Test func attachedUntilSIGINTPrintingEverySecond() throws {
        let object = try Fixtures.objectPath("service_links").path
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-attach-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: output) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ServeProcess.binary)
        p.arguments = ["load", object, "--attach", "count_getpid", "--show", "getpid_hits"]
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        p.standardError = p.standardOutput
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        func text() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        func waitFor(_ what: (String) -> Bool, seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline { if what(text()) { return true }; usleep(50_000) }
            return false
        }
        #expect(waitFor({ $0.contains("printing every second") }, seconds: 60), "\(text())")
        for _ in 0..<200 { _ = getpid() }
        // Two more prints after the getpid calls: the last shows them (every process counts here).
        let printsBefore = text().components(separatedBy: "getpid_hits = ").count
        #expect(waitFor({ $0.components(separatedBy: "getpid_hits = ").count >= printsBefore + 2 }, seconds: 10), "\(text())")
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let all = text()
        #expect(p.terminationStatus == 0, "\(all)")
        #expect(all.contains("attached count_getpid: raw_tracepoint"), "\(all)")
        let values = all.components(separatedBy: "getpid_hits = ").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
        #expect((values.last ?? 0) >= 200, "\(values)")
        #expect(values == values.sorted(), "the counter went down: \(values)")
        #expect(all.contains("detaching 1 links and unloading"), "\(all)")
    }
}

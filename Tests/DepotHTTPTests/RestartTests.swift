import BPFTestSupport
import DepotCore
@testable import DepotStore
import Foundation
import Glibc
import Synchronization
import KernelTestSupport
import Testing

/// The real `bpfdepot serve` process, killed with SIGKILL and started again on the same
/// database and pin root: loads are adopted with their live values, acknowledged writes are all
/// there, and the kernel and the database agree (no pins without a `loaded` row, no `loaded` row
/// without pins).
@Suite("service restarts and crashes", .serialized, .enabled(if: LoadSupport.bpfPermitted, LoadSupport.skipMessage))
struct RestartTests {
    static func workspace() throws -> (directory: String, pinRoot: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-restart-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return (dir, "/sys/fs/bpf/bpfdepot-test-\(getpid())-\(UInt32.random(in: 0 ... .max))")
    }

    static func upload(_ c: RawHTTP, _ fixture: String) throws -> String {
        let r = try c.request("POST", "/v1/objects?name=\(fixture).o", body: try Fixtures.bytes(fixture), contentType: "application/octet-stream")
        #expect(r.status == 201 || r.status == 200, "\(r.text)")
        return try #require(r.json["id"] as? String)
    }

    static func liveValue(_ c: RawHTTP, load: Int64, _ name: String) throws -> Any? {
        let r = try c.request("GET", "/v1/loads/\(load)/variables/\(name)")
        #expect(r.status == 200, "\(r.text)")
        return r.json["value"]
    }

    @Test(.needsArenaMaps, .arenaTally) func aLoadSurvivesKill9WithItsLiveValuesAndStillUnloads() throws {
        let (dir, pinRoot) = try Self.workspace()
        defer { try? FileManager.default.removeItem(atPath: dir); rmdir(pinRoot) }
        let serve = try ServeProcess(directory: dir, pinRoot: pinRoot)
        try serve.start()
        defer { serve.kill9() }
        let c = serve.client
        let oid = try Self.upload(c, "adopt_arena")
        let created = try c.request("POST", "/v1/objects/\(oid)/loads")
        #expect(created.status == 201, "\(created.text)")
        let load = try #require((created.json["id"] as? NSNumber)?.int64Value)
        let ids = jsonText(created.json["maps"])
        // One value written by user space, others by the program.
        #expect(try c.json("PATCH", "/v1/loads/\(load)/variables", #"{"ad_counter": 41000}"#).status == 200)
        #expect(try c.request("POST", "/v1/loads/\(load)/programs/ad_tick/run").json["retval"] as? Int == 41003)
        let before = try c.request("GET", "/v1/loads/\(load)/variables")
        #expect(before.status == 200)

        serve.kill9()
        #expect(serve.pinnedLoadIDs == [load])
        try serve.start()
        #expect(serve.log.contains("adopted load"))

        let info = try c.request("GET", "/v1/loads/\(load)")
        #expect(info.json["state"] as? String == "loaded")
        #expect(jsonText(info.json["maps"]) == ids)  // the same kernel maps, not new ones
        let after = try c.request("GET", "/v1/loads/\(load)/variables")
        #expect(jsonText(variableValues(after.json)) == jsonText(variableValues(before.json)))
        #expect(try Self.liveValue(c, load: load, "ad_counter") as? Int == 41003)
        // The adopted load is fully usable: the program runs on the same memory.
        #expect(try c.request("POST", "/v1/loads/\(load)/programs/ad_tick/run").json["retval"] as? Int == 41006)
        #expect(try Self.liveValue(c, load: load, "ad_runs") as? Int == 2)

        #expect(try c.request("DELETE", "/v1/loads/\(load)").status == 204)
        #expect(serve.pinnedLoadIDs.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "\(pinRoot)/\(load)"))
        serve.terminate()
    }

    @Test func aLoadWhosePinsVanishedIsMarkedLostAndStrayPinsAreRemoved() throws {
        let (dir, pinRoot) = try Self.workspace()
        defer { try? FileManager.default.removeItem(atPath: dir); _ = PinRootCleanup.remove(pinRoot) }
        let serve = try ServeProcess(directory: dir, pinRoot: pinRoot)
        try serve.start()
        defer { serve.kill9() }
        let c = serve.client
        let oid = try Self.upload(c, "globals_run")
        let a = try #require((try c.request("POST", "/v1/objects/\(oid)/loads").json["id"] as? NSNumber)?.int64Value)
        let b = try #require((try c.request("POST", "/v1/objects/\(oid)/loads").json["id"] as? NSNumber)?.int64Value)
        serve.kill9()
        // Someone removed a's pins while the service was down; and a directory that no row
        // claims appeared (as a crash between pinning and the row update leaves one).
        _ = PinRootCleanup.remove("\(pinRoot)/\(a)")
        try FileManager.default.createDirectory(atPath: "\(pinRoot)/999/maps", withIntermediateDirectories: true)
        try serve.start()
        #expect(try c.request("GET", "/v1/loads/\(a)").json["state"] as? String == "lost")
        #expect(try c.request("GET", "/v1/loads/\(b)").json["state"] as? String == "loaded")
        #expect(serve.pinnedLoadIDs == [b])
        #expect(serve.log.contains("load lost"))
        #expect(serve.log.contains("removed pins without a loaded row"))
        #expect(try c.request("DELETE", "/v1/loads/\(b)").status == 204)
        serve.terminate()
    }

    /// A bounded mixed workload of uploads, patches (new revisions), loads and unloads, with the
    /// server killed at random moments several times. What was acknowledged with a 2xx must be
    /// there afterwards, the database must pass `PRAGMA integrity_check`, and the pins and the
    /// `loaded` rows must match one to one.
    @Test func kill9DuringMixedWritesLosesNoAcknowledgedWrite() throws {
        let (dir, pinRoot) = try Self.workspace()
        defer { try? FileManager.default.removeItem(atPath: dir); _ = PinRootCleanup.remove(pinRoot) }
        let serve = try ServeProcess(directory: dir, pinRoot: pinRoot)
        try serve.start()
        defer { serve.kill9() }
        // An arena object too where the kernel has arenas.
        let fixtures = ["globals_run", "globals"] + (KernelRequirements.arenaMaps.available ? ["arena_anyaddr"] : [])
        let objects = try fixtures.map { try Self.upload(serve.client, $0) }
        let target = objects[0]  // patched: its revisions carry input values

        struct Acks {
            var revisions: [Int: Int] = [:]  // revision → input value written
            var loaded: Set<Int64> = []
            var unloaded: Set<Int64> = []
            /// DELETEs sent: one cut off by the kill may or may not have been carried out.
            var unloadsSent: Set<Int64> = []
            var requests = 0
            var failures = 0  // connection errors while the server was being killed
        }
        let acks = Mutex(Acks())
        var rng = SplitMix64(state: 0x5eed_c4a5)
        let rounds = 5
        for round in 0..<rounds {
            let stop = Atomic<Bool>(false)
            let c = serve.client
            let workers = (0..<3).map { w in
                Thread {
                    var n = 0
                    while !stop.load(ordering: .relaxed) {
                        n += 1
                        let value = round * 100_000 + w * 10_000 + n
                        do {
                            switch (w + n) % 4 {
                            case 0, 1:
                                let r = try c.json("PATCH", "/v1/objects/\(target)/variables", #"{"input": \#(value)}"#)
                                if r.status == 200, let rev = r.json["revision"] as? Int {
                                    acks.withLock { $0.revisions[rev] = value }
                                }
                            case 2:
                                let r = try c.request("POST", "/v1/objects/\(objects[1 + n % (objects.count - 1)])/loads")
                                if r.status == 201, let id = (r.json["id"] as? NSNumber)?.int64Value {
                                    acks.withLock { _ = $0.loaded.insert(id) }
                                }
                            default:
                                // Keep a few loads live across each kill, so restarts adopt some.
                                let candidate = acks.withLock { a in
                                    let live = a.loaded.subtracting(a.unloaded)
                                    return live.count > 2 ? live.min() : nil
                                }
                                if let id = candidate {
                                    acks.withLock { _ = $0.unloadsSent.insert(id) }
                                    if try c.request("DELETE", "/v1/loads/\(id)").status == 204 {
                                        acks.withLock { _ = $0.unloaded.insert(id) }
                                    }
                                }
                            }
                            acks.withLock { $0.requests += 1 }
                        } catch {
                            acks.withLock { $0.failures += 1 }
                            usleep(2_000)
                        }
                    }
                }
            }
            let before = acks.withLock { ($0.revisions.count, $0.loaded.count) }
            workers.forEach { $0.start() }
            usleep(UInt32(200_000 + rng.next() % 600_000))
            // A slow machine (a TCG guest verifies ~70× slower) needs longer for the same
            // workload: each round cuts in only after some patches and a load were acknowledged.
            let deadline = ContinuousClock.now + .seconds(90)
            while ContinuousClock.now < deadline,
                  acks.withLock({ $0.revisions.count - before.0 < 3 || $0.loaded.count - before.1 < 1 }) {
                usleep(20_000)
            }
            serve.kill9()  // mid-flight: requests in every stage are cut
            stop.store(true, ordering: .relaxed)
            while workers.contains(where: { $0.isExecuting }) { usleep(5_000) }
            try serve.start()
        }

        let final = acks.withLock { $0 }
        #expect(final.revisions.count > 10, "expected a real workload, found \(final.revisions.count) acknowledged patches")
        #expect(final.loaded.count > 3)
        let c = serve.client
        // Every acknowledged revision is there with the value it was acknowledged with.
        for (rev, value) in final.revisions {
            let r = try c.request("GET", "/v1/objects/\(target)/variables/input?revision=\(rev)")
            #expect(r.status == 200 && r.json["value"] as? Int == value, "revision \(rev): \(r.text)")
        }
        // Acknowledged unloads are unloaded; acknowledged loads are loaded (adopted), or either
        // when an unload of them was sent but its answer cut off by a kill.
        for id in final.loaded {
            let state = try c.request("GET", "/v1/loads/\(id)").json["state"] as? String
            if final.unloaded.contains(id) {
                #expect(state == "unloaded", "load \(id)")
            } else if final.unloadsSent.contains(id) {
                #expect(state == "loaded" || state == "unloaded", "load \(id): unload sent, unanswered; found \(state ?? "nil")")
            } else {
                #expect(state == "loaded", "load \(id) was acknowledged and never unloaded, found \(state ?? "nil")")
            }
        }
        // The kernel side matches the rows one to one.
        var loadedRows: Set<Int64> = []
        var after: Int64 = 0
        while true {
            let page = try c.request("GET", "/v1/loads?limit=1000&after=\(after)").json["loads"] as? [[String: Any]] ?? []
            for l in page where l["state"] as? String == "loaded" { loadedRows.insert((l["id"] as? NSNumber)?.int64Value ?? -1) }
            guard let last = page.last.flatMap({ ($0["id"] as? NSNumber)?.int64Value }), page.count == 1000 else { break }
            after = last
        }
        #expect(serve.pinnedLoadIDs == loadedRows)
        for id in loadedRows { #expect(try c.request("DELETE", "/v1/loads/\(id)").status == 204) }
        serve.terminate()
        let store = try DepotStore(path: serve.databasePath)
        #expect(try store.readStrings("PRAGMA integrity_check") == ["ok"])
        #expect(try store.readStrings("PRAGMA foreign_key_check").isEmpty)
        try store.close()
        let adoptions = serve.log.components(separatedBy: "adopted load").count - 1
        #expect(adoptions > 0, "expected some restarts to adopt live loads")
        print("crash test: \(rounds) kills, \(adoptions) adoptions, \(final.requests) requests answered, \(final.revisions.count) patches, \(final.loaded.count) loads, \(final.unloaded.count) unloads acknowledged, \(final.failures) cut off")
    }
}

/// Removing a load directory whatever is pinned in it (bpffs pins unlink like files).
enum PinRootCleanup {
    @discardableResult
    static func remove(_ path: String) -> Bool {
        (try? FileManager.default.removeItem(atPath: path)) != nil
    }
}

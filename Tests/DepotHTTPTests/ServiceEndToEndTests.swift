import BPFObject
import BPFTestSupport
import DepotCore
import DepotHTTP
import DepotStore
import Foundation
import KernelTestSupport
import Testing

/// The service as a client sees it: a loopback server on a SQLite file, curl as the client, real
/// loads into the kernel. The arena tests use `service_arena.bpf.c`, whose arena sits at its own
/// fixed address (0x150000000000) that no other fixture uses; the suite is serialized because
/// only one load of it can be live at a time in the process.
@Suite(.serialized) struct ServiceEndToEndTests {
    static let arenaAddress = "0x150000000000"

    /// A kernel without arena maps refuses the load with the probe's reason as a 422 problem,
    /// stores no load, and still loads objects without arenas.
    @Test(.needsBPF, .disabled(if: KernelRequirements.arenaMaps.available, "this kernel has BPF arena maps"))
    func anArenaLoadOnAKernelWithoutArenasIsA422KernelFeatureProblem() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try LoopbackServer(router: f.router)
        defer { s.stop() }
        let c = ServiceClient(s)
        let up = try c.send("POST", "/v1/objects?name=service_arena.bpf.o", bytes: try Fixtures.bytes("service_arena"))
        let id = try #require(up.json["id"] as? String)
        let load = try c.send("POST", "/v1/objects/\(id)/loads")
        let problem = expectProblem(422, contentType: load.headers["Content-Type"], body: load.body, type: "kernel-feature-missing")
        #expect(problem["feature"] as? String == "arena_maps")
        let detail = problem["detail"] as? String ?? ""
        #expect(detail.hasPrefix("an object with the BPF arena map"), "\(detail)")
        #expect(detail.contains(KernelRequirements.arenaMaps.reason))
        // The refused load is recorded as failed (the record is written first), never loaded.
        let loads = try c.send("GET", "/v1/loads")
        let states = (loads.json["loads"] as? [[String: Any]] ?? []).compactMap { $0["state"] as? String }
        #expect(states == ["failed"], "\(loads.text)")
        let globals = try c.send("POST", "/v1/objects?name=globals.bpf.o", bytes: try Fixtures.bytes("globals"))
        let gid = try #require(globals.json["id"] as? String)
        let ok = try c.send("POST", "/v1/objects/\(gid)/loads")
        #expect(ok.status == 201, "\(ok.text)")
        if let lid = (ok.json["id"] as? NSNumber)?.int64Value { _ = try c.send("DELETE", "/v1/loads/\(lid)") }
    }

    @Test(.needsArenaMaps, .arenaTally) func arenaPatchLoadRunAndLiveValues() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try LoopbackServer(router: f.router)
        defer { s.stop() }
        let c = ServiceClient(s)
        let elf = try Fixtures.bytes("service_arena")

        // Upload, and the ELF's own initial values.
        let up = try c.send("POST", "/v1/objects?name=service_arena.bpf.o", bytes: elf)
        #expect(up.status == 201, "\(up.text)")
        let id = try #require(up.json["id"] as? String)
        #expect(up.headers["Location"] == "/v1/objects/\(id)")
        let maps = up.json["maps"] as? [[String: Any]] ?? []
        #expect(maps.first?["type"] as? String == "arena")
        #expect(maps.first?["mapExtra"] as? Int == 0x1500_0000_0000)
        let initial = variableValues(try c.get("/v1/objects/\(id)/variables").json)
        #expect(initial["svc_counter"] as? Int == 7)
        #expect(jsonText(initial["svc_rec"]) == #"{"flags":16,"id":3,"stamp":1000,"tag":"rec"}"#)
        #expect(initial["svc_scale"] as? Int == 10)
        #expect(initial["svc_step"] as? Int == 1)

        // Patch an arena scalar and one member of an arena struct, then a .rodata constant.
        let p1 = try c.send("PATCH", "/v1/objects/\(id)/variables", json: #"{"svc_counter": 41, "svc_rec": {"tag": "patched"}}"#,
                            headers: [("If-Match", #""1""#)])
        #expect(p1.status == 200, "\(p1.text)")
        #expect(p1.headers["ETag"] == #""2""#)
        let p2 = try c.send("PATCH", "/v1/objects/\(id)/variables", json: #"{"svc_scale": 250}"#, headers: [("If-Match", #""2""#)])
        #expect(p2.status == 200, "\(p2.text)")
        #expect(p2.json["revision"] as? Int == 3)
        let stale = try c.send("PATCH", "/v1/objects/\(id)/variables", json: #"{"svc_scale": 1}"#, headers: [("If-Match", #""2""#)])
        #expect(stale.status == 412)
        _ = expectProblem(412, contentType: stale.headers["Content-Type"], body: stale.body, type: "stale-revision")

        // The stored images hold the patched bytes (little-endian, tag NUL padded).
        let arenaImage = try c.get("/v1/objects/\(id)/images/.addr_space.1")
        #expect(arenaImage.status == 200)
        #expect(arenaImage.headers["ETag"] == #""3""#)
        #expect(arenaImage.body.count == 32)
        if arenaImage.body.count == 32 {
            #expect(Array(arenaImage.body[0..<4]) == [41, 0, 0, 0])
            #expect(Array(arenaImage.body[24..<32]) == Array("patched\0".utf8))
        }
        #expect(try c.get("/v1/objects/\(id)/images/.rodata").body == [250, 0, 0, 0])
        #expect(try c.get("/v1/objects/\(id)/images/.rodata?revision=1").body == [10, 0, 0, 0])

        // Load the current revision.
        let load = try c.send("POST", "/v1/objects/\(id)/loads")
        #expect(load.status == 201, "\(load.text)")
        let loadID = try #require(load.json["id"] as? Int)
        #expect(load.headers["Location"] == "/v1/loads/\(loadID)")
        #expect(load.json["revision"] as? Int == 3)
        #expect(load.json["state"] as? String == "loaded")
        #expect(load.json["objectId"] as? String == id)
        #expect(load.json["arenaAddress"] as? String == Self.arenaAddress)
        #expect((load.json["programs"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["svc_run"])
        let info = try c.get("/v1/loads/\(loadID)")
        #expect(info.status == 200)
        #expect(info.json["state"] as? String == "loaded")
        #expect(info.json["arenaAddress"] as? String == Self.arenaAddress)

        // Before any run the live memory holds the patched initial values.
        let names = "svc_counter,svc_rec,svc_scale,svc_step,svc_bonus,svc_runs,svc_tag_sum"
        let before = variableValues(try c.get("/v1/loads/\(loadID)/variables?names=\(names)").json)
        #expect(before["svc_counter"] as? Int == 41)
        #expect(jsonText(before["svc_rec"]) == #"{"flags":16,"id":3,"stamp":1000,"tag":"patched"}"#)
        #expect(before["svc_scale"] as? Int == 250)
        #expect(before["svc_runs"] as? Int == 0)

        // One run: counter 41 + step 1, the struct updated with the patched scale, the tag read.
        let run1 = try c.send("POST", "/v1/loads/\(loadID)/programs/svc_run/run")
        #expect(run1.status == 200, "\(run1.text)")
        #expect(run1.json["retval"] as? Int == 42)
        let after1 = variableValues(try c.get("/v1/loads/\(loadID)/variables?names=\(names)").json)
        #expect(after1["svc_counter"] as? Int == 42)
        #expect(jsonText(after1["svc_rec"]) == #"{"flags":17,"id":4,"stamp":1250,"tag":"patched"}"#)
        #expect(after1["svc_runs"] as? Int == 1)
        #expect(after1["svc_tag_sum"] as? Int == tagSum("patched"))
        #expect(after1["svc_scale"] as? Int == 250)
        let one = try c.get("/v1/loads/\(loadID)/variables/svc_counter")
        #expect(one.status == 200)
        #expect(one.json["value"] as? Int == 42)
        #expect(one.json["section"] as? String == ".addr_space.1")

        // Polling: unchanged memory answers 304 (weak content tag), again and again.
        let poll = try c.get("/v1/loads/\(loadID)/variables")
        #expect(poll.status == 200)
        let etag = try #require(poll.headers["ETag"])
        #expect(etag.hasPrefix("W/\""))
        for _ in 0..<2 {
            let unchanged = try c.get("/v1/loads/\(loadID)/variables", headers: [("If-None-Match", etag)])
            #expect(unchanged.status == 304)
            #expect(unchanged.body.isEmpty)
            #expect(unchanged.headers["ETag"] == etag)
        }
        let oneTag = try #require(one.headers["ETag"])
        #expect(try c.get("/v1/loads/\(loadID)/variables/svc_counter", headers: [("If-None-Match", oneTag)]).status == 304)

        // A live PATCH of writable variables (.bss and an arena struct member) changes the poll.
        let live = try c.send("PATCH", "/v1/loads/\(loadID)/variables", json: #"{"svc_bonus": 100, "svc_rec": {"tag": "live"}}"#)
        #expect(live.status == 200, "\(live.text)")
        let echoed = variableValues(live.json)
        #expect(echoed["svc_bonus"] as? Int == 100)
        #expect(jsonText(echoed["svc_rec"]) == #"{"flags":17,"id":4,"stamp":1250,"tag":"live"}"#)
        let changed = try c.get("/v1/loads/\(loadID)/variables", headers: [("If-None-Match", etag)])
        #expect(changed.status == 200)
        let etag2 = try #require(changed.headers["ETag"])
        #expect(etag2 != etag)
        #expect(variableValues(changed.json)["svc_bonus"] as? Int == 100)
        #expect(try c.get("/v1/loads/\(loadID)/variables", headers: [("If-None-Match", etag2)]).status == 304)
        #expect(try c.get("/v1/loads/\(loadID)/variables/svc_counter", headers: [("If-None-Match", oneTag)]).status == 304,
                "svc_counter itself did not change")

        // The program sees the live values: 42 + 1 + 100; then three more runs of +101 each.
        // (Three requests, not {"repeat": 3}: the kernel takes no repeat count for syscall
        // programs, and the loader runs them once whatever the count.)
        let run2 = try c.send("POST", "/v1/loads/\(loadID)/programs/svc_run/run", json: "{}")
        #expect(run2.json["retval"] as? Int == 143)
        #expect(try c.get("/v1/loads/\(loadID)/variables", headers: [("If-None-Match", etag2)]).status == 200,
                "a run changes the memory, so the poll sees it")
        var retvals: [Int?] = []
        for _ in 0..<3 {
            let r = try c.send("POST", "/v1/loads/\(loadID)/programs/svc_run/run", json: #"{"repeat": 1}"#)
            #expect(r.status == 200, "\(r.text)")
            retvals.append(r.json["retval"] as? Int)
        }
        #expect(retvals == [244, 345, 446])
        let after3 = variableValues(try c.get("/v1/loads/\(loadID)/variables?names=\(names)").json)
        #expect(after3["svc_counter"] as? Int == 446)
        #expect(jsonText(after3["svc_rec"]) == #"{"flags":17,"id":8,"stamp":2250,"tag":"live"}"#)
        #expect(after3["svc_runs"] as? Int == 5)
        #expect(after3["svc_tag_sum"] as? Int == tagSum("live"))

        // .rodata is frozen once loaded: a live PATCH is a conflict and changes nothing.
        let ro = try c.send("PATCH", "/v1/loads/\(loadID)/variables", json: #"{"svc_scale": 1}"#)
        #expect(ro.status == 409)
        _ = expectProblem(409, contentType: ro.headers["Content-Type"], body: ro.body, type: "read-only")
        #expect(variableValues(try c.get("/v1/loads/\(loadID)/variables?names=svc_scale").json)["svc_scale"] as? Int == 250)

        // The object cannot go while it is loaded, and its arena address is taken.
        let del = try c.send("DELETE", "/v1/objects/\(id)")
        #expect(del.status == 409)
        _ = expectProblem(409, contentType: del.headers["Content-Type"], body: del.body, type: "conflict")
        #expect(try c.get("/v1/objects/\(id)").status == 200)
        let second = try c.send("POST", "/v1/objects/\(id)/loads")
        #expect(second.status == 409, "\(second.text)")
        _ = expectProblem(409, contentType: second.headers["Content-Type"], body: second.body, type: "arena-address-in-use")
        #expect(try c.get("/v1/loads/\(loadID)/variables?names=svc_counter").status == 200, "the first load is untouched")

        // A second depot on the same file sees the revisions and the loads.
        let reopened = Depot(store: try DepotStore(path: f.databasePath))
        #expect(try reopened.object(id: id).object.currentRevision == 3)
        #expect(try reopened.revisions(objectID: id).map(\.revision) == [1, 2, 3])
        let states = try reopened.loads(limit: 10, after: nil).map { ($0.record.id, $0.record.state) }
        #expect(states.first?.0 == Int64(loadID))
        #expect(states.map(\.1) == [.loaded, .failed])
        try reopened.store.close()

        // Unload: 204, the record says so, live access is a conflict, the address is free again.
        let unload = try c.send("DELETE", "/v1/loads/\(loadID)")
        #expect(unload.status == 204)
        #expect(unload.body.isEmpty)
        #expect(try c.get("/v1/loads/\(loadID)").json["state"] as? String == "unloaded")
        let gone = try c.get("/v1/loads/\(loadID)/variables")
        #expect(gone.status == 409)
        _ = expectProblem(409, contentType: gone.headers["Content-Type"], body: gone.body, type: "not-loaded")
        let goneRun = try c.send("POST", "/v1/loads/\(loadID)/programs/svc_run/run")
        #expect(goneRun.status == 409)
        _ = expectProblem(409, contentType: goneRun.headers["Content-Type"], body: goneRun.body, type: "not-loaded")

        // Revision 1 again, at the same fixed address: the ELF's own values, FACTS' default run.
        let v1 = try c.send("POST", "/v1/objects/\(id)/loads", json: #"{"revision": 1}"#)
        #expect(v1.status == 201, "\(v1.text)")
        let v1ID = try #require(v1.json["id"] as? Int)
        #expect(v1.json["revision"] as? Int == 1)
        #expect(v1.json["arenaAddress"] as? String == Self.arenaAddress)
        let fresh = variableValues(try c.get("/v1/loads/\(v1ID)/variables?names=\(names)").json)
        #expect(fresh["svc_counter"] as? Int == 7)
        #expect(fresh["svc_scale"] as? Int == 10)
        let runDefault = try c.send("POST", "/v1/loads/\(v1ID)/programs/svc_run/run")
        #expect(runDefault.json["retval"] as? Int == 8)
        let afterDefault = variableValues(try c.get("/v1/loads/\(v1ID)/variables?names=\(names)").json)
        #expect(jsonText(afterDefault["svc_rec"]) == #"{"flags":17,"id":4,"stamp":1010,"tag":"rec"}"#)
        #expect(afterDefault["svc_tag_sum"] as? Int == tagSum("rec"))
        #expect(afterDefault["svc_runs"] as? Int == 1)
        #expect(try c.send("DELETE", "/v1/loads/\(v1ID)").status == 204)

        // Nothing loaded any more: the object can be deleted, and its loads go with it.
        let delete = try c.send("DELETE", "/v1/objects/\(id)")
        #expect(delete.status == 204, "\(delete.text)")
        #expect(try c.get("/v1/objects/\(id)").status == 404)
        #expect(try c.get("/v1/loads/\(loadID)").status == 404)
        #expect((try c.get("/v1/loads").json["loads"] as? [Any])?.isEmpty == true)
    }

    @Test func rodataPatchesReachTheKernelProgram() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try LoopbackServer(router: f.router)
        defer { s.stop() }
        let c = ServiceClient(s)
        let up = try c.send("POST", "/v1/objects?name=globals.bpf.o", bytes: try Fixtures.bytes("globals"))
        let id = try #require(up.json["id"] as? String)

        // .rodata and .rodata.cfg constants plus a .data initial value, in one revision.
        let patch = try c.send("PATCH", "/v1/objects/\(id)/variables",
                               json: #"{"cfg_limit": 50, "ro_s64": -100, "ro_u32": 305419777, "data_int": 2000}"#)
        #expect(patch.status == 200, "\(patch.text)")
        #expect(patch.json["revision"] as? Int == 2)

        let load = try c.send("POST", "/v1/objects/\(id)/loads")
        #expect(load.status == 201, "\(load.text)")
        let loadID = try #require(load.json["id"] as? Int)
        defer { _ = try? c.send("DELETE", "/v1/loads/\(loadID)") }
        #expect(load.json["arenaAddress"] == nil)

        let live = variableValues(try c.get("/v1/loads/\(loadID)/variables?names=ro_u32,ro_s64,cfg_limit,data_int").json)
        #expect(live["ro_u32"] as? Int == 0x1234_5601)
        #expect(live["ro_s64"] as? Int == -100)
        #expect(live["cfg_limit"] as? Int == 50)
        #expect(live["data_int"] as? Int == 2000)

        // sys_first: bss_int = data_int + static_sub(1) (11) + global_sub(200) (min(200, cfg_limit) + 42)
        // + bpf_loop sum (12) = 2000 + 11 + 92 + 12; then data_int += ro_s64.
        let first = try c.send("POST", "/v1/loads/\(loadID)/programs/sys_first/run")
        #expect(first.status == 200, "\(first.text)")
        #expect(first.json["retval"] as? Int == 2115)
        let v = variableValues(try c.get("/v1/loads/\(loadID)/variables").json)
        #expect(v["bss_int"] as? Int == 2115)
        #expect(v["data_int"] as? Int == 1900)
        #expect(jsonText(v["bss_arr"]) == "[1,2,3,4]")
        #expect(v["hidden_counter"] as? Int == 10)
        // sys_second: static_sub(data_point.y = 17) = 17 + 11, plus ro_u32 & 0xff = 1.
        let second = try c.send("POST", "/v1/loads/\(loadID)/programs/sys_second/run")
        #expect(second.json["retval"] as? Int == 29)
        let w = variableValues(try c.get("/v1/loads/\(loadID)/variables?names=custom_val,data_color,data_flag").json)
        #expect(w["custom_val"] as? Int == 43)
        #expect(w["data_color"] as? String == "GL_GREEN")
        #expect(jsonText(w["data_flag"]) == "false")

        // Both kinds of read-only section refuse live writes.
        for body in [#"{"ro_u32": 1}"#, #"{"cfg_limit": 1}"#, #"{"data_int": 1, "ro_flag": false}"#] {
            let r = try c.send("PATCH", "/v1/loads/\(loadID)/variables", json: body)
            #expect(r.status == 409, "\(body)")
            _ = expectProblem(409, contentType: r.headers["Content-Type"], body: r.body, type: "read-only")
        }
        #expect(variableValues(try c.get("/v1/loads/\(loadID)/variables?names=data_int").json)["data_int"] as? Int == 1900,
                "a refused live patch writes none of its values")
    }
}

/// Rejected requests: each one answers its exact 4xx status with a problem+json body, and none of
/// them changes the database. The database is checked two ways (see `ServiceFixture.Snapshot`):
/// the WAL has no new frame (nothing committed), the main file is byte-for-byte the same after a
/// checkpoint, and a logical dump of every row of every table is equal.
@Suite struct ServiceEndToEndBadInputTests {
    struct Case {
        var label: String
        var method: String
        var path: String
        var json: String?
        var bytes: [UInt8]?
        var headers: [(String, String)] = []
        var status: Int
        var type: String
        var client: Int = 0  // 0: open server, 1: server with a bearer token, 2: server with a small body limit
    }

    @Test func rejectedRequestsAreProblemsAndChangeNothing() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let token = "e2e-secret"
        let open = try LoopbackServer(router: f.router)
        defer { open.stop() }
        let guarded = try LoopbackServer(router: f.router) { $0.bearerToken = token }
        defer { guarded.stop() }
        let small = try LoopbackServer(router: f.router) { $0.maxBodyBytes = 512 }
        defer { small.stop() }
        let clients = [ServiceClient(open), ServiceClient(guarded), ServiceClient(small)]
        let c = clients[0]

        // Setup (these do write): an object with two revisions, loaded.
        let globals = try Fixtures.bytes("globals")
        let id = try #require(try c.send("POST", "/v1/objects?name=globals.bpf.o", bytes: globals).json["id"] as? String)
        #expect(try c.send("PATCH", "/v1/objects/\(id)/variables", json: #"{"data_int": 5}"#).status == 200)
        let load = try c.send("POST", "/v1/objects/\(id)/loads")
        #expect(load.status == 201, "\(load.text)")
        let loadID = try #require(load.json["id"] as? Int)
        let unknownObject = String(repeating: "0", count: 64)
        let badMapField = try Fixtures.bytes("bad_unknown_map_field")
        var garbage = [UInt8](repeating: 0, count: 256)
        for i in garbage.indices { garbage[i] = UInt8(truncatingIfNeeded: i &* 37 &+ 11) }

        let obj = "/v1/objects/\(id)"
        let vars = "\(obj)/variables"
        let cases: [Case] = [
            // Uploads that are not objects we take.
            Case(label: "truncated elf", method: "POST", path: "/v1/objects", bytes: Array(globals.prefix(200)), status: 422, type: "invalid-object"),
            Case(label: "elf cut in the middle", method: "POST", path: "/v1/objects", bytes: Array(globals.prefix(globals.count / 2)), status: 422, type: "invalid-object"),
            Case(label: "garbage bytes", method: "POST", path: "/v1/objects", bytes: garbage, status: 422, type: "invalid-object"),
            Case(label: "empty body", method: "POST", path: "/v1/objects", status: 422, type: "invalid-object"),
            Case(label: "unknown map field", method: "POST", path: "/v1/objects", bytes: badMapField, status: 422, type: "invalid-object"),
            // Typed patches whose values do not fit.
            Case(label: "string for int", method: "PATCH", path: vars, json: #"{"data_int": "12"}"#, status: 422, type: "bad-value"),
            Case(label: "object for int", method: "PATCH", path: vars, json: #"{"data_int": {"v": 1}}"#, status: 422, type: "bad-value"),
            Case(label: "array too long", method: "PATCH", path: vars, json: #"{"bss_arr": [1, 2, 3, 4, 5]}"#, status: 422, type: "bad-value"),
            Case(label: "string too long", method: "PATCH", path: vars, json: #"{"data_str": "0123456789abcdefXYZ"}"#, status: 422, type: "bad-value"),
            Case(label: "struct unknown member", method: "PATCH", path: vars, json: #"{"data_point": {"z": 1}}"#, status: 422, type: "bad-value"),
            Case(label: "enum unknown name", method: "PATCH", path: vars, json: #"{"data_color": "GL_PURPLE"}"#, status: 422, type: "bad-value"),
            Case(label: "int overflow", method: "PATCH", path: vars, json: #"{"data_int": 2147483648}"#, status: 422, type: "bad-value"),
            Case(label: "u64 overflow", method: "PATCH", path: vars, json: #"{"bss_arr": [18446744073709551616]}"#, status: 422, type: "bad-value"),
            Case(label: "negative for unsigned", method: "PATCH", path: vars, json: #"{"ro_u32": -1}"#, status: 422, type: "bad-value"),
            Case(label: "bitfield too wide", method: "PATCH", path: vars, json: #"{"data_bits": {"a": 8}}"#, status: 422, type: "bad-value"),
            Case(label: "good then bad value", method: "PATCH", path: vars, json: #"{"data_int": 1, "data_flag": 2}"#, status: 422, type: "bad-value"),
            Case(label: "unknown variable", method: "PATCH", path: vars, json: #"{"no_such_var": 1}"#, status: 422, type: "unknown-variable"),
            Case(label: "malformed json", method: "PATCH", path: vars, json: #"{"data_int": "#, status: 400, type: "invalid-json"),
            Case(label: "duplicate key", method: "PATCH", path: vars, json: #"{"data_int": 1, "data_int": 2}"#, status: 400, type: "invalid-json"),
            Case(label: "json not an object", method: "PATCH", path: vars, json: #"[{"data_int": 1}]"#, status: 422, type: "invalid-body"),
            Case(label: "empty patch", method: "PATCH", path: vars, json: "{}", status: 422, type: "empty-patch"),
            // Raw image writes.
            Case(label: "image offset past the end", method: "PUT", path: "\(obj)/images/.data?offset=73", bytes: [1], status: 422, type: "out-of-bounds"),
            Case(label: "image length past the end", method: "PUT", path: "\(obj)/images/.data?offset=70", bytes: [1, 2, 3, 4], status: 422, type: "out-of-bounds"),
            Case(label: "image larger than the section", method: "PUT", path: "\(obj)/images/.rodata.cfg", bytes: [1, 2, 3, 4, 5], status: 422, type: "out-of-bounds"),
            Case(label: "negative image offset", method: "PUT", path: "\(obj)/images/.data?offset=-1", bytes: [1], status: 400, type: "bad-parameter"),
            Case(label: "unknown section put", method: "PUT", path: "\(obj)/images/.nosuch", bytes: [1], status: 404, type: "unknown-section"),
            Case(label: "unknown section get", method: "GET", path: "\(obj)/images/.nosuch", status: 404, type: "unknown-section"),
            // Preconditions.
            Case(label: "stale if-match", method: "PATCH", path: vars, json: #"{"data_int": 6}"#, headers: [("If-Match", #""1""#)], status: 412, type: "stale-revision"),
            Case(label: "stale if-match on image", method: "PUT", path: "\(obj)/images/.data", bytes: [1], headers: [("If-Match", #""1""#)], status: 412, type: "stale-revision"),
            Case(label: "malformed if-match", method: "PATCH", path: vars, json: #"{"data_int": 6}"#, headers: [("If-Match", "2")], status: 400, type: "invalid-precondition"),
            Case(label: "if-match not a revision", method: "PATCH", path: vars, json: #"{"data_int": 6}"#, headers: [("If-Match", #""two""#)], status: 400, type: "bad-precondition"),
            // Authentication and size, before any handler runs.
            Case(label: "missing token", method: "POST", path: "/v1/objects", bytes: globals, status: 401, type: "unauthorized", client: 1),
            Case(label: "wrong token", method: "PATCH", path: vars, json: #"{"data_int": 6}"#, headers: [("Authorization", "Bearer e2e-secreT")], status: 401, type: "unauthorized", client: 1),
            Case(label: "wrong scheme", method: "DELETE", path: obj, headers: [("Authorization", "Basic \(token)")], status: 401, type: "unauthorized", client: 1),
            Case(label: "oversized body", method: "POST", path: "/v1/objects", bytes: globals, status: 413, type: "content-too-large", client: 2),
            // Routing and parameters.
            Case(label: "unknown route", method: "GET", path: "/v1/nothing/here", status: 404, type: "not-found"),
            Case(label: "wrong method", method: "DELETE", path: "/v1/objects", status: 405, type: "method-not-allowed"),
            Case(label: "limit=0", method: "GET", path: "/v1/objects?limit=0", status: 400, type: "bad-parameter"),
            Case(label: "limit too big", method: "GET", path: "/v1/loads?limit=1001", status: 400, type: "bad-parameter"),
            Case(label: "after not a load id", method: "GET", path: "/v1/loads?after=-1", status: 400, type: "bad-parameter"),
            Case(label: "revision=abc", method: "GET", path: "\(vars)?revision=abc", status: 400, type: "bad-parameter"),
            Case(label: "revision that does not exist", method: "GET", path: "\(vars)?revision=99", status: 404, type: "not-found"),
            Case(label: "unknown object id", method: "GET", path: "/v1/objects/\(unknownObject)", status: 404, type: "not-found"),
            Case(label: "patch of an unknown object", method: "PATCH", path: "/v1/objects/\(unknownObject)/variables", json: #"{"data_int": 1}"#, status: 404, type: "not-found"),
            Case(label: "delete of an unknown object", method: "DELETE", path: "/v1/objects/\(unknownObject)", status: 404, type: "not-found"),
            Case(label: "unknown variable by path", method: "GET", path: "\(vars)/nope", status: 404, type: "unknown-variable"),
            Case(label: "unknown load id", method: "GET", path: "/v1/loads/999999", status: 404, type: "not-found"),
            Case(label: "load id not a number", method: "GET", path: "/v1/loads/abc", status: 404, type: "not-found"),
            Case(label: "unload of an unknown load", method: "DELETE", path: "/v1/loads/999999", status: 404, type: "not-found"),
            // Loads.
            Case(label: "load revision that does not exist", method: "POST", path: "\(obj)/loads", json: #"{"revision": 99}"#, status: 404, type: "not-found"),
            Case(label: "load revision not an integer", method: "POST", path: "\(obj)/loads", json: #"{"revision": "2"}"#, status: 422, type: "invalid-body"),
            Case(label: "load body unknown member", method: "POST", path: "\(obj)/loads", json: #"{"rev": 1}"#, status: 422, type: "invalid-body"),
            Case(label: "load of an unknown object", method: "POST", path: "/v1/objects/\(unknownObject)/loads", status: 404, type: "not-found"),
            Case(label: "run of an unknown program", method: "POST", path: "/v1/loads/\(loadID)/programs/nope/run", status: 404, type: "not-found"),
            Case(label: "run of an unknown load", method: "POST", path: "/v1/loads/999999/programs/sys_first/run", status: 404, type: "not-found"),
            Case(label: "live read of an unknown load", method: "GET", path: "/v1/loads/999999/variables", status: 404, type: "not-found"),
            Case(label: "live patch of an unknown load", method: "PATCH", path: "/v1/loads/999999/variables", json: #"{"data_int": 1}"#, status: 404, type: "not-found"),
            Case(label: "run repeat 0", method: "POST", path: "/v1/loads/\(loadID)/programs/sys_first/run", json: #"{"repeat": 0}"#, status: 422, type: "invalid-body"),
            Case(label: "run data not base64", method: "POST", path: "/v1/loads/\(loadID)/programs/sys_first/run", json: #"{"data": "%%%"}"#, status: 422, type: "invalid-body"),
            Case(label: "live patch of rodata", method: "PATCH", path: "/v1/loads/\(loadID)/variables", json: #"{"ro_u32": 1}"#, status: 409, type: "read-only"),
            Case(label: "live patch wrong type", method: "PATCH", path: "/v1/loads/\(loadID)/variables", json: #"{"data_int": "x"}"#, status: 422, type: "bad-value"),
            Case(label: "live patch unknown variable", method: "PATCH", path: "/v1/loads/\(loadID)/variables", json: #"{"nope": 1}"#, status: 422, type: "unknown-variable"),
            Case(label: "live read unknown variable", method: "GET", path: "/v1/loads/\(loadID)/variables/nope", status: 404, type: "unknown-variable"),
            Case(label: "delete of a loaded object", method: "DELETE", path: obj, status: 409, type: "conflict"),
        ]
        #expect(cases.count >= 30)

        let before = try f.snapshot()
        #expect(before.checkpointResult.first == "0", "the checkpoint completed: \(before.checkpointResult)")
        let liveBefore = try c.get("/v1/loads/\(loadID)/variables").text

        for k in cases {
            let r = try clients[k.client].send(k.method, k.path, json: k.json, bytes: k.bytes, headers: k.headers)
            #expect(r.status == k.status, "\(k.label): \(r.status) \(r.text)")
            let p = expectProblem(k.status, contentType: r.headers["Content-Type"], body: r.body, type: k.type)
            #expect(p["status"] as? Int == r.status, "\(k.label)")
            #expect(r.headers["X-Request-Id"] != nil, "\(k.label)")
            if k.status == 405 { #expect(r.headers["Allow"] == "GET, HEAD, POST", "\(k.label)") }
            if k.status == 401 { #expect(r.headers["WWW-Authenticate"] == "Bearer", "\(k.label)") }
        }

        let after = try f.snapshot()
        #expect(after.walBytesBeforeCheckpoint == 0, "no transaction committed during the rejected requests")
        #expect(after.checkpointResult.first == "0")
        #expect(after.fileSHA256 == before.fileSHA256, "the database file is byte-for-byte unchanged")
        #expect(after.rows.count == before.rows.count)
        for (a, b) in zip(before.rows, after.rows) where a != b {
            Issue.record("row changed: \(a.prefix(200)) -> \(b.prefix(200))")
        }
        #expect(try f.store.integrityCheck() == ["ok"])
        // Nor did they touch the live load.
        #expect(try c.get("/v1/loads/\(loadID)/variables").text == liveBefore)

        // The check is sensitive: one accepted write shows in all three measures.
        #expect(try c.send("PATCH", vars, json: #"{"data_int": 6}"#).status == 200)
        let written = try f.snapshot()
        #expect(written.walBytesBeforeCheckpoint > 0)
        #expect(written.fileSHA256 != after.fileSHA256)
        #expect(written.rows != after.rows)

        // The token server takes the right token, and the data is still all there.
        let authorized = ServiceClient(guarded, token: token)
        #expect(try authorized.send("DELETE", "/v1/loads/\(loadID)").status == 204)
        #expect(try authorized.send("DELETE", obj).status == 204)
    }
}

import BPFObject
import BPFTestSupport
import DepotCore
import DepotHTTP
import Foundation
import Glibc
import Logging
import KernelTestSupport
import Testing

/// `GET /metrics`, exported variables and access logs, as an operator sees them: a loopback
/// server with a registry and a log sink of its own, curl as the client, real kernel loads.
/// Serialized: `arena_anyaddr` and `globals` loads stay few and short-lived.
@Suite(.serialized) struct ObservabilityTests {
    static let variableRoute = "/v1/loads/{id}/variables/{name}"

    /// Uploads a fixture and loads it; returns (object id, load id).
    static func uploadAndLoad(_ c: ServiceClient, _ fixture: String, body: String? = nil,
                              sourceLocation: SourceLocation = #_sourceLocation) throws -> (String, Int) {
        let up = try c.send("POST", "/v1/objects?name=\(fixture).bpf.o", bytes: try Fixtures.bytes(fixture))
        #expect(up.status == 201 || up.status == 200, "\(up.text)", sourceLocation: sourceLocation)
        let id = try #require(up.json["id"] as? String, sourceLocation: sourceLocation)
        let load = try c.send("POST", "/v1/objects/\(id)/loads", json: body)
        #expect(load.status == 201, "\(load.text)", sourceLocation: sourceLocation)
        return (id, try #require(load.json["id"] as? Int, sourceLocation: sourceLocation))
    }

    // MARK: requests

    @Test func everyRequestCountsOnceUnderItsRouteTemplate() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server { $0.bearerToken = "s3cret" }
        defer { s.stop() }
        let c = ServiceClient(s, token: "s3cret")
        let anonymous = ServiceClient(s)
        let (_, loadID) = try Self.uploadAndLoad(c, "globals")

        let before = try c.scrape()
        let n = 17
        for i in 0..<n {
            // Two different variables: one route, one series.
            let r = try c.get("/v1/loads/\(loadID)/variables/\(i % 2 == 0 ? "data_int" : "bss_int")")
            #expect(r.status == 200)
        }
        for i in 0..<4 { #expect(try c.get("/no/such/path/\(i)").status == 404) }
        for _ in 0..<3 { #expect(try anonymous.send("POST", "/v1/objects", bytes: [1, 2, 3]).status == 401) }
        for _ in 0..<2 { #expect(try c.send("PATCH", "/v1/objects", json: "{}").status == 405) }
        #expect(try c.get("/v1/loads/\(loadID)/variables/no_such_variable").status == 404)
        let after = try c.scrape()

        let ok = ["route": Self.variableRoute, "method": "GET", "status": "200"]
        let requests = ServiceMetrics.requestsLabel
        let duration = ServiceMetrics.requestDurationLabel
        #expect(after.count(requests, ok) - before.count(requests, ok) == Double(n))
        #expect(after.count(duration + "_count", ok) - before.count(duration + "_count", ok) == Double(n))
        #expect(after.count(duration + "_sum", ok) > before.count(duration + "_sum", ok))
        // Buckets are cumulative, from 50 µs to 10 s, and +Inf holds every request.
        let buckets = after.all(duration + "_bucket").filter { $0.labels.filter { $0.key != "le" } == ok }
        #expect(buckets.count == ServiceMetrics.requestDurationBuckets.count + 1)
        #expect(buckets.first?.labels["le"] == "0.00005")
        #expect(buckets.last?.labels["le"] == "+Inf")
        #expect(buckets.last?.value == after.value(duration + "_count", ok))
        #expect(zip(buckets, buckets.dropFirst()).allSatisfy { $0.value <= $1.value })

        // Refusals before any handler count too, under the route the path belongs to.
        let rows: [([String: String], Double)] = [
            (["route": ServiceMetrics.unmatchedRoute, "method": "GET", "status": "404"], 4),
            (["route": "/v1/objects", "method": "POST", "status": "401"], 3),
            (["route": "/v1/objects", "method": "PATCH", "status": "405"], 2),
            (["route": Self.variableRoute, "method": "GET", "status": "404"], 1),
        ]
        for (labels, expected) in rows {
            #expect(after.count(requests, labels) - before.count(requests, labels) == expected, "\(labels)")
            #expect(after.count(duration + "_count", labels) - before.count(duration + "_count", labels) == expected, "\(labels)")
        }
        // Only route templates: no raw path or id reaches a label.
        #expect(!after.text.contains("/no/such/path"))
        #expect(!after.text.contains("/v1/loads/\(loadID)/"))
        // The scrape before the last one was counted too (a scrape sees the ones before it).
        #expect(after.count(requests, ["route": "/metrics", "method": "GET", "status": "200"]) >= 1)
    }

    // MARK: loads

    @Test func verifierRejectionsLoadFailuresAndDurationsAreCounted() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        let before = try c.scrape()
        #expect(before.value(DepotMetrics.verifierRejectionsLabel) == 0)  // there from the start, at 0

        let up = try c.send("POST", "/v1/objects?name=verifier_reject.bpf.o", bytes: try Fixtures.bytes("verifier_reject"))
        #expect(up.status == 201)
        let id = try #require(up.json["id"] as? String)
        let refused = try c.send("POST", "/v1/objects/\(id)/loads")
        #expect(refused.status == 422)
        _ = expectProblem(422, contentType: refused.headers["Content-Type"], body: refused.body, type: "verifier-rejected")
        let (_, _) = try Self.uploadAndLoad(c, "globals")
        let after = try c.scrape()

        #expect(after.count(DepotMetrics.verifierRejectionsLabel) - before.count(DepotMetrics.verifierRejectionsLabel) == 1)
        #expect(after.count(DepotMetrics.loadFailuresLabel, ["reason": "verifier"])
            - before.count(DepotMetrics.loadFailuresLabel, ["reason": "verifier"]) == 1)
        #expect(after.count(DepotMetrics.loadFailuresLabel, ["reason": "map"]) == 0)
        let durations = DepotMetrics.loadDurationLabel + "_count"
        #expect(after.count(durations, ["result": "failed"]) - before.count(durations, ["result": "failed"]) == 1)
        #expect(after.count(durations, ["result": "loaded"]) - before.count(durations, ["result": "loaded"]) == 1)
        #expect(after.value(ServiceMetrics.loadsActiveLabel) == 1)
        #expect(after.value(ServiceMetrics.objectsStoredLabel) == 2)
    }

    // MARK: exported variables

    /// `bpfdepot_variable{load, name}` values of one load, by name.
    static func exported(_ scrape: Scrape, load: Int) -> [String: Double] {
        var out: [String: Double] = [:]
        for s in scrape.all(ServiceMetrics.variableLabel) where s.labels["load"] == String(load) {
            out[s.labels["name"] ?? ""] = s.value
        }
        return out
    }

    @Test(.needsArenaMaps, .arenaTally) func exportedArenaVariablesFollowTheLiveValues() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        let (_, loadID) = try Self.uploadAndLoad(c, "arena_anyaddr", body: #"{"export": ["any_counter", "any_sample"]}"#)
        let list = try c.get("/v1/loads/\(loadID)/metrics")
        #expect(list.status == 200)
        #expect(jsonText(list.json["variables"]) == #"["any_counter","any_sample"]"#)
        #expect(list.json["maxSeries"] as? Int == 1000)

        // The initial arena values (FACTS of arena_anyaddr.bpf.c), struct members flattened.
        #expect(Self.exported(try c.scrape(), load: loadID) == [
            "any_counter": 100, "any_sample.seq": 0x5eed, "any_sample.tag": 0xabcd, "any_sample.copies": 1,
        ])

        // After a live write, the gauge is the written value...
        let patched = try c.send("PATCH", "/v1/loads/\(loadID)/variables", json: #"{"any_counter": 555}"#)
        #expect(patched.status == 200, "\(patched.text)")
        #expect(Self.exported(try c.scrape(), load: loadID)["any_counter"] == 555)

        // ...and after a program changes memory, it is what the live read says.
        let run = try c.send("POST", "/v1/loads/\(loadID)/programs/any_alloc/run")
        #expect(run.status == 200, "\(run.text)")
        let live = variableValues(try c.get("/v1/loads/\(loadID)/variables?names=any_counter,any_sample").json)
        let gauges = Self.exported(try c.scrape(), load: loadID)
        #expect(gauges["any_counter"] == 556)
        #expect(gauges["any_counter"] == (live["any_counter"] as? NSNumber)?.doubleValue)
        let sample = live["any_sample"] as? [String: Any] ?? [:]
        #expect(gauges["any_sample.copies"] == 2)
        #expect(gauges["any_sample.copies"] == (sample["copies"] as? NSNumber)?.doubleValue)
        #expect(gauges["any_sample.seq"] == (sample["seq"] as? NSNumber)?.doubleValue)

        // A new list replaces the old one; its series replace the old ones.
        let put = try c.send("PUT", "/v1/loads/\(loadID)/metrics", json: #"{"variables": ["any_small"]}"#)
        #expect(put.status == 200, "\(put.text)")
        #expect(jsonText(put.json["variables"]) == #"["any_small"]"#)
        #expect(Self.exported(try c.scrape(), load: loadID) == ["any_small": 21])

        // An unknown name is 404 and changes nothing; a bad body is 422.
        let unknown = try c.send("PUT", "/v1/loads/\(loadID)/metrics", json: #"{"variables": ["any_small", "nope"]}"#)
        let problem = expectProblem(404, contentType: unknown.headers["Content-Type"], body: unknown.body, type: "unknown-variable")
        #expect(problem["variable"] as? String == "nope")
        let bad = try c.send("PUT", "/v1/loads/\(loadID)/metrics", json: #"{"variables": "any_small"}"#)
        _ = expectProblem(422, contentType: bad.headers["Content-Type"], body: bad.body, type: "invalid-body")
        #expect(jsonText(try c.get("/v1/loads/\(loadID)/metrics").json["variables"]) == #"["any_small"]"#)

        // Unloaded: its series are gone and its list is 409, as for other live routes; an id
        // that was never a load is 404.
        #expect(try c.send("DELETE", "/v1/loads/\(loadID)").status == 204)
        #expect(Self.exported(try c.scrape(), load: loadID) == [:])
        let gone = try c.get("/v1/loads/\(loadID)/metrics")
        _ = expectProblem(409, contentType: gone.headers["Content-Type"], body: gone.body, type: "not-loaded")
        let gonePut = try c.send("PUT", "/v1/loads/\(loadID)/metrics", json: #"{"variables": []}"#)
        _ = expectProblem(409, contentType: gonePut.headers["Content-Type"], body: gonePut.body, type: "not-loaded")
        let never = try c.get("/v1/loads/999999/metrics")
        _ = expectProblem(404, contentType: never.headers["Content-Type"], body: never.body, type: "not-found")
    }

    @Test func structsBoolsEnumsAndArraysFlattenIntoSeries() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        let (_, loadID) = try Self.uploadAndLoad(c, "globals")

        // A variable with no number in it (char[16]) cannot be exported.
        let text = try c.send("PUT", "/v1/loads/\(loadID)/metrics", json: #"{"variables": ["data_point", "data_str"]}"#)
        let problem = expectProblem(422, contentType: text.headers["Content-Type"], body: text.body, type: "bad-value")
        #expect((problem["detail"] as? String)?.contains("data_str") == true)

        let put = try c.send("PUT", "/v1/loads/\(loadID)/metrics",
                             json: #"{"variables": ["data_point", "data_flag", "data_color", "data_bits", "bss_arr", "data_point"]}"#)
        #expect(put.status == 200, "\(put.text)")
        #expect(jsonText(put.json["variables"]) == #"["bss_arr","data_bits","data_color","data_flag","data_point"]"#)
        var expected: [String: Double] = [
            "data_point.x": -5, "data_point.y": 17,
            "data_point.grid[0][0]": 1, "data_point.grid[0][1]": 2, "data_point.grid[0][2]": 3,
            "data_point.grid[1][0]": 4, "data_point.grid[1][1]": 5, "data_point.grid[1][2]": 6,
            "data_flag": 1, "data_color": 7, "data_bits.a": 5, "data_bits.b": 19, "data_bits.c": Double(0xABCDEF),
            "bss_arr[0]": 0, "bss_arr[1]": 0, "bss_arr[2]": 0, "bss_arr[3]": 0,
        ]
        #expect(Self.exported(try c.scrape(), load: loadID) == expected)

        // Live writes to a member and an array element show at the next scrape.
        let patch = try c.send("PATCH", "/v1/loads/\(loadID)/variables",
                               json: #"{"data_point": {"x": 40, "grid": [[1, 2, 3], [4, 5, -9]]}, "data_flag": false}"#)
        #expect(patch.status == 200, "\(patch.text)")
        expected["data_point.x"] = 40
        expected["data_point.grid[1][2]"] = -9
        expected["data_flag"] = 0
        #expect(Self.exported(try c.scrape(), load: loadID) == expected)

        // sys_first: data_point.x += grid[1][2]; bss_arr = {1, 2, 3, 4} (FACTS of globals.bpf.c).
        let run = try c.send("POST", "/v1/loads/\(loadID)/programs/sys_first/run")
        #expect(run.status == 200, "\(run.text)")
        expected["data_point.x"] = 31
        for i in 0..<4 { expected["bss_arr[\(i)]"] = Double(i + 1) }
        #expect(Self.exported(try c.scrape(), load: loadID) == expected)
        let live = variableValues(try c.get("/v1/loads/\(loadID)/variables?names=data_point,bss_arr").json)
        #expect(jsonText((live["data_point"] as? [String: Any])?["x"]) == "31")
        #expect(jsonText(live["bss_arr"]) == "[1,2,3,4]")
    }

    /// The export list is kept with the load in the database: after `kill -9` and a start that
    /// adopts the pinned load, the same series come back with the same values and follow the
    /// program again.
    @Test(.needsArenaMaps, .arenaTally) func exportsSurviveARestartOfTheService() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-exports-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let pinRoot = "/sys/fs/bpf/bpfdepot-exports-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: dir); rmdir(pinRoot) }
        let serve = try ServeProcess(directory: dir, pinRoot: pinRoot)
        try serve.start()
        defer { serve.kill9() }
        let c = serve.client
        func scrape() throws -> Scrape {
            let r = try c.request("GET", "/metrics")
            #expect(r.status == 200)
            return Scrape(r.text)
        }
        let up = try c.request("POST", "/v1/objects?name=adopt_arena.o", body: try Fixtures.bytes("adopt_arena"), contentType: "application/octet-stream")
        let oid = try #require(up.json["id"] as? String, "\(up.text)")
        let created = try c.json("POST", "/v1/objects/\(oid)/loads", #"{"export": ["ad_counter", "ad_hist", "ad_seen"]}"#)
        #expect(created.status == 201, "\(created.text)")
        let load = try #require((created.json["id"] as? NSNumber)?.intValue)
        #expect(try c.request("POST", "/v1/loads/\(load)/programs/ad_tick/run").status == 200)
        // FACTS of adopt_arena.bpf.c, one run: ad_counter 103, ad_hist unchanged (runs was 0).
        let once: [String: Double] = ["ad_counter": 103, "ad_seen": 103, "ad_hist[0]": 1, "ad_hist[1]": 2, "ad_hist[2]": 3, "ad_hist[3]": 4]
        #expect(Self.exported(try scrape(), load: load) == once)

        serve.kill9()
        try serve.start()
        #expect(serve.log.contains("adopted load"))
        #expect(Self.exported(try scrape(), load: load) == once)
        #expect(jsonText(try c.request("GET", "/v1/loads/\(load)/metrics").json["variables"]) == #"["ad_counter","ad_hist","ad_seen"]"#)
        // The second run: ad_counter += 3, each ad_hist[i] += 1 (the runs before it).
        #expect(try c.request("POST", "/v1/loads/\(load)/programs/ad_tick/run").status == 200)
        #expect(Self.exported(try scrape(), load: load)
            == ["ad_counter": 106, "ad_seen": 106, "ad_hist[0]": 2, "ad_hist[1]": 3, "ad_hist[2]": 4, "ad_hist[3]": 5])
        #expect(try c.request("DELETE", "/v1/loads/\(load)").status == 204)
        #expect(Self.exported(try scrape(), load: load) == [:])
        serve.terminate()
    }

    @Test func anExportListPastTheSeriesLimitIsRefusedBeforeLoading() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        // arena_big: __u32 big_table[3072], more than the 1000 series a load may export.
        let up = try c.send("POST", "/v1/objects?name=arena_big.bpf.o", bytes: try Fixtures.bytes("arena_big"))
        let id = try #require(up.json["id"] as? String)
        let refused = try c.send("POST", "/v1/objects/\(id)/loads", json: #"{"export": ["big_table"]}"#)
        let problem = expectProblem(422, contentType: refused.headers["Content-Type"], body: refused.body, type: "bad-value")
        #expect((problem["detail"] as? String)?.contains("1000") == true)
        let unknown = try c.send("POST", "/v1/objects/\(id)/loads", json: #"{"export": ["nope"]}"#)
        _ = expectProblem(422, contentType: unknown.headers["Content-Type"], body: unknown.body, type: "unknown-variable")
        let badMember = try c.send("POST", "/v1/objects/\(id)/loads", json: #"{"export": [""]}"#)
        _ = expectProblem(422, contentType: badMember.headers["Content-Type"], body: badMember.body, type: "invalid-body")
        // Nothing went into the kernel: no load record at all.
        #expect(jsonText(try c.get("/v1/loads").json["loads"]) == "[]")
        #expect(try c.scrape().value(ServiceMetrics.loadsActiveLabel) == 0)
    }

    // MARK: logs

    @Test func theAccessLineCarriesTheRequestIdOfTheResponse() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let logs = CapturedLogs()
        let s = try f.server(logger: logs.logger())
        defer { s.stop() }
        let c = ServiceClient(s)

        // A client's own id is kept; one that is not safe to echo is replaced.
        let mine = try c.get("/healthz", headers: [("X-Request-Id", "trace-42.a_B")])
        #expect(mine.headers["X-Request-Id"] == "trace-42.a_B")
        let unsafe = try c.get("/no/such/thing", headers: [("X-Request-Id", "has space")])
        let generated = try #require(unsafe.headers["X-Request-Id"])
        #expect(generated != "has space" && generated.count == 16)
        let tooLong = try c.get("/healthz", headers: [("X-Request-Id", String(repeating: "a", count: 65))])
        #expect(tooLong.headers["X-Request-Id"]?.count == 16)

        let lines = logs.all
        #expect(lines.count == 3)
        let first = try #require(lines.first { $0.metadata["request_id"] == "trace-42.a_B" })
        #expect(first.level == .info)
        #expect(first.metadata["method"] == "GET")
        #expect(first.metadata["route"] == "/healthz")
        #expect(first.metadata["path"] == "/healthz")
        #expect(first.metadata["status"] == "200")
        #expect(first.metadata["bytes"] == String(mine.body.count))
        #expect(Double(first.metadata["duration_ms"] ?? "") ?? -1 >= 0)
        let second = try #require(lines.first { $0.metadata["request_id"] == generated })
        #expect(second.metadata["route"] == ServiceMetrics.unmatchedRoute)
        #expect(second.metadata["path"] == "/no/such/thing")
        #expect(second.metadata["status"] == "404")
        #expect(lines.contains { $0.metadata["request_id"] == tooLong.headers["X-Request-Id"] })
    }

    @Test func aServerErrorIsLoggedAtErrorLevelWithItsDetailAndRequestId() throws {
        struct Boom: Error {}
        var router = Router()
        router.get("/boom/{n}", .deferred { _ in throw Boom() })
        let logs = CapturedLogs()
        let s = try LoopbackServer(router: router, metrics: ServiceMetrics(), logger: logs.logger(level: .warning))
        defer { s.stop() }
        let r = try Curl.get(s.url("/boom/1"), ["-H", "X-Request-Id: err-1"])
        #expect(r.status == 500)
        #expect(try Curl.get(s.url("/boom/2")).status == 500)
        #expect(try Curl.get(s.url("/nothing")).status == 404)  // info: below the logger's level

        let lines = logs.all.filter { $0.metadata["request_id"] == "err-1" }
        // The handler's own error (hidden from the client), then the access line.
        #expect(lines.count == 2)
        #expect(lines.allSatisfy { $0.level == .error })
        #expect(lines.contains { $0.message.contains("failed: Boom()") })
        let access = try #require(lines.first { $0.metadata["status"] == "500" })
        #expect(access.metadata["route"] == "/boom/{n}")
        #expect(access.metadata["problem"]?.contains("unexpected error (request err-1)") == true)
        #expect(logs.all.count == 4)
    }

    @Test func jsonLogLinesAreOneObjectEach() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        var logger = Logger(label: "bpfdepot.http") { label in LineLogHandler(label: label, format: .json, fileDescriptor: fds[1]) }
        logger[metadataKey: "component"] = "test"
        logger.info("GET /healthz 200", metadata: ["request_id": "abc", "status": .stringConvertible(200), "line": "two\nlines"])
        logger.debug("not written: below info")
        logger.error("second: \"quoted\" \\ \u{01}", metadata: ["n": .stringConvertible(-1.5e3), "word": .stringConvertible("12a")])
        close(fds[1])
        let out = String(decoding: FileHandle(fileDescriptor: fds[0]).readDataToEndOfFile(), as: UTF8.self)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines.last == "")  // two lines, each ended by a newline
        let first = try #require(jsonObject(Array(lines[0].utf8)))
        #expect(first["level"] as? String == "info")
        #expect(first["label"] as? String == "bpfdepot.http")
        #expect(first["message"] as? String == "GET /healthz 200")
        #expect((first["timestamp"] as? String)?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil)
        let metadata = first["metadata"] as? [String: Any] ?? [:]
        #expect(metadata["request_id"] as? String == "abc")
        #expect(metadata["status"] as? Int == 200)
        #expect(metadata["line"] as? String == "two\nlines")
        #expect(metadata["component"] as? String == "test")
        let second = try #require(jsonObject(Array(lines[1].utf8)))
        #expect(second["level"] as? String == "error")
        #expect(second["message"] as? String == "second: \"quoted\" \\ \u{01}")
        #expect((second["metadata"] as? [String: Any])?["n"] as? Double == -1500)  // a number stays a number
        #expect((second["metadata"] as? [String: Any])?["word"] as? String == "12a")

        let text = LineLogHandler.render(format: .text, timestamp: "T", level: .info, label: "l", message: "m",
                                         metadata: ["a": "plain", "b": "two words", "c": .stringConvertible(3)])
        #expect(text == #"T info l: m a=plain b="two words" c=3"#)
    }
}

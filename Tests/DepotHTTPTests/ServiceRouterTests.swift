import BPFObject
import BPFTestSupport
import DepotCore
import DepotHTTP
import DepotStore
import Foundation
import Testing

/// The `/v1` routes over a real `Depot` on a SQLite file, called through `HTTPDispatcher`
/// without a socket (no kernel loads here).
@Suite struct ServiceRouterTests {
    /// Runs one request through the whole dispatcher pipeline.
    static func call(_ d: HTTPDispatcher, _ method: HTTPMethod, _ target: String, headers: HTTPHeaders = [:],
                     body: [UInt8] = [], peer: PeerCertificate? = nil) throws -> CurlResponse {
        var r = try request(method, target, headers: headers, body: body)
        r.peer = peer
        return CurlResponse(d.respond(to: r))
    }

    static func call(_ d: HTTPDispatcher, _ method: HTTPMethod, _ target: String, headers: HTTPHeaders = [:],
                     json: String) throws -> CurlResponse {
        var h = headers
        h.set("Content-Type", "application/json")
        return try call(d, method, target, headers: h, body: Array(json.utf8))
    }

    @Test func uploadCreatesOnceAndFindsTheSameBytesAgain() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let d = f.dispatcher()
        let elf = try Fixtures.bytes("globals")
        let sha = Digest.sha256Hex(elf)

        let first = try Self.call(d, .POST, "/v1/objects?name=globals.bpf.o", body: elf)
        #expect(first.status == 201, "\(first.text)")
        #expect(first.headers["Location"] == "/v1/objects/\(sha)")
        #expect(first.headers["ETag"] == #""1""#)
        #expect(first.headers["Content-Type"] == "application/json")
        #expect(first.headers["X-Request-Id"] != nil)
        let o = first.json
        #expect(o["id"] as? String == sha)
        #expect(o["sha256"] as? String == sha)
        #expect(o["name"] as? String == "globals.bpf.o")
        #expect(o["size"] as? Int == elf.count)
        #expect(o["license"] as? String == "GPL")
        #expect(o["currentRevision"] as? Int == 1)
        let programs = (o["programs"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(Set(programs).isSuperset(of: ["sys_first", "sys_second", "xdp_prog", "tc_prog", "tp_getpid"]))
        let variables = (o["variables"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(Set(variables).isSuperset(of: ["data_int", "ro_u32", "bss_arr", "custom_val", "cfg_limit", "extra_zero"]))

        let again = try Self.call(d, .POST, "/v1/objects?name=other-name", body: elf)
        #expect(again.status == 200, "\(again.text)")
        #expect(again.headers["Location"] == nil)
        #expect(again.json["id"] as? String == sha)
        #expect(again.json["name"] as? String == "globals.bpf.o", "the first upload's name stays")
        #expect(again.json["currentRevision"] as? Int == 1)

        let list = try Self.call(d, .GET, "/v1/objects")
        #expect(list.status == 200)
        let objects = list.json["objects"] as? [[String: Any]] ?? []
        #expect(objects.map { $0["id"] as? String } == [sha])

        let one = try Self.call(d, .GET, "/v1/objects/\(sha)")
        #expect(one.status == 200)
        #expect(one.headers["ETag"] == #""1""#)
        let back = try Self.call(d, .GET, "/v1/objects/\(sha)/elf")
        #expect(back.status == 200)
        #expect(back.headers["Content-Type"] == "application/x-elf")
        #expect(back.body == elf)
    }

    @Test func variablesShowTypedInitialValues() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let d = f.dispatcher()
        let id = try #require(try Self.call(d, .POST, "/v1/objects", body: Fixtures.bytes("globals")).json["id"] as? String)

        let r = try Self.call(d, .GET, "/v1/objects/\(id)/variables")
        #expect(r.status == 200, "\(r.text)")
        #expect(r.json["revision"] as? Int == 1)
        let v = variableValues(r.json)
        #expect(v["data_int"] as? Int == 1234)
        #expect(v["data_str"] as? String == "bpfdepot-data")
        #expect(jsonText(v["data_point"]) == #"{"grid":[[1,2,3],[4,5,6]],"x":-5,"y":17}"#)
        #expect(jsonText(v["data_flag"]) == "true")
        #expect(v["data_color"] as? String == "GL_BLUE")
        #expect(jsonText(v["data_bits"]) == #"{"a":5,"b":19,"c":11259375}"#)
        #expect(v["hidden_global"] as? Int == 11)
        #expect(v["hidden_counter"] as? Int == 9)
        #expect(v["ro_u32"] as? Int == 0xDEAD_BEEF)
        #expect(v["ro_s64"] as? Int == -42)
        #expect(jsonText(v["ro_flag"]) == "true")
        #expect(v["ro_name"] as? String == "ro-name")
        #expect(v["bss_int"] as? Int == 0)
        #expect(jsonText(v["bss_arr"]) == "[0,0,0,0]")
        #expect(v["custom_val"] as? Int == 42)
        #expect(v["cfg_limit"] as? Int == 100)
        #expect(v["extra_zero"] as? Int == 0)

        // Each entry carries where it lives and its C type.
        let entries = r.json["variables"] as? [[String: Any]] ?? []
        let dataInt = try #require(entries.first { $0["name"] as? String == "data_int" })
        #expect(dataInt["section"] as? String == ".data")
        #expect(dataInt["offset"] as? Int == 0)
        #expect(dataInt["size"] as? Int == 4)
        #expect(dataInt["type"] as? String == "int")
        let roS64 = try #require(entries.first { $0["name"] as? String == "ro_s64" })
        #expect(roS64["section"] as? String == ".rodata")
        #expect(roS64["offset"] as? Int == 8)

        // names= filters and keeps the order asked for; one variable by path.
        let some = try Self.call(d, .GET, "/v1/objects/\(id)/variables?names=ro_name,data_int")
        #expect((some.json["variables"] as? [[String: Any]])?.map { $0["name"] as? String } == ["ro_name", "data_int"])
        let single = try Self.call(d, .GET, "/v1/objects/\(id)/variables/data_color")
        #expect(single.status == 200)
        #expect(single.json["value"] as? String == "GL_BLUE")
        #expect(single.json["revision"] as? Int == 1)

        // The image bytes behind them.
        let image = try Self.call(d, .GET, "/v1/objects/\(id)/images/.data")
        #expect(image.status == 200)
        #expect(image.headers["ETag"] == #""1""#)
        #expect(image.body.count == 72)
        #expect(Array(image.body[0..<4]) == [0xd2, 0x04, 0, 0])
    }

    @Test func patchWithIfMatchMakesRevisionsAndStaleIfMatchIs412() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let d = f.dispatcher()
        let id = try #require(try Self.call(d, .POST, "/v1/objects", body: Fixtures.bytes("globals")).json["id"] as? String)

        let p1 = try Self.call(d, .PATCH, "/v1/objects/\(id)/variables", headers: ["If-Match": #""1""#],
                               json: #"{"data_int": 99, "data_color": "GL_RED", "data_point": {"y": -3}, "ro_name": "xy"}"#)
        #expect(p1.status == 200, "\(p1.text)")
        #expect(p1.headers["ETag"] == #""2""#)
        #expect(p1.json["revision"] as? Int == 2)
        #expect((p1.json["object"] as? [String: Any])?["currentRevision"] as? Int == 2)

        let now = variableValues(try Self.call(d, .GET, "/v1/objects/\(id)/variables").json)
        #expect(now["data_int"] as? Int == 99)
        #expect(now["data_color"] as? String == "GL_RED")
        #expect(jsonText(now["data_point"]) == #"{"grid":[[1,2,3],[4,5,6]],"x":-5,"y":-3}"#, "only the named member changes")
        #expect(now["ro_name"] as? String == "xy")
        #expect(now["data_str"] as? String == "bpfdepot-data")

        // The old revision is still there to read.
        let old = variableValues(try Self.call(d, .GET, "/v1/objects/\(id)/variables?revision=1").json)
        #expect(old["data_int"] as? Int == 1234)
        #expect(old["ro_name"] as? String == "ro-name")

        // A client still holding revision 1 is refused, and nothing is written.
        let stale = try Self.call(d, .PATCH, "/v1/objects/\(id)/variables", headers: ["If-Match": #""1""#], json: #"{"data_int": 7}"#)
        #expect(stale.status == 412)
        let p = expectProblem(412, contentType: stale.headers["Content-Type"], body: stale.body, type: "stale-revision")
        #expect(p["expectedRevision"] as? Int == 1)
        #expect(p["currentRevision"] as? Int == 2)
        #expect(variableValues(try Self.call(d, .GET, "/v1/objects/\(id)/variables?names=data_int").json)["data_int"] as? Int == 99)

        // If-Match on a raw image write too; without If-Match a write is unconditional.
        let put = try Self.call(d, .PUT, "/v1/objects/\(id)/images/.data?offset=0", headers: ["If-Match": #""2""#], body: [0x10, 0, 0, 0])
        #expect(put.status == 200, "\(put.text)")
        #expect(put.json["revision"] as? Int == 3)
        #expect(put.headers["ETag"] == #""3""#)
        let stalePut = try Self.call(d, .PUT, "/v1/objects/\(id)/images/.data", headers: ["If-Match": #""2""#], body: [1])
        #expect(stalePut.status == 412)
        let p2 = try Self.call(d, .PATCH, "/v1/objects/\(id)/variables", json: #"{"custom_val": 5}"#)
        #expect(p2.json["revision"] as? Int == 4)

        let revs = try Self.call(d, .GET, "/v1/objects/\(id)/revisions")
        let list = revs.json["revisions"] as? [[String: Any]] ?? []
        #expect(list.map { $0["revision"] as? Int } == [1, 2, 3, 4])
        let change2 = list.count > 1 ? list[1]["change"] as? [String: Any] : nil
        #expect(Set(change2?["sections"] as? [String] ?? []) == [".data", ".rodata"])
        let final = variableValues(try Self.call(d, .GET, "/v1/objects/\(id)/variables").json)
        #expect(final["data_int"] as? Int == 16)
        #expect(final["custom_val"] as? Int == 5)
    }

    @Test func unknownRouteIs404AndWrongMethodIs405WithAllow() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let d = f.dispatcher()

        for target in ["/v1/nothing", "/v1/objects/a/b/c", "/v2/objects", "/v1/loads/1/programs/x"] {
            let r = try Self.call(d, .GET, target)
            #expect(r.status == 404, "\(target)")
            let p = expectProblem(404, contentType: r.headers["Content-Type"], body: r.body, type: "not-found")
            #expect((p["detail"] as? String)?.contains(target) == true)
        }

        let cases: [(HTTPMethod, String, String)] = [
            (.PUT, "/v1/objects", "GET, HEAD, POST"),
            (.PATCH, "/v1/objects/abc", "GET, HEAD, DELETE"),
            (.POST, "/v1/objects/abc/variables", "GET, HEAD, PATCH"),
            (.DELETE, "/v1/loads", "GET, HEAD"),
            (.GET, "/v1/loads/1/programs/p/run", "POST"),
            (HTTPMethod(rawValue: "BREW"), "/v1/objects", "GET, HEAD, POST"),
        ]
        for (method, target, allow) in cases {
            let r = try Self.call(d, method, target)
            #expect(r.status == 405, "\(method) \(target)")
            #expect(r.headers["Allow"] == allow, "\(method) \(target)")
            let p = expectProblem(405, contentType: r.headers["Content-Type"], body: r.body, type: "method-not-allowed")
            #expect(p["allowed"] as? [String] == allow.components(separatedBy: ", "))
        }

        let health = try Self.call(d, .GET, "/healthz")
        #expect(health.status == 200)
        #expect(health.text == #"{"status":"ok"}"#)
        let spec = try Self.call(d, .GET, "/openapi.yaml")
        #expect(spec.text == "x")
        #expect(spec.headers["Content-Type"] == "application/yaml")
    }

    @Test func bearerTokenAndBodyLimitApplyToTheV1Routes() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let elf = try Fixtures.bytes("globals")
        let guarded = f.dispatcher(token: "t0ken")
        let none = try Self.call(guarded, .POST, "/v1/objects", body: elf)
        #expect(none.status == 401)
        #expect(none.headers["WWW-Authenticate"] == "Bearer")
        _ = expectProblem(401, contentType: none.headers["Content-Type"], body: none.body, type: "unauthorized")
        #expect(try Self.call(guarded, .GET, "/v1/objects").status == 401, "reads need the token too")
        #expect(try Self.call(guarded, .GET, "/v1/objects", headers: ["Authorization": "Bearer t0ken"]).status == 200)
        #expect(try Self.call(guarded, .GET, "/healthz").status == 200, "liveness needs none")
        let ok = try Self.call(guarded, .POST, "/v1/objects", headers: ["Authorization": "Bearer t0ken"], body: elf)
        #expect(ok.status == 201)

        let small = f.dispatcher(maxBodyBytes: 100)
        let big = try Self.call(small, .POST, "/v1/objects", body: elf)
        #expect(big.status == 413)
        _ = expectProblem(413, contentType: big.headers["Content-Type"], body: big.body, type: "content-too-large")
    }
}

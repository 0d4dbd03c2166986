import BPFTestSupport
@testable import DepotHTTP
import Foundation
import Synchronization
import Testing

/// A route's fast path (`Router.get(_:_:fastPath:)`) answers its common case before an
/// `HTTPRequest` exists; a client must not be able to tell it from the ordinary route.
@Suite struct FastPathTests {
    /// What a client sees of an answer, apart from the fields MHD adds (Date, Content-Length).
    struct Seen: Equatable, CustomStringConvertible {
        var status: Int
        var fields: [String]
        var body: [UInt8]

        init(status: Int, headers: HTTPHeaders, body: [UInt8]) {
            self.status = status
            self.fields = headers.fields.filter { ["content-type", "etag", "x-request-id", "allow"].contains($0.name.lowercased()) }
                .map { "\($0.name.lowercased()): \($0.value)" }
            self.body = body
        }

        var description: String { "\(status) \(fields) \(String(decoding: body, as: UTF8.self))" }
    }

    /// Every live-variable read, over a socket (where the fast path answers what it can), is
    /// what the full pipeline without a socket (no fast path) answers for the same request:
    /// 200, 304 on a matching `If-None-Match`, and the problems of requests the fast path leaves
    /// to the route.
    @Test func liveVariableReadsAreTheOrdinaryRoutesAnswers() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        let (_, load) = try ObservabilityTests.uploadAndLoad(c, "globals")
        let (_, gone) = try ObservabilityTests.uploadAndLoad(c, "globals")
        #expect(try c.send("DELETE", "/v1/loads/\(gone)").status == 204)
        let tag = try #require(try c.get("/v1/loads/\(load)/variables/data_int").headers["ETag"])

        let cases: [(String, [(String, String)])] = [
            ("/v1/loads/\(load)/variables/data_int", []),
            ("/v1/loads/\(load)/variables/bss_int", []),
            ("/v1/loads/\(load)/variables/data_int", [("If-None-Match", tag)]),
            ("/v1/loads/\(load)/variables/data_int", [("If-None-Match", #"W/"0", "# + tag)]),
            ("/v1/loads/\(load)/variables/data_int", [("If-None-Match", "*")]),
            ("/v1/loads/\(load)/variables/data_int", [("If-None-Match", #"W/"0""#)]),
            ("/v1/loads/\(load)/variables/data_int", [("If-None-Match", "not a tag")]),
            ("/v1/loads/\(load)/variables/data%5Fint", []),
            ("/v1/loads/\(load)/variables/data_int?names=bss_int", []),
            ("/v1/loads/\(load)/variables/no_such_variable", []),
            ("/v1/loads/\(load)/variables/no_such_variable", [("If-None-Match", "*")]),
            ("/v1/loads/abc/variables/data_int", []),
            ("/v1/loads/0/variables/data_int", []),
            ("/v1/loads/999999/variables/data_int", []),
            ("/v1/loads/\(gone)/variables/data_int", []),
        ]
        var statuses: [Int] = []
        for (i, (path, headers)) in cases.enumerated() {
            let id = "fast-\(i)"
            let wire = try c.get(path, headers: headers + [("X-Request-Id", id)])
            let request = try #require(HTTPRequest(method: .GET, target: path, headers: HTTPHeaders(headers + [("X-Request-Id", id)])))
            let direct = f.dispatcher().respond(to: request)
            let expected = Seen(status: direct.status.rawValue, headers: direct.headers, body: direct.body)
            #expect(Seen(status: wire.status, headers: wire.headers, body: wire.body) == expected, "\(path) \(headers)")
            statuses.append(wire.status)
        }
        #expect(statuses == [200, 200, 304, 304, 304, 200, 200, 200, 200, 404, 404, 404, 404, 404, 409])
    }

    /// The live read keeps its rendered answer while the variable's bytes stay the same: a value
    /// written (live PATCH) is what the next read shows at once, over the 200 path and over the
    /// `If-None-Match` 304 path, and every answer carries its own request id.
    @Test func aWrittenValueIsReadBackAtOnceWithItsOwnRequestID() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        let (_, load) = try ObservabilityTests.uploadAndLoad(c, "globals")
        let path = "/v1/loads/\(load)/variables/data_int"
        var ids: [String] = []
        func read(_ headers: [(String, String)] = []) throws -> CurlResponse {
            let r = try c.get(path, headers: headers)
            ids.append(r.headers["X-Request-Id"] ?? "")
            return r
        }

        let first = try read()
        #expect(first.status == 200)
        #expect(first.json["value"] as? Int == 1234)
        var tag = try #require(first.headers["ETag"])
        #expect(try read().body == first.body)  // the kept answer, unchanged value
        #expect(try read([("If-None-Match", tag)]).status == 304)

        for value in [1235, -7, 0, 1234, 99] {
            #expect(try c.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"data_int": \#(value)}"#).status == 200)
            // The client's tag is the old value's: 200 with the new value and a new tag.
            let changed = try read([("If-None-Match", tag)])
            #expect(changed.status == 200, "after writing \(value)")
            #expect(changed.json["value"] as? Int == value)
            let newTag = try #require(changed.headers["ETag"])
            #expect(newTag != tag)
            tag = newTag
            let plain = try read()
            #expect(plain.status == 200)
            #expect(plain.json["value"] as? Int == value)
            #expect(plain.headers["ETag"] == tag)
            let same = try read([("If-None-Match", tag)])
            #expect(same.status == 304)
            #expect(same.headers["ETag"] == tag)
            #expect(same.body.isEmpty)
        }
        #expect(!ids.contains(""))
        #expect(Set(ids).count == ids.count, "request ids repeat: \(ids)")
    }

    /// The server keeps one MHD response per thread of each prepared answer and queues it again
    /// with only the request id replaced. Under concurrent readers (2 MHD threads, 8 clients,
    /// each request on a connection of its own) while a writer keeps changing the value, every
    /// answer carries the id its request sent (same-length ids are written in place, others
    /// replace the field) or a server id no other answer has, and each reader sees the value
    /// only move forward.
    @Test func concurrentReadersEachGetTheirOwnRequestIDAndAFreshValue() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        let (_, load) = try ObservabilityTests.uploadAndLoad(c, "globals")
        let port = try #require(s.server.port)
        let path = "/v1/loads/\(load)/variables/data_int"
        #expect(try c.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"data_int": 0}"#).status == 200)

        let readers = 8, perReader = 120
        let done = Atomic<Bool>(false)
        let failures = Mutex<[String]>([])
        let serverIDs = Mutex<[String]>([])
        let writer = Thread {
            var v = 1
            while !done.load(ordering: .relaxed) {
                if let r = try? RawHTTP(port: port).json("PATCH", "/v1/loads/\(load)/variables", #"{"data_int": \#(v)}"#), r.status == 200 { v += 1 }
            }
        }
        writer.start()
        DispatchQueue.concurrentPerform(iterations: readers) { reader in
            var last = -1
            for i in 0..<perReader {
                // Three kinds of request: a 16-character id, a longer one, none (the server's).
                let sent: String? = switch i % 3 {
                case 0: String(format: "r%02d-%011d", reader, i)
                case 1: "reader-\(reader)-request-\(i)"
                default: nil
                }
                do {
                    let r = try RawHTTP(port: port).request("GET", path, headers: sent.map { [("X-Request-Id", $0)] } ?? [])
                    let got = r.headers["x-request-id"] ?? ""
                    guard r.status == 200, let value = r.json["value"] as? Int else {
                        failures.withLock { $0.append("\(sent ?? "-"): \(r.status) \(r.text)") }
                        continue
                    }
                    if let sent, got != sent { failures.withLock { $0.append("sent \(sent), got \(got)") } }
                    if sent == nil { serverIDs.withLock { $0.append(got) } }
                    if value < last { failures.withLock { $0.append("reader \(reader): \(value) after \(last)") } }
                    last = value
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        done.store(true, ordering: .relaxed)
        while writer.isExecuting { usleep(1000) }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0.prefix(10) })")
        let ids = serverIDs.withLock { $0 }
        #expect(ids.count == readers * (perReader / 3))
        #expect(Set(ids).count == ids.count, "server request ids repeat")
        #expect(ids.allSatisfy { $0.count == 16 })
    }

    /// `GET /v1/loads/{id}/variables` keeps its rendered answer per load and name list with
    /// the hash of the bytes it came from (BatchResponses): an unchanged read is the same body
    /// and tag, a conditional one is 304, and a value written is what the next read shows at
    /// once, for all variables and for a `names=` list alike, and for the same request the full
    /// pipeline without the kept answers gives (a watch stream's first event).
    @Test func keptBatchReadsAreNeverStale() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        let (_, load) = try ObservabilityTests.uploadAndLoad(c, "globals")
        func value(_ r: CurlResponse, _ name: String) -> Int? {
            (r.json["variables"] as? [[String: Any]])?.first { $0["name"] as? String == name }?["value"] as? Int
        }
        for (p, path) in ["/v1/loads/\(load)/variables", "/v1/loads/\(load)/variables?names=bss_int,data_int"].enumerated() {
            let first = try c.get(path)
            #expect(first.status == 200)
            var tag = try #require(first.headers["ETag"])
            let again = try c.get(path)
            #expect(again.body == first.body && again.headers["ETag"] == tag, "\(path)")
            #expect(try c.get(path, headers: [("If-None-Match", tag)]).status == 304)
            for v in [11, -8, 123_456, 11].map({ $0 + 3 * p }) {  // each differs from the one before
                #expect(try c.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"data_int": \#(v)}"#).status == 200)
                let changed = try c.get(path, headers: [("If-None-Match", tag)])
                #expect(changed.status == 200, "\(path) after writing \(v)")
                #expect(value(changed, "data_int") == v)
                let newTag = try #require(changed.headers["ETag"])
                #expect(newTag != tag)
                tag = newTag
                #expect(try c.get(path, headers: [("If-None-Match", tag)]).status == 304)
                let plain = try c.get(path)
                #expect(value(plain, "data_int") == v && plain.headers["ETag"] == tag)
                // What a reader that keeps nothing sees: the stream's first event.
                let stream = try EventStreamClient(port: try #require(s.server.port), path: path + (path.contains("?") ? "&" : "?") + "watch=1")
                let event = try #require(stream.next(timeout: 5))
                #expect(event.id == tag)
                #expect(event.data == String(decoding: plain.body, as: UTF8.self))
            }
        }
        let names = try c.get("/v1/loads/\(load)/variables?names=data_int")
        #expect((names.json["variables"] as? [Any])?.count == 1)
    }

    /// Which requests a fast path sees: plain GETs of its route (parameters percent-decoded,
    /// whatever the query); HEAD, other methods and requests with a body take the route, as do
    /// the ones it declines.
    @Test func onlyPlainGETsOfTheRouteReachTheFastPath() throws {
        final class Calls: Sendable { let seen = Mutex<[[String]]>([]) }
        let calls = Calls()
        var router = Router()
        router.get("/things/{n}", .immediate { req in
            let n = try req.pathParameter("n")
            return .text("route \(n)")
        }, fastPath: { request in
            calls.seen.withLock { $0.append(request.parameters) }
            guard request.parameters == ["fast"] else { return nil }
            return PreparedResponse(.text("fast " + (request.header("X-Hint") ?? "-")))
        })
        router.post("/things/{n}", .immediate { _ in .text("posted") })
        // A literal beside the parameter wins, as in the ordinary lookup (even spelled with an escape).
        router.get("/things/special", .immediate { _ in .text("special") })
        let s = try LoopbackServer(router: router, metrics: ServiceMetrics())
        defer { s.stop() }

        #expect(try Curl.get(s.url("/things/fast"), ["-H", "X-Hint: h"]).text == "fast h")
        #expect(try Curl.get(s.url("/things/f%61st")).text == "fast -")
        // A query asks for more than the plain read (`?watch=1`): the route answers it.
        #expect(try Curl.get(s.url("/things/fast?q=1")).text == "route fast")
        #expect(try Curl.get(s.url("/things/slow")).text == "route slow")  // declined
        #expect(try Curl.fetch("HEAD", s.url("/things/fast")).status == 200)
        #expect(try Curl.fetch("POST", s.url("/things/fast"), ["--data-binary", "x"]).text == "posted")
        #expect(try Curl.get(s.url("/things/fast"), ["--data-binary", "x", "-X", "GET"]).text == "route fast")
        #expect(try Curl.get(s.url("/things")).status == 404)
        #expect(try Curl.get(s.url("/things/special")).text == "special")
        #expect(try Curl.get(s.url("/things/speci%61l")).text == "special")
        #expect(try Curl.get(s.url("/things/fast/more")).status == 404)
        #expect(try Curl.get(s.url("/things/%zz")).status == 400)
        #expect(calls.seen.withLock { $0 } == [["fast"], ["fast"], ["slow"]])

        // A later GET registration without a fast path replaces it.
        router.get("/things/{n}", .immediate { _ in .text("plain") })
        let plain = try LoopbackServer(router: router)
        defer { plain.stop() }
        #expect(try Curl.get(plain.url("/things/fast")).text == "plain")
        #expect(calls.seen.withLock { $0.count } == 3)
    }
}

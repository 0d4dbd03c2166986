import BPFObject
import DepotHTTP
import Foundation
import Synchronization
import Testing

/// End to end over a real loopback socket, with curl as the client.
@Suite struct LoopbackServerTests {
    static func router() -> Router {
        var r = Router()
        r.get("/ping", .immediate { _ in .json(.object([("ok", .bool(true))])) })
        r.get("/slow/{ms}", .deferred { req in
            let ms = Int(try req.pathParameter("ms")) ?? 0
            usleep(UInt32(ms * 1000))
            return .json(.object([("slept_ms", .int(Int64(ms)))]))
        })
        r.post("/echo", .deferred { req in
            .bytes(req.body, headers: ["X-Body-Size": String(req.body.count)])
        })
        r.get("/state", .immediate { req in
            .conditional(req, etag: EntityTag("v1")) { .json(.object([("value", .int(1))])) }
        })
        r.get("/query", .immediate { req in
            .json(.object(req.query.map { ($0.name, .string($0.value)) }
                + [("remote", .string(req.remoteAddress ?? "")), ("id", .string(req.id))]))
        })
        return r
    }

    @Test func immediateGet() throws {
        let s = try LoopbackServer(router: Self.router())
        defer { s.stop() }
        let r = try Curl.get(s.url("/ping"))
        #expect(r.status == 200)
        #expect(r.text == #"{"ok":true}"#)
        #expect(r.headers["Content-Type"] == "application/json")
        let id = try #require(r.headers["X-Request-Id"])
        #expect(id.count == 16 && id.allSatisfy(\.isHexDigit))
        let again = try Curl.get(s.url("/ping"))
        #expect(again.headers["X-Request-Id"] != id)

        let head = try Curl.fetch("HEAD", s.url("/ping"))
        #expect(head.status == 200)
        #expect(head.headers["Content-Length"] == "11")
    }

    @Test func queryRemoteAddressAndRawPath() throws {
        let s = try LoopbackServer(router: Self.router())
        defer { s.stop() }
        let r = try Curl.get(s.url("/query?name=a+b%20c%26&x"))
        let o = try #require(jsonObject(r.body))
        #expect(o["name"] as? String == "a b c&")
        #expect(o["x"] as? String == "")
        #expect((o["remote"] as? String)?.hasPrefix("127.0.0.1:") == true)
        #expect(o["id"] as? String == r.headers["x-request-id"])
    }

    @Test func deferredEchoOfSeveralMiB() throws {
        let s = try LoopbackServer(router: Self.router())
        defer { s.stop() }
        let (file, bytes) = try patternFile(bytes: 6 << 20 | 12345)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let r = try Curl.fetch("POST", s.url("/echo"), ["--data-binary", "@\(file)", "-H", "Content-Type: application/octet-stream"])
        #expect(r.status == 200)
        #expect(r.headers["X-Body-Size"] == String(bytes.count))
        #expect(r.body.count == bytes.count)
        #expect(r.body == bytes)
    }

    @Test func chunkedUploadIsReassembled() throws {
        let s = try LoopbackServer(router: Self.router())
        defer { s.stop() }
        let (file, bytes) = try patternFile(bytes: 300_001)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let r = try Curl.fetch("POST", s.url("/echo"), ["--data-binary", "@\(file)", "-H", "Transfer-Encoding: chunked"])
        #expect(r.status == 200)
        #expect(r.body == bytes)
    }

    @Test func bodyOverLimitIs413AndServerCarriesOn() throws {
        let s = try LoopbackServer(router: Self.router()) { $0.maxBodyBytes = 1 << 20 }
        defer { s.stop() }
        let (file, _) = try patternFile(bytes: 3 << 20)
        defer { try? FileManager.default.removeItem(atPath: file) }

        // Declared length: refused from the headers, before any body is sent.
        let declared = try Curl.fetch("POST", s.url("/echo"), ["--data-binary", "@\(file)"])
        #expect(declared.status == 413)
        let p = expectProblem(413, contentType: declared.headers["Content-Type"], body: declared.body, type: "content-too-large")
        #expect(p["detail"] as? String == "expected a request body of at most 1048576 bytes, found a content-length of 3145728")
        #expect(p["max_body_bytes"] as? Int == 1 << 20)

        // Chunked: the limit is enforced while the chunks arrive.
        let chunked = try Curl.fetch("POST", s.url("/echo"), ["--data-binary", "@\(file)", "-H", "Transfer-Encoding: chunked"])
        #expect(chunked.status == 413)
        _ = expectProblem(413, contentType: chunked.headers["Content-Type"], body: chunked.body, type: "content-too-large")

        #expect(try Curl.get(s.url("/ping")).status == 200)
        let small = try Curl.fetch("POST", s.url("/echo"), ["--data-binary", "hello"])
        #expect(small.status == 200)
        #expect(small.text == "hello")
    }

    @Test func bearerTokenGuardsMutations() throws {
        let s = try LoopbackServer(router: Self.router()) { $0.bearerToken = "s3cret-token" }
        defer { s.stop() }
        let none = try Curl.fetch("POST", s.url("/echo"), ["--data-binary", "x"])
        #expect(none.status == 401)
        #expect(none.headers["WWW-Authenticate"] == "Bearer")
        _ = expectProblem(401, contentType: none.headers["Content-Type"], body: none.body, type: "unauthorized")

        let wrong = try Curl.fetch("POST", s.url("/echo"), ["--data-binary", "x", "-H", "Authorization: Bearer s3cret-tokeN"])
        #expect(wrong.status == 401)
        #expect(wrong.headers["WWW-Authenticate"] == "Bearer")

        let right = try Curl.fetch("POST", s.url("/echo"), ["--data-binary", "x", "-H", "Authorization: Bearer s3cret-token"])
        #expect(right.status == 200)
        #expect(right.text == "x")

        #expect(try Curl.get(s.url("/ping")).status == 401, "reads need the token too")
        #expect(try Curl.get(s.url("/ping"), ["-H", "Authorization: Bearer s3cret-token"]).status == 200)
    }

    @Test func keepAliveAcrossImmediateAndDeferred() throws {
        let s = try LoopbackServer(router: Self.router())
        defer { s.stop() }
        // One curl, four transfers: only the first opens a connection.
        let (code, out, err) = try Curl.run([
            "-s", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n", s.url("/ping"),
            "-o", "/dev/null", s.url("/slow/1"),
            "-o", "/dev/null", s.url("/state"),
            "--next", "-s", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n", "--data-binary", "abc", s.url("/echo"),
        ])
        #expect(code == 0, "\(err)")
        #expect(out == "200 1\n200 0\n200 0\n200 0\n")
    }

    @Test func errorsWithoutBodyKeepTheConnection() throws {
        let s = try LoopbackServer(router: Self.router())
        defer { s.stop() }
        let (_, out, _) = try Curl.run([
            "-s", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n",
            s.url("/nope"), "-o", "/dev/null", s.url("/ping"),
        ])
        #expect(out == "404 1\n200 0\n")
    }

    @Test func notFoundAndMethodNotAllowed() throws {
        let s = try LoopbackServer(router: Self.router())
        defer { s.stop() }
        let missing = try Curl.get(s.url("/objects/x"))
        #expect(missing.status == 404)
        _ = expectProblem(404, contentType: missing.headers["Content-Type"], body: missing.body, type: "not-found")
        #expect(missing.headers["X-Request-Id"] != nil)

        let wrong = try Curl.fetch("DELETE", s.url("/ping"))
        #expect(wrong.status == 405)
        #expect(wrong.headers["Allow"] == "GET, HEAD")
        _ = expectProblem(405, contentType: wrong.headers["Content-Type"], body: wrong.body, type: "method-not-allowed")

        let badEscape = try Curl.get(s.url("/slow/%zz"))
        #expect(badEscape.status == 400)
    }

    @Test func etagAndNotModified() throws {
        let s = try LoopbackServer(router: Self.router())
        defer { s.stop() }
        let first = try Curl.get(s.url("/state"))
        #expect(first.status == 200)
        let etag = try #require(first.headers["ETag"])
        #expect(etag == #""v1""#)

        let poll = try Curl.get(s.url("/state"), ["-H", "If-None-Match: \(etag)"])
        #expect(poll.status == 304)
        #expect(poll.body.isEmpty)
        #expect(poll.headers["ETag"] == etag)

        let changed = try Curl.get(s.url("/state"), ["-H", #"If-None-Match: "v0""#])
        #expect(changed.status == 200)
        #expect(changed.text == #"{"value":1}"#)
    }

    @Test func concurrentRequestsAreAllAnswered() throws {
        let s = try LoopbackServer(router: Self.router())
        defer { s.stop() }
        // 8 threads, each one curl with 25 transfers over its own connection: 200 requests, half
        // through the worker pool.
        let results = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let path = i % 2 == 0 ? "/ping" : "/slow/2"
            var args = ["-s", "-w", "%{http_code} %{size_download}\n", "-o", "/dev/null", s.url(path)]
            for _ in 1..<25 { args += ["-o", "/dev/null", s.url(path)] }
            let out = (try? Curl.run(args))?.out ?? ""
            results.withLock { $0 += out.split(separator: "\n").map(String.init) }
        }
        let lines = results.withLock { $0 }
        #expect(lines.count == 200)
        #expect(lines.filter { $0 == "200 11" }.count == 100)  // {"ok":true}
        #expect(lines.filter { $0 == "200 14" }.count == 100)  // {"slept_ms":2}
    }

    @Test func stopFinishesInFlightDeferredWork() throws {
        let s = try LoopbackServer(router: Self.router())
        let url = s.url("/slow/400")
        let answer = Mutex<CurlResponse?>(nil)
        let client = Thread { answer.withLock { $0 = try? Curl.get(url) } }
        client.start()
        usleep(150_000)  // the request is now suspended in a worker
        s.stop()
        while !client.isFinished { usleep(5_000) }
        let r = answer.withLock { $0 }
        #expect(r?.status == 200)
        #expect(r?.text == #"{"slept_ms":400}"#)
        #expect(s.server.port == nil)
        let (code, _, _) = try Curl.run(["-s", "-o", "/dev/null", url])
        #expect(code == 7, "curl: connection refused after stop")
    }

    @Test func startTwiceAndStopTwice() throws {
        let s = try LoopbackServer(router: Self.router())
        #expect(throws: HTTPServerError.alreadyStarted) { try s.server.start() }
        s.stop()
        s.stop()
    }

    @Test func portInUseIsATypedError() throws {
        let s = try LoopbackServer(router: Self.router())
        defer { s.stop() }
        let port = try #require(s.server.port)
        let second = HTTPServer(configuration: .init(listen: .init(host: "127.0.0.1", port: port)), router: Self.router())
        do throws(HTTPServerError) {
            try second.start()
            Issue.record("expected the second bind to fail")
        } catch {
            guard case .daemonDidNotStart(_, let code) = error else {
                Issue.record("expected daemonDidNotStart, found \(error)")
                return
            }
            #expect(code == EADDRINUSE)
        }
    }
}

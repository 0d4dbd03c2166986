import BPFObject
@testable import DepotHTTP
import Testing

/// The router and dispatcher called directly, no socket.
@Suite struct RouterTests {
    static func echoParameters(_ r: HTTPRequest) -> HTTPResponse {
        .json(.object(r.pathParameters.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
    }

    var router: Router {
        var r = Router()
        r.get("/objects", .immediate { _ in .json(.array([])) })
        r.post("/objects", .deferred { req in .json(.object([("size", .int(Int64(req.body.count)))]), status: .created) })
        r.get("/objects/{name}", .immediate(Self.echoParameters))
        r.get("/objects/search", .immediate { _ in .text("search") })
        r.delete("/objects/{name}", .deferred(Self.echoParameters))
        r.get("/objects/{name}/variables/{variable}", .immediate(Self.echoParameters))
        r.put("/objects/{name}/variables/{variable}", .deferred(Self.echoParameters))
        r.get("/fail", .immediate { _ in throw HTTPProblem(status: .conflict, type: "busy", detail: "expected an idle object, found one loading") })
        r.get("/crash", .immediate { _ in struct Opaque: Error {}; throw Opaque() })
        return r
    }

    @Test func pathParametersAreDecodedPerSegment() throws {
        let r = router.respond(to: try request(.GET, "/objects/my%2Fprog/variables/cfg%20x"))
        #expect(r.status == .ok)
        let object = try #require(jsonObject(r.body))
        #expect(object["name"] as? String == "my/prog")
        #expect(object["variable"] as? String == "cfg x")
    }

    @Test func literalSegmentWinsOverParameter() throws {
        let r = router.respond(to: try request(.GET, "/objects/search"))
        #expect(r.body == Array("search".utf8))
        let p = router.respond(to: try request(.GET, "/objects/other"))
        #expect(jsonObject(p.body)?["name"] as? String == "other")
    }

    @Test func deferredHandlersRunSynchronouslyInTests() throws {
        let r = router.respond(to: try request(.POST, "/objects", body: [1, 2, 3]))
        #expect(r.status == .created)
        #expect(jsonObject(r.body)?["size"] as? Int == 3)
    }

    @Test func unknownPathIs404Problem() throws {
        let r = router.respond(to: try request(.GET, "/nope/x"))
        #expect(r.status == .notFound)
        let p = expectProblem(404, contentType: r.headers["content-type"], body: r.body, type: "not-found")
        #expect((p["detail"] as? String)?.contains("/nope/x") == true)
        // Too deep and too shallow paths are misses too, not partial matches.
        #expect(router.respond(to: try request(.GET, "/objects/a/variables")).status == .notFound)
        #expect(router.respond(to: try request(.GET, "/objects/a/variables/b/c")).status == .notFound)
        #expect(router.respond(to: try request(.GET, "/objects/")).status == .notFound)  // empty name
    }

    @Test func wrongMethodIs405WithAllow() throws {
        let r = router.respond(to: try request(.PATCH, "/objects/x"))
        #expect(r.status == .methodNotAllowed)
        #expect(r.headers["Allow"] == "GET, HEAD, DELETE")
        let p = expectProblem(405, contentType: r.headers["Content-Type"], body: r.body, type: "method-not-allowed")
        #expect(p["allowed"] as? [String] == ["GET", "HEAD", "DELETE"])
        #expect(p["detail"] as? String == "expected one of GET, HEAD, DELETE for \"/objects/x\", found PATCH")

        let collection = router.respond(to: try request(.DELETE, "/objects"))
        #expect(collection.headers["allow"] == "GET, HEAD, POST")
    }

    @Test func headFallsBackToGet() throws {
        #expect(router.respond(to: try request(.HEAD, "/objects")).status == .ok)
    }

    @Test func thrownProblemsAndOpaqueErrors() throws {
        let r = router.respond(to: try request(.GET, "/fail"))
        #expect(r.status == .conflict)
        _ = expectProblem(409, contentType: r.headers["Content-Type"], body: r.body, type: "busy")

        let crash = router.respond(to: try request(.GET, "/crash"))
        #expect(crash.status == .internalServerError)
        let p = expectProblem(500, contentType: crash.headers["Content-Type"], body: crash.body, type: "internal")
        #expect((p["detail"] as? String)?.contains("Opaque") == false)
    }

    @Test func problemMembersKeepOrderAndExtensions() {
        let p = HTTPProblem(
            status: .unprocessableContent, type: "verifier-rejected", detail: "expected a program the verifier accepts, found an error at insn 12",
            extensions: [("log", .string("R1 invalid mem access")), ("status", .int(1))])
        #expect(p.json.text == #"{"type":"urn:bpfdepot:problem:verifier-rejected","title":"Unprocessable Content","status":422,"detail":"expected a program the verifier accepts, found an error at insn 12","log":"R1 invalid mem access"}"#)
    }

    @Test func matchReportsTheHandlerKind() throws {
        guard case .found(let h, _) = router.match(.POST, segments: ["objects"]) else {
            Issue.record("expected a match")
            return
        }
        #expect(h.isDeferred)
        guard case .found(let g, _) = router.match(.GET, segments: ["objects"]) else {
            Issue.record("expected a match")
            return
        }
        #expect(!g.isDeferred)
    }

    @Test func laterRegistrationReplacesEarlier() throws {
        var r = Router()
        r.get("/a", .immediate { _ in .text("one") })
        let copy = r
        r.get("/a", .immediate { _ in .text("two") })
        #expect(r.respond(to: try request(.GET, "/a")).body == Array("two".utf8))
        #expect(copy.respond(to: try request(.GET, "/a")).body == Array("one".utf8))  // value semantics
    }
}

@Suite struct DispatcherTests {
    let dispatcher: HTTPDispatcher = {
        var r = Router()
        r.get("/objects", .immediate { _ in .json(.array([])) })
        r.post("/objects", .deferred { _ in HTTPResponse(status: .created) })
        return HTTPDispatcher(router: r, bearerToken: BearerToken("s3cret"), maxBodyBytes: 16)
    }()

    @Test func readsNeedTheTokenToo() throws {
        #expect(dispatcher.respond(to: try request(.GET, "/objects")).status == .unauthorized)
        let r = dispatcher.respond(to: try request(.GET, "/objects", headers: ["Authorization": "Bearer s3cret"]))
        #expect(r.status == .ok)
        #expect(r.headers["X-Request-Id"] == "local")
    }

    @Test(arguments: [
        (nil as String?, "expected an authorization header with a bearer token, found none"),
        ("Basic czNjcmV0", "expected the bearer authorization scheme, found \"Basic\""),
        ("Bearer s3cre", "expected a configured bearer token, found one that is not"),
        ("Bearer s3cret2", "expected a configured bearer token, found one that is not"),
        ("Bearer ", "expected a token after the bearer scheme, found none"),
        ("Bearerish s3cret", "expected the bearer authorization scheme, found \"Bearerish\""),
    ])
    func mutationsNeedTheToken(authorization: String?, detail: String) throws {
        var headers: HTTPHeaders = [:]
        if let authorization { headers.add("Authorization", authorization) }
        let r = dispatcher.respond(to: try request(.POST, "/objects", headers: headers))
        #expect(r.status == .unauthorized)
        #expect(r.headers["WWW-Authenticate"] == "Bearer")
        let p = expectProblem(401, contentType: r.headers["Content-Type"], body: r.body, type: "unauthorized")
        #expect(p["detail"] as? String == detail)
    }

    @Test func rightTokenPasses() throws {
        for value in ["Bearer s3cret", "bearer   s3cret", "BEARER s3cret "] {
            let r = dispatcher.respond(to: try request(.POST, "/objects", headers: ["authorization": value]))
            #expect(r.status == .created, "\(value)")
        }
    }

    @Test func bodyLimit() throws {
        let auth: HTTPHeaders = ["Authorization": "Bearer s3cret"]
        let ok = dispatcher.respond(to: try request(.POST, "/objects", headers: auth, body: Array(repeating: 0, count: 16)))
        #expect(ok.status == .created)
        let big = dispatcher.respond(to: try request(.POST, "/objects", headers: auth, body: Array(repeating: 0, count: 17)))
        #expect(big.status == .contentTooLarge)
        let p = expectProblem(413, contentType: big.headers["Content-Type"], body: big.body, type: "content-too-large")
        #expect(p["max_body_bytes"] as? Int == 16)
        #expect(p["detail"] as? String == "expected a request body of at most 16 bytes, found 17 bytes")
    }

    @Test func tokenComparisonIsExact() throws {
        let token = try #require(BearerToken("abc"))
        #expect(token.matches(Array("abc".utf8)))
        #expect(!token.matches(Array("abd".utf8)))
        #expect(!token.matches(Array("ab".utf8)))
        #expect(!token.matches(Array("abcd".utf8)))
        #expect(!token.matches([]))
        #expect(BearerToken("") == nil)
    }
}

@Suite struct RequestParsingTests {
    @Test func queryIsPercentDecoded() throws {
        let r = try request(.GET, "/x?name=a+b%20c%26&flag&name=second&empty=&bad=%zz")
        #expect(r.query["name"] == "a b c&")
        #expect(r.query.values(for: "name") == ["a b c&", "second"])
        #expect(r.query["flag"] == "")
        #expect(r.query["empty"] == "")
        #expect(r.query["bad"] == nil)
        #expect(r.path == "/x")
    }

    @Test func malformedPathEscapeIsRejected() {
        #expect(HTTPRequest(method: .GET, target: "/objects/%g1") == nil)
        #expect(HTTPRequest(method: .GET, target: "/objects/%e2%82") == nil)  // truncated utf-8
    }

    @Test func headersAreCaseInsensitive() {
        var h: HTTPHeaders = ["Content-Type": "a", "X-Multi": "1"]
        h.add("x-multi", "2")
        #expect(h["content-type"] == "a")
        #expect(h["CONTENT-TYPE"] == "a")
        #expect(h.values(for: "X-MULTI") == ["1", "2"])
        h.set("X-Multi", "3")
        #expect(h.values(for: "x-multi") == ["3"])
        #expect(!h.contains("Content-Typ"))
    }
}

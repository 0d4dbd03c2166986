@testable import DepotHTTP
import Testing

@Suite struct ConditionalRequestTests {
    @Test func parsesEntityTagLists() {
        #expect(EntityTagCondition(headerValue: "*") == .any)
        #expect(EntityTagCondition(headerValue: #""a""#) == .tags([EntityTag("a")]))
        #expect(EntityTagCondition(headerValue: #" W/"a" , "b",W/"" "#)
            == .tags([EntityTag("a", weak: true), EntityTag("b"), EntityTag("", weak: true)]))
        #expect(EntityTagCondition(headerValue: "a") == nil)
        #expect(EntityTagCondition(headerValue: #""a"b"#) == nil)
        #expect(EntityTagCondition(headerValue: #""unterminated"#) == nil)
        #expect(EntityTagCondition(headerValue: "") == nil)
    }

    /// The live routes' tags: the hex text `String(_:radix: 16)` gives, so tags are what they were.
    @Test func hexTagsAreTheHexTextOfTheirValue() {
        var values: [UInt64] = [0, 1, 9, 0xa, 0xf, 0x10, 0xff, 0x100, 0xdead_beef, 1 << 63, .max]
        var x: UInt64 = 0x9e37_79b9_7f4a_7c15
        for _ in 0..<64 {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            values.append(x >> (x & 63))
        }
        for v in values {
            #expect(EntityTag(hex: v, weak: true) == EntityTag(String(v, radix: 16), weak: true), "\(v)")
            #expect(EntityTag(hex: v).headerValue == "\"" + String(v, radix: 16) + "\"")
        }
        #expect(EntityTag(hex: 0xabc, weak: true).headerValue == #"W/"abc""#)
    }

    @Test func ifNoneMatchComparesWeakly() throws {
        let current = EntityTag("v7")
        let matching = try request(.GET, "/x", headers: ["If-None-Match": #"W/"v6", W/"v7""#])
        #expect(matching.isNotModified(current: current))
        let star = try request(.GET, "/x", headers: ["If-None-Match": "*"])
        #expect(star.isNotModified(current: current))
        let other = try request(.GET, "/x", headers: ["If-None-Match": #""v6""#])
        #expect(!other.isNotModified(current: current))
        // Only safe reads get 304.
        let post = try request(.POST, "/x", headers: ["If-None-Match": #""v7""#])
        #expect(!post.isNotModified(current: current))
    }

    @Test func conditionalResponse() throws {
        let tag = EntityTag("abc")
        let fresh = try request(.GET, "/x", headers: ["if-none-match": #""abc""#])
        var ran = false
        let r = HTTPResponse.conditional(fresh, etag: tag) { ran = true; return .text("body") }
        #expect(r.status == .notModified)
        #expect(r.body.isEmpty)
        #expect(r.headers["ETag"] == #""abc""#)
        #expect(!ran, "the body is not built for a 304")

        let stale = HTTPResponse.conditional(try request(.GET, "/x"), etag: tag) { .text("body") }
        #expect(stale.status == .ok)
        #expect(stale.headers["etag"] == #""abc""#)
    }

    @Test func ifMatchComparesStrongly() throws {
        let current = EntityTag("r3")
        try request(.PUT, "/x").checkIfMatch(current: current)  // absent: no precondition
        try request(.PUT, "/x", headers: ["If-Match": #""r2", "r3""#]).checkIfMatch(current: current)
        try request(.PUT, "/x", headers: ["If-Match": "*"]).checkIfMatch(current: current)

        #expect(throws: HTTPProblem.self) {
            try request(.PUT, "/x", headers: ["If-Match": #"W/"r3""#]).checkIfMatch(current: current)
        }
        #expect(throws: HTTPProblem.self) {
            try request(.PUT, "/x", headers: ["If-Match": "*"]).checkIfMatch(current: nil)
        }
        do {
            try request(.PUT, "/x", headers: ["If-Match": #""r2""#]).checkIfMatch(current: current)
            Issue.record("expected 412")
        } catch let p as HTTPProblem {
            #expect(p.status == .preconditionFailed)
            #expect(p.detail == #"expected the current entity tag to match if-match, found "r3""#)
        }
        do {
            _ = try request(.PUT, "/x", headers: ["If-Match": "r2"]).ifMatch()
            Issue.record("expected 400")
        } catch let p as HTTPProblem {
            #expect(p.status == .badRequest)
        }
    }
}

@Suite struct ConfigurationTests {
    @Test func parsesListenAddresses() {
        #expect(HTTPServerConfiguration.ListenAddress(parsing: "127.0.0.1:0") == .init(host: "127.0.0.1", port: 0))
        #expect(HTTPServerConfiguration.ListenAddress(parsing: "[::1]:8080") == .init(host: "::1", port: 8080))
        #expect(HTTPServerConfiguration.ListenAddress(parsing: "localhost:80") == .init(host: "localhost", port: 80))
        #expect(HTTPServerConfiguration.ListenAddress(parsing: "::1:80") == nil)
        #expect(HTTPServerConfiguration.ListenAddress(parsing: "127.0.0.1") == nil)
        #expect(HTTPServerConfiguration.ListenAddress(parsing: "127.0.0.1:65536") == nil)
        #expect(HTTPServerConfiguration.ListenAddress(host: "::1", port: 1).description == "[::1]:1")
    }

    @Test(arguments: ["0.0.0.0", "::", "192.0.2.1", "2001:db8::1"])
    func refusesNonLoopbackWithoutToken(host: String) throws {
        var c = HTTPServerConfiguration(listen: .init(host: host, port: 0))
        #expect(throws: HTTPConfigurationError.nonLoopbackWithoutToken(listen: c.listen.description)) {
            try c.validate()
        }
        let server = HTTPServer(configuration: c, router: Router())
        #expect(throws: HTTPServerError.configuration(.nonLoopbackWithoutToken(listen: c.listen.description))) {
            try server.start()
        }
        #expect(server.port == nil)
        c.bearerToken = "t"
        try c.validate()
    }

    @Test(arguments: ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "localhost"])
    func loopbackNeedsNoToken(host: String) throws {
        try HTTPServerConfiguration(listen: .init(host: host, port: 0)).validate()
    }

    @Test func refusesOtherBadSettings() {
        #expect(throws: HTTPConfigurationError.invalidHost("example.org")) {
            try HTTPServerConfiguration(listen: .init(host: "example.org", port: 0)).validate()
        }
        #expect(throws: HTTPConfigurationError.emptyBearerToken) {
            try HTTPServerConfiguration(bearerToken: "").validate()
        }
        #expect(throws: HTTPConfigurationError.self) {
            try HTTPServerConfiguration(threadPoolSize: 0).validate()
        }
        #expect(throws: HTTPConfigurationError.self) {
            try HTTPServerConfiguration(stopGraceSeconds: .nan).validate()
        }
        #expect(HTTPConfigurationError.nonLoopbackWithoutToken(listen: "0.0.0.0:80").description
            == "expected a bearer token when listening beyond loopback, found none for 0.0.0.0:80")
    }
}

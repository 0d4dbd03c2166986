import BPFTestSupport
import DepotCore
import DepotHTTP
import DepotStore
import Foundation
import Testing

/// The served document is `openapi.yaml` embedded by `scripts/embed-openapi.sh`; they must not drift.
@Suite struct OpenAPIDocumentTests {
    /// `<repo>/openapi.yaml`, found from this file's path (`<repo>/Tests/DepotHTTPTests/...`).
    static var specURL: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // DepotHTTPTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // repository root
            .appendingPathComponent("openapi.yaml")
    }

    @Test func embeddedDocumentIsTheFileAtTheRepositoryRoot() throws {
        let data = try Data(contentsOf: Self.specURL)
        let file = try #require(String(data: data, encoding: .utf8))
        // Compare bytes, not Strings: Swift String equality is canonical-equivalence, which
        // would let a differently normalized (but visibly equal) text pass.
        let same = Array(OpenAPIDocument.yaml.utf8) == Array(file.utf8)
        #expect(same, "Sources/DepotHTTP/OpenAPIDocument.swift is stale: run scripts/embed-openapi.sh")
        if !same {
            let embedded = OpenAPIDocument.yaml.split(separator: "\n", omittingEmptySubsequences: false)
            let onDisk = file.split(separator: "\n", omittingEmptySubsequences: false)
            if let line = zip(embedded, onDisk).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                Issue.record("first difference at line \(line + 1): embedded \"\(embedded[line])\", file \"\(onDisk[line])\"")
            } else {
                Issue.record("embedded text has \(embedded.count) lines, the file \(onDisk.count)")
            }
        }
    }

    /// The `/v1` router on a fresh database of its own.
    static func withRouter(_ body: (Router) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-openapi-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try DepotStore(path: directory + "/depot.sqlite")
        defer { try? store.close() }
        try body(DepotRoutes.router(depot: Depot(store: store), openAPI: OpenAPIDocument.yaml))
    }

    static func send(_ router: Router, _ method: HTTPMethod, _ target: String, headers: HTTPHeaders = [:],
                     body: [UInt8] = []) throws -> HTTPResponse {
        router.respond(to: try #require(HTTPRequest(method: method, target: target, headers: headers, body: body)))
    }

    /// `GET /openapi.yaml` on the real `/v1` router answers the embedded text as YAML.
    @Test func servedAtOpenAPIYAML() throws {
        try Self.withRouter { router in
            let response = try Self.send(router, .GET, "/openapi.yaml")
            #expect(response.status == .ok)
            #expect(response.headers["Content-Type"] == "application/yaml")
            #expect(response.body == Array(OpenAPIDocument.yaml.utf8))
            #expect(OpenAPIDocument.yaml.hasPrefix("openapi: 3.1."))
        }
    }

    /// As documented for `If-Match`: a weak tag never matches (strong comparison, RFC 9110
    /// §13.1.1), so a write guarded by `W/"1"` is a 412 and changes nothing; `"1"` applies.
    @Test func weakIfMatchTagIsPreconditionFailed() throws {
        try Self.withRouter { router in
            let upload = try Self.send(router, .POST, "/v1/objects?name=globals.bpf.o", body: try Fixtures.bytes("globals"))
            #expect(upload.status == .created)
            let id = try #require(jsonObject(upload.body)?["id"] as? String)
            let patch = Array(#"{"data_int": 7}"#.utf8)

            let weak = try Self.send(router, .PATCH, "/v1/objects/\(id)/variables", headers: ["If-Match": #"W/"1""#], body: patch)
            _ = expectProblem(412, contentType: weak.headers["Content-Type"], body: weak.body, type: "precondition-failed")
            let weakPut = try Self.send(router, .PUT, "/v1/objects/\(id)/images/.data", headers: ["If-Match": #"W/"1""#], body: [1])
            _ = expectProblem(412, contentType: weakPut.headers["Content-Type"], body: weakPut.body, type: "precondition-failed")
            let object = try Self.send(router, .GET, "/v1/objects/\(id)")
            #expect(jsonObject(object.body)?["currentRevision"] as? Int == 1)

            let strong = try Self.send(router, .PATCH, "/v1/objects/\(id)/variables", headers: ["If-Match": #""1""#], body: patch)
            #expect(strong.status == .ok)
            #expect(strong.headers["ETag"] == #""2""#)
        }
    }
}

import DepotHTTP
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

    @Test func servedAtOpenAPIYAML() throws {
        var router = Router()
        router.get("/openapi.yaml", .immediate { _ in .bytes(Array(OpenAPIDocument.yaml.utf8), contentType: "application/yaml") })
        #expect(OpenAPIDocument.yaml.hasPrefix("openapi: 3.1"))
    }
}

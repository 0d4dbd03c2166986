import DepotHTTP
import DepotStore
import Foundation
import Testing

/// `/ui` as the router serves it (no socket): the embedded files are the ones under `ui/`,
/// served with their types, a strict CSP and revalidation tags, and with no token.
@Suite struct UIRoutesTests {
    /// `<repo>/ui`, found from this file's path.
    static let uiDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ui")

    @Test func embeddedFilesAreTheFilesUnderUI() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.uiDirectory.path).sorted()
        #expect(UIAssets.all.map { String($0.file.dropFirst(3)) }.sorted() == files,
                "every file under ui/ is embedded, and nothing else: run scripts/embed-ui.sh")
        for asset in UIAssets.all {
            let onDisk = [UInt8](try Data(contentsOf: Self.uiDirectory.deletingLastPathComponent().appendingPathComponent(asset.file)))
            #expect(Array(asset.text.utf8) == onDisk, "\(asset.file) differs from its embedded copy: run scripts/embed-ui.sh")
            #expect(asset.etag == String(Digest.sha256Hex(onDisk).prefix(16)), "\(asset.file): stale tag")
        }
    }

    @Test(arguments: [("/ui", "text/html; charset=utf-8"), ("/ui/app.js", "text/javascript; charset=utf-8"),
                      ("/ui/app.css", "text/css; charset=utf-8")])
    func servedWithoutATokenWithTypeCSPAndTag(path: String, type: String) throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let guarded = f.dispatcher(token: "t0ken")
        let r = try ServiceRouterTests.call(guarded, .GET, path)
        #expect(r.status == 200, "the page holds no data: no token needed, found \(r.status) \(r.text)")
        #expect(r.headers["Content-Type"] == type)
        #expect(r.headers["Content-Security-Policy"] == "default-src 'self'; base-uri 'none'; frame-ancestors 'none'")
        #expect(r.headers["X-Content-Type-Options"] == "nosniff")
        #expect(r.headers["Cache-Control"] == "no-cache")
        let asset = try #require(UIAssets.all.first { $0.path == path })
        #expect(r.body == Array(asset.text.utf8))
        let etag = try #require(r.headers["ETag"])
        #expect(etag == "\"\(asset.etag)\"")

        let again = try ServiceRouterTests.call(guarded, .GET, path, headers: ["If-None-Match": etag])
        #expect(again.status == 304)
        #expect(again.body.isEmpty)
        #expect(again.headers["ETag"] == etag)
        let other = try ServiceRouterTests.call(guarded, .GET, path, headers: ["If-None-Match": #""0000000000000000""#])
        #expect(other.status == 200)
    }

    /// The CSP allows the page's own origin only: no inline script or style, nothing from a URL
    /// beyond the host (the machine may reach nothing else).
    @Test func thePageUsesItsOwnOriginOnly() throws {
        let html = try #require(UIAssets.all.first { $0.path == "/ui" }).text
        #expect(html.contains(#"<script src="/ui/app.js" defer></script>"#))
        #expect(html.contains(#"<link rel="stylesheet" href="/ui/app.css">"#))
        #expect(!html.contains("<script>"), "inline scripts are refused by the CSP")
        #expect(!html.contains("<style"), "inline styles are refused by the CSP")
        #expect(!html.contains(" style="), "style attributes are refused by the CSP")
        #expect(html.firstMatch(of: /\son[a-z]+\s*=/) == nil, "inline event handlers are refused by the CSP")
        for asset in UIAssets.all {
            for scheme in ["http://", "https://", "\"//", "'//", "url(", "@import"] {
                #expect(!asset.text.contains(scheme), "\(asset.file) mentions \(scheme)")
            }
        }
    }
}

/// `GET /ui`: the live page, its script and its style sheet, from the binary (`UIAssets`).
///
/// They hold no data (the page reads the `/v1` API with the tab's token), so they need no token.
/// The page's own origin is the only source it may use: no CDN, no inline script, no framing.
extension DepotRoutes {
    static let uiContentSecurityPolicy = "default-src 'self'; base-uri 'none'; frame-ancestors 'none'"

    /// Public so a test can serve the page beside a stand-in API as well as beside the real one.
    public static func addUIRoutes(_ r: inout Router) {
        for asset in UIAssets.all {
            let body = Array(asset.text.utf8)
            let etag = EntityTag(asset.etag)
            r.get(asset.path, .immediate { req in
                var response = HTTPResponse.conditional(req, etag: etag) {
                    .bytes(body, contentType: asset.contentType)
                }
                // Revalidate each time (a 304 is cheap) so a new binary's page is never mixed
                // with an old cached script.
                response.headers.set("Cache-Control", "no-cache")
                response.headers.set("Content-Security-Policy", uiContentSecurityPolicy)
                response.headers.set("X-Content-Type-Options", "nosniff")
                return response
            })
        }
    }
}

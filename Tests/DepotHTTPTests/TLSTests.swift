import DepotHTTP
import Foundation
import Testing

/// HTTPS through Debian's GnuTLS-backed libmicrohttpd, with a throwaway self-signed certificate.
@Suite struct TLSTests {
    static let openssl = "/usr/bin/openssl"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: openssl), "openssl is not installed"))
    func servesHTTPSWithPEMFromMemory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depothttp-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = dir.appendingPathComponent("key.pem").path
        let cert = dir.appendingPathComponent("cert.pem").path
        let (code, _, err) = try runProcess(Self.openssl, [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
        ])
        try #require(code == 0, "openssl: \(err)")

        var router = Router()
        router.post("/echo", .deferred { .bytes($0.body) })
        let s = try LoopbackServer(router: router) {
            $0.tls = .init(
                certificatePEM: (try? String(contentsOfFile: cert, encoding: .utf8)) ?? "",
                privateKeyPEM: (try? String(contentsOfFile: key, encoding: .utf8)) ?? "")
        }
        defer { s.stop() }
        let url = s.base.replacingOccurrences(of: "http://", with: "https://") + "/echo"
        let r = try Curl.fetch("POST", url, ["--cacert", cert, "--data-binary", "over tls"])
        #expect(r.status == 200)
        #expect(r.text == "over tls")
    }
}

import BPFTestSupport
import DepotCore
import DepotHTTP
import Foundation
import Testing

/// `--tls-client-ca`: client certificates made here with openssl (a CA, a server certificate,
/// client certificates for each case), a real HTTPS server on loopback, and curl with and
/// without a certificate.
@Suite("client certificates (mTLS)", .serialized)
struct MTLSTests {
    static let openssl = "/usr/bin/openssl"

    /// A CA and certificates signed by it (or not), in a temporary folder.
    final class PKI {
        let dir: URL
        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-mtls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try ca("ca", subject: "/CN=bpfdepot test CA")
            try ca("otherca", subject: "/CN=some other CA")
            try issue("server", subject: "/CN=localhost", by: "ca", extensions: "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        }

        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        func text(_ name: String) throws -> String { try String(contentsOfFile: path(name), encoding: .utf8) }

        private func openssl(_ args: [String]) throws {
            let (code, _, err) = try runProcess(MTLSTests.openssl, args)
            try #require(code == 0, "openssl \(args.joined(separator: " ")): \(err)")
        }

        private func ca(_ name: String, subject: String) throws {
            try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                         "-keyout", path("\(name).key"), "-out", path("\(name).pem"), "-days", "2", "-subj", subject])
        }

        /// A certificate for `subject` signed by `by`; `days` below 0 makes one already expired.
        func issue(_ name: String, subject: String, by issuer: String = "ca", days: Int = 2,
                   extensions: String = "extendedKeyUsage=clientAuth\n") throws {
            try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                         "-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", subject])
            try extensions.write(toFile: path("\(name).ext"), atomically: true, encoding: .utf8)
            try openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(issuer).pem"), "-CAkey", path("\(issuer).key"),
                         "-CAcreateserial", "-out", path("\(name).pem"), "-days", "\(days)", "-extfile", path("\(name).ext")])
        }

        /// The subject as `openssl x509 -subject -nameopt RFC2253` prints it: what the tokens
        /// file holds.
        func subject(_ name: String) throws -> String {
            let (code, out, err) = try runProcess(MTLSTests.openssl, ["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", path("\(name).pem")])
            try #require(code == 0, "\(err)")
            return out.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "subject=", with: "")
        }

        /// curl arguments: trust the test CA, and present `name`'s certificate when given.
        func curl(_ name: String?) -> [String] {
            ["--cacert", path("ca.pem")] + (name.map { ["--cert", path("\($0).pem"), "--key", path("\($0).key")] } ?? [])
        }

        deinit { try? FileManager.default.removeItem(at: dir) }
    }

    static func https(_ s: LoopbackServer) -> String { s.base.replacingOccurrences(of: "http://", with: "https://") }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: openssl), "openssl is not installed"))
    func certificatesNameTheClientAndTheTokensFileGivesTheScope() throws {
        let pki = try PKI()
        try pki.issue("dash", subject: "/O=ops/CN=dashboard")
        try pki.issue("jane", subject: "/O=ops/CN=Jane Operator")
        try pki.issue("stranger", subject: "/CN=stranger")
        try pki.issue("foreign", subject: "/O=ops/CN=dashboard", by: "otherca")
        try pki.issue("expired", subject: "/O=ops/CN=dashboard", days: -1)
        try pki.issue("serverish", subject: "/O=ops/CN=dashboard", extensions: "extendedKeyUsage=serverAuth\n")
        let dash = try pki.subject("dash"), jane = try pki.subject("jane")
        #expect(dash == "CN=dashboard,O=ops" && jane == "CN=Jane Operator,O=ops")
        let token = "pipeline-secret-1"
        let credentials = try Credentials(fileText: """
            \(Credentials.line(name: "dash", scope: .read, subject: dash))
            \(Credentials.line(name: "jane", scope: .admin, subject: jane))
            \(Credentials.line(name: "pipeline", scope: .write, token: token))
            """)

        let f = try ServiceFixture()
        defer { f.close() }
        let tls = HTTPServerConfiguration.TLS(certificatePEM: try pki.text("server.pem"), privateKeyPEM: try pki.text("server.key"),
                                              clientCAPEM: try pki.text("ca.pem"))
        let s = try f.server(audited: true) { $0.tls = tls; $0.credentials = credentials }
        defer { s.stop() }
        let base = Self.https(s)
        let elf = FileManager.default.temporaryDirectory.appendingPathComponent("mtls-\(UUID().uuidString).o").path
        try Data(try Fixtures.bytes("globals")).write(to: URL(fileURLWithPath: elf))
        defer { try? FileManager.default.removeItem(atPath: elf) }
        let upload = ["--data-binary", "@\(elf)", "-H", "Content-Type: application/octet-stream"]

        // Without a certificate: liveness only.
        #expect(try Curl.fetch("GET", base + "/healthz", pki.curl(nil)).status == 200)
        let none = try Curl.fetch("GET", base + "/v1/objects", pki.curl(nil))
        #expect(none.status == 401 && none.text.contains("client certificate"), "\(none.text)")
        // A token alone is not enough when certificates are required.
        #expect(try Curl.fetch("POST", base + "/v1/objects", pki.curl(nil) + ["-H", "Authorization: Bearer \(token)"] + upload).status == 401)

        // Certificates that do not verify: another CA, expired, made for servers only.
        for bad in ["foreign", "expired", "serverish"] {
            let r = try Curl.fetch("GET", base + "/v1/objects", pki.curl(bad))
            #expect(r.status == 401, "\(bad): \(r.status) \(r.text)")
            #expect(r.text.contains("does not verify"), "\(bad): \(r.text)")
        }

        // dashboard reads and may not write; the refusal names its subject.
        #expect(try Curl.fetch("GET", base + "/v1/objects", pki.curl("dash")).status == 200)
        let denied = try Curl.fetch("POST", base + "/v1/objects", pki.curl("dash") + upload)
        #expect(denied.status == 403, "\(denied.text)")
        #expect((jsonObject(denied.body)?["client"] as? String) == dash && (jsonObject(denied.body)?["requiredScope"] as? String) == "write")
        // A verified certificate with no line in the tokens file has no scope.
        let stranger = try Curl.fetch("GET", base + "/v1/objects", pki.curl("stranger"))
        #expect(stranger.status == 403 && (jsonObject(stranger.body)?["client"] as? String) == "CN=stranger", "\(stranger.text)")
        #expect(try f.depot.objects(limit: 10, after: nil).isEmpty, "a refused upload stored something")

        // The pipeline's token on the dashboard's certificate writes as the pipeline.
        let up = try Curl.fetch("POST", base + "/v1/objects", pki.curl("dash") + ["-H", "Authorization: Bearer \(token)"] + upload)
        #expect(up.status == 201, "\(up.text)")
        // The admin certificate deletes it and reads the audit trail.
        let oid = try #require(jsonObject(up.body)?["id"] as? String)
        #expect(try Curl.fetch("DELETE", base + "/v1/objects/\(oid)", pki.curl("jane")).status == 204)
        let audit = try Curl.fetch("GET", base + "/v1/audit?limit=50", pki.curl("jane"))
        #expect(audit.status == 200, "\(audit.text)")
        let rows = (jsonObject(audit.body)?["entries"] as? [[String: Any]]) ?? []
        func row(_ method: String, _ status: Int, _ client: String?) -> Bool {
            rows.contains { ($0["method"] as? String) == method && ($0["status"] as? Int) == status && ($0["client"] as? String) == client }
        }
        #expect(row("POST", 403, dash), "the dashboard's refused upload, by subject: \(audit.text.prefix(800))")
        #expect(row("POST", 201, "pipeline"), "the upload, by the token's name")
        #expect(row("DELETE", 204, jane), "the delete, by the admin certificate's subject")
        #expect(row("GET", 403, "CN=stranger"), "the stranger's refused read")
        #expect(row("GET", 401, nil), "a read without a certificate")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: openssl), "openssl is not installed"))
    func withoutATokensFileTheCAAloneDecides() throws {
        let pki = try PKI()
        try pki.issue("anyone", subject: "/CN=anyone")
        try pki.issue("foreign", subject: "/CN=anyone", by: "otherca")
        let f = try ServiceFixture()
        defer { f.close() }
        let tls = HTTPServerConfiguration.TLS(certificatePEM: try pki.text("server.pem"), privateKeyPEM: try pki.text("server.key"),
                                              clientCAPEM: try pki.text("ca.pem"))
        // Beyond loopback the certificate requirement counts as authentication (no token needed).
        var check = HTTPServerConfiguration(listen: .init(host: "0.0.0.0", port: 0), tls: tls)
        #expect(throws: Never.self) { try check.validate() }
        check.tls = nil
        #expect(throws: HTTPConfigurationError.self) { try check.validate() }

        let s = try f.server { $0.tls = tls }
        defer { s.stop() }
        let base = Self.https(s)
        #expect(try Curl.fetch("GET", base + "/v1/objects", pki.curl(nil)).status == 401)
        #expect(try Curl.fetch("GET", base + "/v1/objects", pki.curl("foreign")).status == 401)
        // Any certificate the CA signed is admin: it may delete (404 here: nothing to delete).
        #expect(try Curl.fetch("DELETE", base + "/v1/objects/" + String(repeating: "0", count: 64), pki.curl("anyone")).status == 404)
        // Many requests on one keep-alive connection: verified once, answered every time.
        let many = try runProcess("/usr/bin/curl", ["-s", "-w", "%{http_code} %{num_connects}\n"] + pki.curl("anyone")
            + (0..<20).flatMap { _ in ["-o", "/dev/null", base + "/v1/objects"] })
        let lines = many.out.split(separator: "\n")
        #expect(lines.count == 20 && lines.allSatisfy { $0.hasPrefix("200 ") }, "\(many.out) \(many.err)")
        #expect(lines.dropFirst().allSatisfy { $0 == "200 0" }, "expected one connection for all 20: \(many.out)")
    }

    @Test func tokensFileSubjectLines() throws {
        let c = try Credentials(fileText: "a read subject:CN=x,O=y\nb admin subject:  CN=Jane Operator,O=ops  \n")
        #expect(c.subjectCount == 2 && c.names == ["a", "b"])
        #expect(throws: CredentialsError.self) { try Credentials(fileText: "a read subject:") }
        #expect(throws: CredentialsError.self) { try Credentials(fileText: "a read subject:CN=x\nb write subject:CN=x") }
        #expect(throws: CredentialsError.self) { try Credentials(fileText: "a read subject:CN=x\na write subject:CN=z") }
        #expect(throws: CredentialsError.self) { try Credentials(fileText: "a read subject:" + String(repeating: "x", count: 2000)) }
    }
}

import BPFKernel
import BPFTestSupport
import DepotCore
@testable import DepotHTTP
@testable import DepotStore
import Foundation
import KernelTestSupport
import Testing

/// Scoped tokens, generated from the contract: every operation of openapi.yaml, asked with no
/// credential, a wrong secret, and a read, write and admin token, answers as the scope rules
/// say; refused requests change nothing in the database or the kernel.
@Suite("scoped tokens", .serialized)
struct ScopeTests {
    struct Operation: CustomStringConvertible {
        let method: HTTPMethod
        let path: String
        var description: String { "\(method.rawValue) \(path)" }
    }

    /// Every (method, path) of the embedded openapi.yaml.
    static func operations() -> [Operation] {
        var out: [Operation] = []
        var path: String?
        for line in OpenAPIDocument.yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("  /"), line.hasSuffix(":") { path = String(line.dropFirst(2).dropLast()); continue }
            if !line.hasPrefix(" ") { path = nil; continue }
            guard let p = path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") else { continue }
            let verb = line.trimmingCharacters(in: .whitespaces).dropLast().uppercased()
            if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(verb) {
                let m = HTTPMethod(rawValue: String(verb))
                out.append(Operation(method: m, path: p))
            }
        }
        return out
    }

    /// What scope the rules give an operation; nil: open to all.
    static func needed(_ op: Operation, publicMetrics: Bool = false) -> Scope? {
        if ["/healthz", "/openapi.yaml", "/ui", "/ui/app.js", "/ui/app.css"].contains(op.path) { return nil }
        if op.path == "/metrics" { return publicMetrics ? nil : .read }
        if op.path == "/v1/audit" { return .admin }
        if op.method == .GET { return .read }
        if op.method == .DELETE && ["/v1/objects/{id}", "/v1/loads/{id}", "/v1/links/{id}"].contains(op.path) { return .admin }
        return .write
    }

    static let secrets: [Scope: String] = [.read: "r-secret-1", .write: "w-secret-22", .admin: "a-secret-333"]

    static func credentials() throws -> Credentials {
        try Credentials(fileText: """
            # tokens of the test
            dashboard read \(Credentials.line(name: "x", scope: .read, token: secrets[.read]!).split(separator: " ")[2])
            \(Credentials.line(name: "pipeline", scope: .write, token: secrets[.write]!))
            \(Credentials.line(name: "operator", scope: .admin, token: secrets[.admin]!))
            """)
    }

    /// Client-certificate subjects of the test, mapped to scopes by `subject:` lines.
    static let subjects: [Scope: String] = [.read: "CN=dashboard,O=ops", .write: "CN=pipeline,O=ci", .admin: "CN=Jane Operator,O=ops"]

    static func credentialsWithCertificates() throws -> Credentials {
        try Credentials(fileText: """
            \(Credentials.line(name: "pipeline", scope: .write, token: secrets[.write]!))
            dash read subject:\(subjects[.read]!)
            ci write \(Credentials.subjectPrefix)\(subjects[.write]!)
            jane admin subject: \(subjects[.admin]!)
            """)
    }

    @Test func everyOperationAnswersAsTheScopeRulesSay() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let d = HTTPDispatcher(router: f.router, credentials: try Self.credentials())
        // The same rules with client certificates required (`--tls-client-ca`): the peer's
        // certificate as ServerCore hands it over (verified or not; tested over TLS in MTLSTests).
        let dc = HTTPDispatcher(router: f.router, credentials: try Self.credentialsWithCertificates(), requiresClientCertificates: true)
        let ops = Self.operations()
        #expect(ops.count >= 30, "the contract's operations: \(ops)")
        // A stored object and a live load, so refused requests would have something to change.
        let up = try ServiceRouterTests.call(d, .POST, "/v1/objects", headers: ["Authorization": "Bearer \(Self.secrets[.write]!)"],
                                             body: try Fixtures.bytes("globals"))
        let oid = try #require(jsonObject(up.body)?["id"] as? String)
        _ = try f.snapshot()
        let before = try f.snapshot()

        let cases: [(String, String?, Scope?)] = [
            ("no credential", nil, nil), ("a wrong secret", "Bearer not-a-token", nil),
            ("read", "Bearer \(Self.secrets[.read]!)", .read), ("write", "Bearer \(Self.secrets[.write]!)", .write),
            ("admin", "Bearer \(Self.secrets[.admin]!)", .admin),
        ]
        for op in ops {
            let target = op.path.replacingOccurrences(of: "{id}", with: op.path.hasPrefix("/v1/objects") ? oid : "999999")
                .replacingOccurrences(of: "{name}", with: "nope").replacingOccurrences(of: "{section}", with: ".data")
                .replacingOccurrences(of: "{map}", with: "nope").replacingOccurrences(of: "{key}", with: "0")
            let need = Self.needed(op)
            for (label, auth, scope) in cases {
                var headers: HTTPHeaders = [:]
                if let auth { headers.add("Authorization", auth) }
                // Only refusals are sent for real: an allowed mutation would change things.
                let refused = need.map { n in scope.map { $0 < n } ?? true } ?? false
                if op.method != .GET && !refused { continue }
                let r = try ServiceRouterTests.call(d, op.method, target, headers: headers, body: op.method == .GET ? [] : Array("{}".utf8))
                let expected: Int? = !refused ? nil : (scope == nil ? 401 : 403)
                if let expected {
                    #expect(r.status == expected, "\(op) with \(label): \(r.status) \(r.text.prefix(200))")
                    if expected == 403 {
                        #expect((jsonObject(r.body)?["requiredScope"] as? String) == need?.description, "\(op) with \(label)")
                    }
                } else {
                    #expect(r.status != 401 && r.status != 403, "\(op) with \(label): \(r.status) \(r.text.prefix(200))")
                }
            }
            // The client-certificate column: none, one that did not verify, one whose subject
            // has no line (403), and one per scope; a token alone is not enough.
            let certificateCases: [(String, PeerCertificate, String?, expected: Scope?, status: Int?)] = [
                ("no certificate", .none, nil, nil, 401),
                ("no certificate but a write token", .none, "Bearer \(Self.secrets[.write]!)", nil, 401),
                ("a certificate that does not verify", .invalid("The certificate is NOT trusted."), nil, nil, 401),
                ("an unmapped certificate", .verified(subject: "CN=stranger,O=elsewhere"), nil, nil, 403),
                ("a read certificate", .verified(subject: Self.subjects[.read]!), nil, .read, nil),
                ("a write certificate", .verified(subject: Self.subjects[.write]!), nil, .write, nil),
                ("an admin certificate", .verified(subject: Self.subjects[.admin]!), nil, .admin, nil),
                ("a read certificate with a write token", .verified(subject: Self.subjects[.read]!), "Bearer \(Self.secrets[.write]!)", .write, nil),
            ]
            for (label, peer, auth, scope, status) in certificateCases {
                var headers: HTTPHeaders = [:]
                if let auth { headers.add("Authorization", auth) }
                let refused = need.map { n in scope.map { $0 < n } ?? true } ?? false
                if op.method != .GET && !refused { continue }
                let r = try ServiceRouterTests.call(dc, op.method, target, headers: headers, body: op.method == .GET ? [] : Array("{}".utf8), peer: peer)
                if refused {
                    let expected = status ?? 403
                    #expect(r.status == expected, "\(op) with \(label): \(r.status) \(r.text.prefix(200))")
                    if expected == 403 {
                        #expect((jsonObject(r.body)?["requiredScope"] as? String) == need?.description, "\(op) with \(label)")
                    }
                } else {
                    #expect(r.status != 401 && r.status != 403, "\(op) with \(label): \(r.status) \(r.text.prefix(200))")
                }
            }
        }
        #expect(try f.snapshot() == before, "refused requests changed the database")
    }

    @Test(.needsBPF) func theFastPathAndWritesOverASocketFollowTheRules() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server { $0.credentials = try? Self.credentials() }
        defer { s.stop() }
        let admin = ServiceClient(s, token: Self.secrets[.admin]), reader = ServiceClient(s, token: Self.secrets[.read])
        let writer = ServiceClient(s, token: Self.secrets[.write]), nobody = ServiceClient(s)
        let (_, load) = try ObservabilityTests.uploadAndLoad(writer, "globals_run")
        // The live-variable read answered on MHD's thread checks the token like any other.
        #expect(try nobody.get("/v1/loads/\(load)/variables/input").status == 401)
        #expect(try reader.get("/v1/loads/\(load)/variables/input").status == 200)
        #expect(try nobody.get("/metrics").status == 401 && reader.get("/metrics").status == 200)
        #expect(try nobody.get("/healthz").status == 200)
        // read cannot write; write cannot unload; admin can. A refusal leaves the live value
        // and the kernel's programs as they were.
        func input() throws -> Int? { try reader.get("/v1/loads/\(load)/variables/input").json["value"] as? Int }
        let programs = try reader.get("/v1/loads/\(load)/programs")
        let kernelIDs = ((programs.json["programs"] as? [[String: Any]]) ?? []).compactMap { ($0["kernelId"] as? Int).map(UInt32.init) }
        #expect(!kernelIDs.isEmpty, "\(programs.text.prefix(300))")
        func alive() -> Int { kernelIDs.filter { id in (try? BPFSys.progGetFDByID(id)).map { $0.close(); return true } ?? false }.count }
        let before = try input()
        #expect(try reader.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"input": 77}"#).status == 403)
        #expect(try input() == before && before != 77)
        #expect(try writer.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"input": 1}"#).status == 200)
        #expect(try input() == 1)
        let denied = try writer.send("DELETE", "/v1/loads/\(load)")
        #expect(denied.status == 403 && denied.json["client"] as? String == "pipeline", "\(denied.text)")
        #expect(alive() == kernelIDs.count, "a refused unload left the programs in the kernel")
        #expect(try admin.send("DELETE", "/v1/loads/\(load)").status == 204)
        #expect(alive() == 0, "the admin's unload released the programs")
    }

    @Test func publicMetricsOpensOnlyMetrics() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let d = HTTPDispatcher(router: f.router, credentials: try Self.credentials(), publicMetrics: true)
        #expect(try ServiceRouterTests.call(d, .GET, "/metrics").status == 200)
        #expect(try ServiceRouterTests.call(d, .GET, "/v1/objects").status == 401)
    }

    @Test func tokenAddPrintsTheSecretOnceAndStoresOnlyItsHash() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-tokens-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/tokens"
        let a = try runProcess(ServeProcess.binary, ["token", "add", "grafana", "--scope", "read", "--file", file])
        let b = try runProcess(ServeProcess.binary, ["token", "add", "ci", "--scope", "write", "--file", file])
        #expect(a.code == 0 && b.code == 0, "\(a.err)\(b.err)")
        let secret = a.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.count >= 40)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(!text.contains(secret), "the file holds no secret")
        let mode = (try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        let creds = try Credentials(fileText: text)
        #expect(creds.names == ["grafana", "ci"])
        let f = try ServiceFixture()
        defer { f.close() }
        let d = HTTPDispatcher(router: f.router, credentials: creds)
        #expect(try ServiceRouterTests.call(d, .GET, "/v1/objects", headers: ["Authorization": "Bearer \(secret)"]).status == 200)
        #expect(try ServiceRouterTests.call(d, .POST, "/v1/objects", headers: ["Authorization": "Bearer \(secret)"]).status == 403)
        let again = try runProcess(ServeProcess.binary, ["token", "add", "grafana", "--scope", "admin", "--file", file])
        #expect(again.code != 0, "a name is used once")
        #expect(throws: CredentialsError.self) { try Credentials(fileText: "x read \(secret)") }
        // A client certificate's subject, as openssl prints it, mapped to a scope: no secret.
        let cert = try runProcess(ServeProcess.binary, ["token", "add", "grafana-cert", "--scope", "read", "--subject", "subject=CN=grafana,O=ops", "--file", file])
        #expect(cert.code == 0 && cert.out.isEmpty, "\(cert.err)")
        let mapped = try Credentials(fileText: try String(contentsOfFile: file, encoding: .utf8))
        #expect(mapped.names == ["grafana", "ci", "grafana-cert"] && mapped.subjectCount == 1)
        let dc = HTTPDispatcher(router: f.router, credentials: mapped, requiresClientCertificates: true)
        #expect(try ServiceRouterTests.call(dc, .GET, "/v1/objects", peer: .verified(subject: "CN=grafana,O=ops")).status == 200)
        #expect(try ServiceRouterTests.call(dc, .POST, "/v1/objects", peer: .verified(subject: "CN=grafana,O=ops")).status == 403)
        #expect(try runProcess(ServeProcess.binary, ["token", "add", "grafana-cert", "--scope", "read", "--subject", "CN=x", "--file", file]).code != 0)
    }

    /// A token found valid once is recognised again without hashing; the remembered verdict
    /// never stretches to another value (same length, one byte off, other scheme spelling is
    /// checked in full), and a token that failed is refused every time.
    @Test func rememberedTokensAreRecognisedExactly() throws {
        let creds = try Credentials(fileText: Credentials.line(name: "reader", scope: .read, token: "s3cret-token-aaaa") + "\n"
            + Credentials.line(name: "writer", scope: .write, token: "s3cret-token-bbbb") + "\n")
        func who(_ header: String) -> String? {
            if case .success(let c) = creds.identify(authorization: header) { return "\(c.name) \(c.scope)" }
            return nil
        }
        for _ in 0..<3 {
            #expect(who("Bearer s3cret-token-aaaa") == "reader read")
            #expect(who("Bearer s3cret-token-bbbb") == "writer write")
            #expect(who("bearer  s3cret-token-aaaa") == "reader read")
            #expect(who("Bearer s3cret-token-aaab") == nil)
            #expect(who("Bearer s3cret-token-aaa") == nil)
            #expect(who("Bearer s3cret-token-aaaaa") == nil)
            #expect(who("Basic s3cret-token-aaaa") == nil)
        }
        // Bounded: many spellings of a valid token do not grow the map past its limit.
        for i in 0..<(AcceptedTokens.limit * 2) {
            #expect(who("Bearer" + String(repeating: " ", count: i + 1) + "s3cret-token-aaaa") == "reader read")
        }
        #expect(creds.accepted.count <= AcceptedTokens.limit)
        #expect(who("Bearer s3cret-token-bbbb") == "writer write")
    }
}

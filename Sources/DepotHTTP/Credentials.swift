import Crypto
import Foundation
import Synchronization

/// What a credential may do. Each scope includes the ones below it.
public enum Scope: Int, Sendable, Comparable, CustomStringConvertible, CaseIterable {
    /// Every GET.
    case read = 1
    /// Also uploads, patches, image writes, loads, runs, links, live writes and map writes.
    case write = 2
    /// Also deletes of objects, unloads, detaches, and the audit log.
    case admin = 3

    public static func < (a: Scope, b: Scope) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .read: "read"
        case .write: "write"
        case .admin: "admin"
        }
    }

    public init?(name: String) {
        guard let s = Scope.allCases.first(where: { $0.description == name }) else { return nil }
        self = s
    }
}

/// A client the server recognised: the token's name and its scope.
public struct Client: Sendable, Equatable {
    public let name: String
    public let scope: Scope
}

/// What a TLS connection's client certificate is, checked against `--tls-client-ca`.
public enum PeerCertificate: Sendable, Equatable {
    /// The client sent none (or the connection is not TLS).
    case none
    /// It does not verify: GnuTLS's reason (unknown issuer, expired, not for client use, ...).
    case invalid(String)
    /// It verifies; its subject DN in RFC 4514 form.
    case verified(subject: String)

    /// The subject of a verified certificate.
    public var subject: String? {
        if case .verified(let s) = self { return s }
        return nil
    }
}

/// Why a tokens file was refused.
public enum CredentialsError: Error, Sendable, CustomStringConvertible, Equatable {
    case badLine(number: Int, reason: String)
    case empty

    public var description: String {
        switch self {
        case .badLine(let n, let r): "tokens file, line \(n): \(r)"
        case .empty: "tokens file: expected at least one token, found none"
        }
    }
}

/// The bearer tokens a server accepts, each with a name and a scope, kept as SHA-256 digests
/// (a tokens file never holds a secret in clear), and the client certificates it maps to scopes.
/// Lines: `NAME SCOPE SHA256HEX` for a token, `NAME SCOPE subject:DN` for a client certificate
/// (the DN in RFC 4514 form, as `openssl x509 -noout -subject -nameopt RFC2253` prints it, to
/// the end of the line); blank lines and `#` comments are skipped (`bpfdepot token add` appends
/// lines). The single-token setting (`--token-file`, `BPFDEPOT_TOKEN`) is one `admin`
/// credential named `token`.
public struct Credentials: Sendable {
    struct Entry: Sendable {
        let name: String
        let scope: Scope
        let digest: [UInt8]
    }

    let entries: [Entry]
    /// Client-certificate subjects (`subject:` lines) and their scopes.
    let subjects: [String: Scope]
    /// The names of the `subject:` lines, in file order.
    let subjectNames: [String]
    /// Whether the entries came from a tokens file (then a certificate needs a `subject:` line).
    public let isTokensFile: Bool
    /// Authorization values already found valid, so a client's every request does not hash its
    /// token again (see `AcceptedTokens`).
    let accepted = AcceptedTokens()

    /// One admin token (the `--token-file` setting); nil for an empty secret.
    public init?(token: String, name: String = "token") {
        guard !token.isEmpty else { return nil }
        entries = [Entry(name: name, scope: .admin, digest: Self.digest(Array(token.utf8)))]
        subjects = [:]
        subjectNames = []
        isTokensFile = false
    }

    public init(fileText: String) throws(CredentialsError) {
        var entries: [Entry] = []
        var subjects: [String: Scope] = [:]
        var names: Set<String> = []
        var subjectNames: [String] = []
        for (i, raw) in fileText.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let f = line.split(maxSplits: 2, whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard f.count == 3 else {
                throw .badLine(number: i + 1, reason: "expected 'NAME SCOPE SHA256HEX' or 'NAME SCOPE subject:DN', found \(f.count) fields")
            }
            guard Self.isName(f[0]) else { throw .badLine(number: i + 1, reason: "a name is letters, digits and -_.@ (at most 64), found '\(f[0].prefix(64))'") }
            guard let scope = Scope(name: f[1]) else { throw .badLine(number: i + 1, reason: "expected a scope of read, write or admin, found '\(f[1].prefix(32))'") }
            guard !entries.contains(where: { $0.name == f[0] }), !names.contains(f[0]) else { throw .badLine(number: i + 1, reason: "'\(f[0])' named twice") }
            if f[2].hasPrefix(Self.subjectPrefix) {
                let dn = f[2].dropFirst(Self.subjectPrefix.count).trimmingCharacters(in: .whitespaces)
                guard !dn.isEmpty, dn.utf8.count <= Self.maxSubjectBytes else {
                    throw .badLine(number: i + 1, reason: "expected a certificate subject DN after 'subject:' (at most \(Self.maxSubjectBytes) bytes)")
                }
                guard subjects[dn] == nil else { throw .badLine(number: i + 1, reason: "subject '\(dn.prefix(64))' mapped twice") }
                subjects[dn] = scope
                names.insert(f[0])
                subjectNames.append(f[0])
                continue
            }
            guard f[2].count == 64, let digest = Self.hexBytes(f[2]) else {
                throw .badLine(number: i + 1, reason: "expected the 64 hex digits of the token's SHA-256 (never the token itself)")
            }
            entries.append(Entry(name: f[0], scope: scope, digest: digest))
        }
        guard !entries.isEmpty || !subjects.isEmpty else { throw .empty }
        self.entries = entries
        self.subjects = subjects
        self.subjectNames = subjectNames
        self.isTokensFile = true
    }

    public static let subjectPrefix = "subject:"
    /// The longest certificate subject accepted (in a tokens file and from a peer).
    public static let maxSubjectBytes = 1024

    /// Token names, then the names of certificate lines.
    public var names: [String] { entries.map(\.name) + subjectNames }
    /// How many client-certificate subjects are mapped.
    public var subjectCount: Int { subjects.count }

    /// A verified client certificate's client: its subject, with the scope of its `subject:`
    /// line; a certificate without one has no scope when the entries came from a tokens file,
    /// and `admin` otherwise (the CA alone decides, as one `--token-file` token would).
    func identify(subject: String) -> Client? {
        if let scope = subjects[subject] { return Client(name: subject, scope: scope) }
        return isTokensFile ? nil : Client(name: subject, scope: .admin)
    }

    /// A tokens-file line mapping a client certificate's subject to a scope.
    public static func line(name: String, scope: Scope, subject: String) -> String {
        "\(name) \(scope) \(subjectPrefix)\(subject)"
    }

    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.@".contains($0)) }
    }

    static func digest(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }

    /// A tokens-file line for a new token.
    public static func line(name: String, scope: Scope, token: String) -> String {
        "\(name) \(scope) \(digest(Array(token.utf8)).map { String(format: "%02x", $0) }.joined())"
    }

    static func hexBytes(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        var it = s.utf8.makeIterator()
        while let hi = it.next() {
            guard let lo = it.next(), let h = nibble(hi), let l = nibble(lo) else { return nil }
            out.append(h << 4 | l)
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The client an `Authorization` header names, or the lowercase reason for a 401. The
    /// presented token's digest is compared with every entry's in full (no early exit), so the
    /// time taken says nothing about which entry, or how much of one, matched.
    func identify(authorization header: String?) -> Result<Client, AuthFailure> {
        guard let header else { return .failure(.init("expected an authorization header with a bearer token, found none")) }
        if let client = accepted.client(for: header) { return .success(client) }
        let result = verify(authorization: header)
        if case .success(let client) = result { accepted.remember(header, client) }
        return result
    }

    private func verify(authorization header: String) -> Result<Client, AuthFailure> {
        let value = header.trimmingOWS
        let scheme = value.prefix { $0 != " " && $0 != "\t" }
        guard HTTPHeaders.same(String(scheme), "Bearer") else {
            return .failure(.init("expected the bearer authorization scheme, found \"\(scheme.prefix(32))\""))
        }
        let presented = value.dropFirst(scheme.count).drop { $0 == " " || $0 == "\t" }
        guard !presented.isEmpty else { return .failure(.init("expected a token after the bearer scheme, found none")) }
        let d = Self.digest(Array(presented.utf8))
        var found: Entry?
        for e in entries {
            var diff: UInt8 = 0
            for i in 0..<32 { diff |= d[i] ^ e.digest[i] }
            if diff == 0 { found = e }
        }
        guard let found else { return .failure(.init("expected a configured bearer token, found one that is not")) }
        return .success(Client(name: found.name, scope: found.scope))
    }
}

/// Authorization header values that named a configured token, with their client. Only values
/// that passed the SHA-256 check are kept, so the map holds the tokens of the file (in the
/// spellings clients use: at most `limit`; when full it starts over), never a guess. A lookup
/// finds the candidate by a per-process randomly seeded hash and then compares every byte
/// without an early exit, so its time says nothing about how much of a kept value matched.
final class AcceptedTokens: Sendable {
    static let limit = 64
    private let values = Mutex<[Int: (value: [UInt8], client: Client)]>([:])

    /// Values held now (tests).
    var count: Int { values.withLock { $0.count } }

    func client(for header: String) -> Client? {
        var header = header
        return header.withUTF8 { presented -> Client? in
            let key = Self.key(presented)
            guard let (value, client) = values.withLock({ $0[key] }), value.count == presented.count else { return nil }
            var diff: UInt8 = 0
            for i in 0..<value.count { diff |= value[i] ^ presented[i] }
            return diff == 0 ? client : nil
        }
    }

    func remember(_ header: String, _ client: Client) {
        let bytes = Array(header.utf8)
        let key = bytes.withUnsafeBufferPointer { Self.key($0) }
        values.withLock { map in
            if map.count >= Self.limit, map[key] == nil { map.removeAll() }
            map[key] = (bytes, client)
        }
    }

    private static func key(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var h = Hasher()
        h.combine(bytes: UnsafeRawBufferPointer(bytes))
        return h.finalize()
    }
}

struct AuthFailure: Error, Sendable {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

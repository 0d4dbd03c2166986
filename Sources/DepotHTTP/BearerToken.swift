/// The single shared secret of `--token-file`: one `admin` credential (see `Credentials`).
public struct BearerToken: Sendable {
    let bytes: [UInt8]

    /// Nil for an empty token: an empty secret would guard nothing.
    public init?(_ token: String) {
        guard !token.isEmpty else { return nil }
        bytes = Array(token.utf8)
    }

    /// Checks an `Authorization` header value. Nil when it grants access, otherwise the
    /// lowercase reason for the 401.
    func rejection(ofAuthorization header: String?) -> String? {
        guard let header else {
            return "expected an authorization header with a bearer token, found none"
        }
        let value = header.trimmingOWS
        let scheme = value.prefix { $0 != " " && $0 != "\t" }
        guard HTTPHeaders.same(String(scheme), "Bearer") else {
            return "expected the bearer authorization scheme, found \"\(scheme.prefix(32))\""
        }
        let presented = value.dropFirst(scheme.count).drop { $0 == " " || $0 == "\t" }
        guard !presented.isEmpty else {
            return "expected a token after the bearer scheme, found none"
        }
        guard matches(Array(presented.utf8)) else {
            return "expected the configured bearer token, found a different one"
        }
        return nil
    }

    /// Compares in time that depends only on the presented length: never on where the bytes
    /// differ or on the secret's length, so timing does not reveal how much of a guess was right.
    func matches(_ presented: [UInt8]) -> Bool {
        var difference: UInt8 = presented.count == bytes.count ? 0 : 1
        for i in presented.indices {
            difference |= presented[i] ^ bytes[i % bytes.count]
        }
        return difference == 0
    }
}

import Crypto
import Foundation

/// Why a trusted-keys file was refused.
public enum TrustedKeysError: Error, Sendable, CustomStringConvertible {
    case badLine(number: Int, reason: String)
    case empty

    public var description: String {
        switch self {
        case .badLine(let n, let r): return "trusted keys, line \(n): \(r)"
        case .empty: return "trusted keys: expected at least one key, found none"
        }
    }
}

/// The Ed25519 public keys whose signatures `serve --trusted-keys` accepts on uploads. The file
/// holds one key per line, `NAME BASE64` (the 32 raw bytes of the public key, as
/// `bpfdepot sign keygen` prints it); blank lines and lines starting with `#` are skipped.
/// A signature is over the 32-byte SHA-256 digest of the object's bytes.
public struct TrustedKeys: Sendable {
    /// Each key's name and its 32 raw public-key bytes (the Crypto key type is not Sendable).
    public let keys: [(name: String, publicKey: [UInt8])]

    public init(text: String) throws(TrustedKeysError) {
        var keys: [(String, [UInt8])] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count == 2 else { throw .badLine(number: i + 1, reason: "expected 'NAME BASE64-PUBLIC-KEY', found \(parts.count) fields") }
            let name = String(parts[0])
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) }), name.count <= 64 else {
                throw .badLine(number: i + 1, reason: "a key name is letters, digits and -_.@ (at most 64), found '\(name.prefix(64))'")
            }
            guard let bytes = Data(base64Encoded: String(parts[1])), (try? Curve25519.Signing.PublicKey(rawRepresentation: bytes)) != nil else {
                throw .badLine(number: i + 1, reason: "expected the base64 of a 32-byte Ed25519 public key")
            }
            guard !keys.contains(where: { $0.0 == name }) else { throw .badLine(number: i + 1, reason: "key '\(name)' named twice") }
            keys.append((name, [UInt8](bytes)))
        }
        guard !keys.isEmpty else { throw .empty }
        self.keys = keys
    }

    /// The name of the key whose signature over `digest` `signature` is, if any.
    public func signer(of digest: [UInt8], signature: [UInt8]) -> String? {
        keys.first { k in
            (try? Curve25519.Signing.PublicKey(rawRepresentation: k.publicKey))?.isValidSignature(signature, for: digest) == true
        }?.name
    }
}

import ArgumentParser
import Crypto
import Foundation

/// Keys and signatures for `serve --trusted-keys`, for build pipelines.
struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make an Ed25519 key pair, or sign an object for uploads to a service with --trusted-keys.",
        discussion: """
            bpfdepot sign keygen NAME           writes NAME.key (the private key, mode 0600) and \
            prints the line for the service's --trusted-keys file.
            bpfdepot sign file OBJECT --key K   prints the base64 signature of OBJECT's SHA-256, \
            to send as the X-Object-Signature header of its upload.
            """,
        subcommands: [Keygen.self, File.self])

    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a key pair: NAME.key, and the trusted-keys line on stdout.")

        @Argument(help: "The key's name (letters, digits, -_.@), as the service will show it for objects it signed.")
        var name: String

        @Option(help: "Directory to write NAME.key into.")
        var dir = "."

        func run() throws {
            guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) }) else {
                throw ValidationError("NAME: expected letters, digits and -_.@ (at most 64), found '\(name)'")
            }
            let key = Curve25519.Signing.PrivateKey()
            let path = (dir as NSString).appendingPathComponent("\(name).key")
            guard !FileManager.default.fileExists(atPath: path) else { throw ValidationError("\(path) exists; not overwriting a key") }
            let created = FileManager.default.createFile(atPath: path, contents: Data((key.rawRepresentation.base64EncodedString() + "\n").utf8),
                                                         attributes: [.posixPermissions: 0o600])
            guard created else { throw ValidationError("cannot write \(path)") }
            print("\(name) \(key.publicKey.rawRepresentation.base64EncodedString())")
        }
    }

    struct File: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the base64 Ed25519 signature of a file's SHA-256.")

        @Argument(help: "The BPF object to sign.")
        var object: String

        @Option(help: "The private key file (from `bpfdepot sign keygen`).")
        var key: String

        func run() throws {
            guard let text = try? String(contentsOfFile: key, encoding: .utf8),
                  let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
                  let privateKey = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
                throw ValidationError("--key: expected a key file from `bpfdepot sign keygen`, cannot read '\(key)'")
            }
            guard let bytes = FileManager.default.contents(atPath: object) else { throw ValidationError("cannot read '\(object)'") }
            let digest = Data(SHA256.hash(data: bytes))
            print(try privateKey.signature(for: digest).base64EncodedString())
        }
    }
}

import ArgumentParser
import DepotHTTP
import Foundation

/// Tokens for `serve --tokens-file`.
struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the named, scoped bearer tokens of `serve --tokens-file`.",
        subcommands: [Add.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a token: prints the secret once and appends its SHA-256 (never the secret) to the tokens file.")

        @Argument(help: "The client's name (letters, digits, -_.@), as logs and the audit trail show it.")
        var name: String

        @Option(help: "read (every GET), write (also uploads, patches, loads, runs, links, live writes) or admin (also deletes, unloads, the audit log).")
        var scope: String

        @Option(help: "The tokens file to append to (created with mode 0600).")
        var file = "bpfdepot.tokens"

        @Option(help: ArgumentHelp(
            "Map a client certificate's subject DN (RFC 4514, as `openssl x509 -noout -subject -nameopt RFC2253` prints it after 'subject=') to the scope instead of making a token.",
            discussion: "For `serve --tls-client-ca`. No secret is printed."))
        var subject: String?

        func run() throws {
            guard let scope = Scope(name: scope) else { throw ValidationError("--scope: expected read, write or admin, found '\(scope)'") }
            if let text = try? String(contentsOfFile: file, encoding: .utf8), !text.isEmpty {
                let existing = try Credentials(fileText: text)
                guard !existing.names.contains(name) else { throw ValidationError("\(file) has a token named '\(name)' already") }
            }
            if let subject {
                let dn = subject.hasPrefix("subject=") ? String(subject.dropFirst("subject=".count)) : subject
                let line = Credentials.line(name: name, scope: scope, subject: dn.trimmingCharacters(in: .whitespaces))
                do { _ = try Credentials(fileText: line) } catch { throw ValidationError("\(error)") }
                try append(line)
                return
            }
            var random = [UInt8](repeating: 0, count: 32)
            guard getentropy(&random, random.count) == 0 else { throw ValidationError("no randomness: getentropy failed") }
            let secret = Data(random).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            let line = Credentials.line(name: name, scope: scope, token: secret)
            _ = try Credentials(fileText: line)  // the name is one the file accepts
            try append(line)
            print(secret)
        }

        private func append(_ line: String) throws {
            if !FileManager.default.fileExists(atPath: file) {
                guard FileManager.default.createFile(atPath: file, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                    throw ValidationError("cannot create \(file)")
                }
            }
            guard let handle = FileHandle(forWritingAtPath: file) else { throw ValidationError("cannot write \(file)") }
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data((line + "\n").utf8))
        }
    }
}

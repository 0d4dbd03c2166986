import ArgumentParser
import DepotCore
import DepotHTTP
import DepotStore
import Foundation
import Logging

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP service (default: ./bpfdepot.sqlite, 127.0.0.1:8080).")

    @Option(help: "SQLite database file (created and migrated if needed).")
    var db = "bpfdepot.sqlite"

    @Option(help: "Address to listen on: HOST:PORT (port 0 picks a free one).")
    var listen = "127.0.0.1:8080"

    @Option(help: "File holding the bearer token required for mutating requests (or set BPFDEPOT_TOKEN).")
    var tokenFile: String?

    @Option(help: "Largest accepted request body, in bytes.")
    var maxBody = HTTPServerConfiguration.defaultMaxBodyBytes

    @Option(help: "Pin every load under <pin-root>/<load id> on bpffs (empty: do not pin).")
    var pinRoot = ""

    @Option(help: "Log lines on stderr: json (one object per line) or text.")
    var logFormat: LineLogHandler.Format = .text

    @Option(help: "Least severe level logged: trace, debug, info (one line per request), notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() throws {
        let metrics = Observability.bootstrap(format: logFormat, level: logLevel)
        let log = Logger(label: "bpfdepot")
        guard let address = HTTPServerConfiguration.ListenAddress(parsing: listen) else {
            throw ValidationError("--listen: expected HOST:PORT such as 127.0.0.1:8080, found '\(listen)'")
        }
        var token = ProcessInfo.processInfo.environment["BPFDEPOT_TOKEN"]
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw ValidationError("--token-file: cannot read '\(tokenFile)'")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let store: DepotStore
        do { store = try DepotStore(path: db) } catch { throw CLIError(description: "database \(db): \(error)") }
        let depot = Depot(store: store, pinRoot: pinRoot.isEmpty ? nil : pinRoot, metrics: DepotMetrics(factory: metrics.factory))
        let config = HTTPServerConfiguration(listen: address, maxBodyBytes: maxBody, bearerToken: token)
        do { try config.validate() } catch { throw CLIError(description: "\(error)") }
        TerminationSignals.block()
        let server = HTTPServer(configuration: config, router: DepotRoutes.router(depot: depot, openAPI: OpenAPIDocument.yaml, metrics: metrics),
                                metrics: metrics, logger: Logger(label: "bpfdepot.http"))
        do { try server.start() } catch { throw CLIError(description: "cannot start: \(error)") }
        log.info("listening", metadata: ["address": "\(address.host):\(server.port ?? address.port)", "db": "\(db)",
                                         "auth": "\(token == nil ? "none (loopback only)" : "bearer token")"])
        let signal = TerminationSignals.wait()
        log.info("stopping", metadata: ["signal": "\(signal)"])
        server.stop()
    }
}

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations and list them.")

    @Option(help: "SQLite database file.")
    var db = "bpfdepot.sqlite"

    func run() throws {
        do {
            let store = try DepotStore(path: db, migrate: false)
            let applied = try store.migrate()
            print(applied.isEmpty ? "up to date" : "applied: " + applied.joined(separator: ", "))
            for m in try store.appliedMigrations() { print("  \(m.name)  \(m.sha256.prefix(12))") }
        } catch {
            throw CLIError(description: "database \(db): \(error)")
        }
    }
}

import ArgumentParser
import BPFKernel
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

    @Option(help: "File holding one bearer token (or set BPFDEPOT_TOKEN): scope admin, needed by every request but /healthz.")
    var tokenFile: String?

    @Option(help: "File of named tokens with scopes (NAME SCOPE SHA256 per line, from `bpfdepot token add`; NAME SCOPE subject:DN for client certificates): read, write or admin.")
    var tokensFile: String?

    @Flag(help: "Answer GET /metrics without a credential even when tokens are configured.")
    var publicMetrics = false

    @Option(help: "Days the audit trail keeps its rows.")
    var auditRetentionDays = DepotLimits.defaultAuditRetentionDays

    @Option(help: "File of Ed25519 public keys (NAME BASE64 per line, from `bpfdepot sign keygen`): uploads must carry an X-Object-Signature by one of them.")
    var trustedKeys: String?

    @Option(help: "Largest accepted request body, in bytes.")
    var maxBody = HTTPServerConfiguration.defaultMaxBodyBytes

    @Option(help: ArgumentHelp(
        "Pin every load under <pin-root>/<load id> on bpffs, and take pinned loads over at start-up (empty: do not pin).",
        discussion: "bpffs is mounted at /sys/fs/bpf if nothing is. One pin root belongs to one database."))
    var pinRoot = "/sys/fs/bpf/bpfdepot"

    @Option(help: "PEM certificate (chain) file: serve HTTPS (needs --tls-key).")
    var tlsCert: String?

    @Option(help: "PEM private key file for --tls-cert.")
    var tlsKey: String?

    @Option(help: ArgumentHelp(
        "PEM file of the CA(s) client certificates must chain to (needs --tls-cert): every route but /healthz, /openapi.yaml and /ui needs one.",
        discussion: "The certificate's subject names the client; a `subject:` line of --tokens-file gives it a scope (`bpfdepot token add NAME --scope S --subject DN`). Without a tokens file every certificate the CA signed is admin. A bearer token sent with a certificate names the client instead."))
    var tlsClientCa: String?

    @Option(help: "Most simultaneous connections; more get 503.")
    var maxConnections = HTTPServerConfiguration.defaultConnectionLimit

    @Option(help: "Seconds a connection may stay idle before it is closed.")
    var connectionTimeout = HTTPServerConfiguration.defaultConnectionTimeoutSeconds

    @Option(help: "Seconds a client has to send a complete request head (cuts slowloris clients off).")
    var headerTimeout = HTTPServerConfiguration.defaultHeaderTimeoutSeconds

    @Option(help: "Requests per second allowed per client address, with bursts of twice that (0: no limit); more get 429.")
    var rateLimit = 0

    @Option(help: "Open watches at most (event streams of ?watch=1 and long polls of Prefer: wait=N); more get 503.")
    var maxWatchers = HTTPServerConfiguration.defaultMaxWatchers

    @Option(help: "Loads being verified at once; more get 503.")
    var maxConcurrentLoads = DepotLimits.defaultMaxConcurrentLoads

    @Option(help: "Arena memory (bytes) all live loads together may map; a load beyond gets 503 (413 if it alone is larger).")
    var maxArenaBytes = DepotLimits.defaultMaxArenaBytes

    @Option(help: "Log lines on stderr: json (one object per line) or text.")
    var logFormat: LineLogHandler.Format = .text

    @Option(help: "Least severe level logged: trace, debug, info (one line per request), notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Milliseconds log lines may wait in a 64 KiB buffer before they are written; warnings and errors are written at once (0: write every line at once).")
    var logFlushMs = LogOutput.defaultFlushIntervalMilliseconds

    @Flag(inversion: .prefixedNo, help: "Keep the kernel's BPF program run statistics on while serving (BPF_ENABLE_STATS): run counts and times in GET /v1/loads/{id}/programs and /metrics. They cost a little time on every program run, system-wide.")
    var programStats = true

    func run() throws {
        guard logFlushMs >= 0 else { throw ValidationError("--log-flush-ms: expected 0 or more, found \(logFlushMs)") }
        let logOutput = logFlushMs == 0 ? LogOutput.unbuffered() : LogOutput(flushIntervalMilliseconds: logFlushMs)
        // Every buffered line is written before the process ends, after a signal too.
        defer { logOutput.close() }
        let metrics = Observability.bootstrap(format: logFormat, level: logLevel, output: logOutput)
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
        var credentials: Credentials?
        if let tokensFile {
            guard let text = try? String(contentsOfFile: tokensFile, encoding: .utf8) else {
                throw ValidationError("--tokens-file: cannot read '\(tokensFile)'")
            }
            do { credentials = try Credentials(fileText: text) } catch { throw ValidationError("--tokens-file: \(error)") }
            if token != nil { throw ValidationError("--tokens-file and --token-file (or BPFDEPOT_TOKEN): choose one") }
        }
        var keys: TrustedKeys?
        if let trustedKeys {
            guard let text = try? String(contentsOfFile: trustedKeys, encoding: .utf8) else {
                throw ValidationError("--trusted-keys: cannot read '\(trustedKeys)'")
            }
            do { keys = try TrustedKeys(text: text) } catch { throw ValidationError("--trusted-keys: \(error)") }
        }
        var tls: HTTPServerConfiguration.TLS?
        switch (tlsCert, tlsKey) {
        case (nil, nil): break
        case (let cert?, let key?):
            guard let certPEM = try? String(contentsOfFile: cert, encoding: .utf8) else { throw ValidationError("--tls-cert: cannot read '\(cert)'") }
            guard let keyPEM = try? String(contentsOfFile: key, encoding: .utf8) else { throw ValidationError("--tls-key: cannot read '\(key)'") }
            tls = .init(certificatePEM: certPEM, privateKeyPEM: keyPEM)
        default:
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        if let tlsClientCa {
            guard tls != nil else { throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key (client certificates come with HTTPS)") }
            guard let caPEM = try? String(contentsOfFile: tlsClientCa, encoding: .utf8) else { throw ValidationError("--tls-client-ca: cannot read '\(tlsClientCa)'") }
            guard caPEM.contains("-----BEGIN CERTIFICATE-----") else { throw ValidationError("--tls-client-ca: expected PEM certificates in '\(tlsClientCa)', found none") }
            tls?.clientCAPEM = caPEM
        }
        guard auditRetentionDays >= 1 else { throw ValidationError("--audit-retention-days: expected at least 1, found \(auditRetentionDays)") }
        guard maxConcurrentLoads >= 1 else { throw ValidationError("--max-concurrent-loads: expected at least 1, found \(maxConcurrentLoads)") }
        guard rateLimit >= 0 else { throw ValidationError("--rate-limit: expected 0 or more, found \(rateLimit)") }
        var config = HTTPServerConfiguration(listen: address, maxBodyBytes: maxBody, connectionLimit: maxConnections,
                                             connectionTimeoutSeconds: connectionTimeout, bearerToken: token, tls: tls)
        config.headerTimeoutSeconds = headerTimeout
        config.requestsPerSecondPerClient = rateLimit
        config.maxWatchers = maxWatchers
        config.credentials = credentials
        config.publicMetrics = publicMetrics
        do { try config.validate() } catch { throw CLIError(description: "\(error)") }

        let store: DepotStore
        do { store = try DepotStore(path: db) } catch { throw CLIError(description: "database \(db): \(error)") }
        var root: String? = pinRoot.isEmpty ? nil : pinRoot
        if let r = root {
            do {
                if try PinRoot.prepare(r) { log.info("mounted bpffs", metadata: ["path": "/sys/fs/bpf"]) }
            } catch {
                log.warning("loads will not be pinned and will not survive a restart", metadata: ["pin_root": "\(r)", "reason": "\(error)"])
                root = nil
            }
        }
        let depot = Depot(store: store, pinRoot: root,
                          limits: DepotLimits(maxConcurrentLoads: maxConcurrentLoads, maxArenaBytes: maxArenaBytes,
                                              auditRetentionDays: auditRetentionDays),
                          metrics: DepotMetrics(factory: metrics.factory), requestedPinRoot: pinRoot.isEmpty ? nil : pinRoot,
                          trustedKeys: keys)
        do {
            try depot.pruneAudit()
            let report = try depot.recover()
            for outcome in report.outcomes {
                switch outcome {
                case .adopted(let id): log.info("adopted load", metadata: ["load": "\(id)"])
                case .lost(let id, let reason): log.warning("load lost", metadata: ["load": "\(id)", "reason": "\(reason)"])
                case .strayPinsRemoved(let dir, let pins):
                    log.info("removed pins without a loaded row", metadata: ["directory": "\(dir)", "pins": "\(pins)"])
                case .linkAdopted(let id, let load):
                    log.info("adopted link", metadata: ["link": "\(id)", "load": "\(load)"])
                case .linkLost(let id, let reason):
                    log.warning("link lost", metadata: ["link": "\(id)", "reason": "\(reason)"])
                case .strayLinkPinRemoved(let path):
                    log.info("removed a link pin without an attached row", metadata: ["path": "\(path)"])
                }
            }
        } catch {
            throw CLIError(description: "recovering loads: \(error)")
        }
        // The recovery lines are written before the first request can be answered: whoever sees
        // the service answer can read what it adopted (tests do, at once).
        logOutput.flush()
        TerminationSignals.block()
        Self.keepLargeAllocationsMapped()
        let server = HTTPServer(configuration: config, router: DepotRoutes.router(depot: depot, openAPI: OpenAPIDocument.yaml, metrics: metrics, server: config),
                                metrics: metrics, logger: Logger(label: "bpfdepot.http"), audit: { depot.recordAudit($0) })
        do { try server.start() } catch { throw CLIError(description: "cannot start: \(error)") }
        log.info("listening", metadata: ["address": "\(address.host):\(server.port ?? address.port)", "db": "\(db)",
                                         "auth": "\(credentials.map { "\($0.names.count - $0.subjectCount) scoped tokens, \($0.subjectCount) certificate subjects" } ?? (token == nil ? "none (loopback only)" : "bearer token (admin)"))\(tlsClientCa == nil ? "" : ", client certificates required")",
                                         "tls": "\(tls == nil ? "off" : "on")", "pin_root": "\(root ?? "none")"])
        // The kernel counts program runs while any process holds a BPF_ENABLE_STATS fd.
        var statistics: BPFFD?
        if programStats {
            do {
                statistics = try ProgramStatistics.enable()
                log.info("program run statistics enabled (BPF_ENABLE_STATS)")
            } catch {
                log.warning("program run statistics stay off", metadata: ["reason": "\(error)"])
            }
        }
        defer { statistics?.close() }
        // Start-up lines are out before the first request; from here on lines are buffered.
        logOutput.flush()
        let signal = TerminationSignals.wait()
        log.info("stopping", metadata: ["signal": "\(signal)"])
        server.stop()
    }
}

extension Serve {
    /// glibc raises its mmap threshold to the largest block freed so far, so after one 16 MiB
    /// upload later large request bodies and images come from its per-thread heaps and stay
    /// resident when freed (RSS 186 MiB after six 16 MiB uploads and five patches; 55 MiB with
    /// this, for about 10 % more time per 16 MiB upload in page faults; bench/FINDINGS.md). A
    /// fixed threshold keeps every block of 1 MiB or more in a mapping of its own, returned to
    /// the system on free.
    static func keepLargeAllocationsMapped() {
        #if canImport(Glibc)
        // mallopt is not in Swift's Glibc module; M_MMAP_THRESHOLD is -3 in <malloc.h>.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return }
        _ = unsafeBitCast(symbol, to: Mallopt.self)(-3, 1 << 20)
        #endif
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

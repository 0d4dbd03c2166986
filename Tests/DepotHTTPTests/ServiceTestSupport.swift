import BPFObject
import BPFTestSupport
import DepotCore
import DepotHTTP
@testable import DepotStore
import Foundation
import Logging
import Testing

/// The whole service on a fresh SQLite file of its own: store, depot and the `/v1` router.
/// `close()` unloads whatever is still loaded (so a failed test never leaves an arena mapped at a
/// fixed address for the next one) and removes the directory.
final class ServiceFixture: Sendable {
    let directory: String
    let databasePath: String
    let store: DepotStore
    let depot: Depot
    let router: Router
    /// A registry of this fixture's own: what its `/metrics` shows and where a server started
    /// with `server()` counts requests.
    let metrics = ServiceMetrics()

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("bpfdepot-service-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        databasePath = directory + "/depot.sqlite"
        store = try DepotStore(path: databasePath)
        depot = Depot(store: store, metrics: DepotMetrics(factory: metrics.factory))
        router = DepotRoutes.router(depot: depot, openAPI: "x", metrics: metrics)
    }

    /// A loopback server on this fixture's router that records into its metrics.
    /// A loopback server on this fixture's router that records into its metrics; `audited`:
    /// with the audit trail (off by default, so "nothing stored changed" checks stay exact).
    func server(logger: Logger? = nil, audited: Bool = false, configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws -> LoopbackServer {
        let depot = self.depot
        let record: @Sendable (AuditRecord) -> Void = { depot.recordAudit($0) }
        let audit = audited ? record : nil
        return try LoopbackServer(router: router, metrics: metrics, logger: logger, configure: configure, audit: audit)
    }


    /// The router behind the full request pipeline (auth, body limit, request id), no socket.
    func dispatcher(token: String? = nil, maxBodyBytes: Int = HTTPServerConfiguration.defaultMaxBodyBytes) -> HTTPDispatcher {
        HTTPDispatcher(router: router, bearerToken: token.flatMap(BearerToken.init), maxBodyBytes: maxBodyBytes)
    }

    func close() {
        if let loads = try? depot.loads(limit: 1000, after: nil) {
            for l in loads where l.record.state == .loaded { try? depot.unload(id: l.record.id) }
        }
        try? store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: the database, for "nothing changed" checks

    /// What the database holds, two ways. `rows` is a logical dump: every row of every table
    /// (sqlite_master included, so the schema too), each column through `quote()` (blobs as
    /// X'…'), sorted. `fileSHA256` hashes the main database file after a TRUNCATE checkpoint has
    /// moved every committed page out of the WAL into it, and `walBytesBeforeCheckpoint` is the
    /// WAL's size just before that checkpoint: 0 there means no transaction committed since the
    /// previous snapshot (SQLite appends frames to the WAL only on commit).
    struct Snapshot: Equatable {
        var rows: [String]
        var fileSHA256: String
        var walBytesBeforeCheckpoint: Int
        var checkpointResult: [String]
    }

    func snapshot() throws -> Snapshot {
        let wal = databasePath + "-wal"
        let walBytes = ((try? FileManager.default.attributesOfItem(atPath: wal))?[.size] as? NSNumber)?.intValue ?? 0
        // PRAGMA wal_checkpoint returns one row (busy, log, checkpointed); busy 0 = it completed.
        let checkpoint = try store.writerStrings("PRAGMA wal_checkpoint(TRUNCATE)")
        let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: databasePath)))
        var rows: [String] = []
        let tables = try store.readStrings("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        for table in ["sqlite_master"] + tables {
            let columns = try store.readStrings("SELECT name FROM pragma_table_info('\(table)') ORDER BY cid")
            guard !columns.isEmpty else { continue }
            let expr = columns.map { "quote(\"\($0)\")" }.joined(separator: " || '|' || ")
            rows += try store.readStrings("SELECT '\(table)|' || \(expr) FROM \"\(table)\"").sorted()
        }
        return Snapshot(rows: rows, fileSHA256: Digest.sha256Hex(file), walBytesBeforeCheckpoint: walBytes,
                        checkpointResult: checkpoint)
    }
}

/// A response as a test looks at it, whether it came from the dispatcher or from curl.
extension CurlResponse {
    init(_ r: HTTPResponse) {
        self.init(status: r.status.rawValue, headers: r.headers, body: r.body)
    }

    var json: [String: Any] { jsonObject(body) ?? [:] }
}

/// curl against a running service.
struct ServiceClient {
    let base: String
    var token: String?

    init(_ server: LoopbackServer, token: String? = nil) {
        base = server.base
        self.token = token
    }

    /// `json` is sent as the body text with `Content-Type: application/json`; `bytes` through a
    /// file with `--data-binary @file`.
    func send(_ method: String, _ path: String, json: String? = nil, bytes: [UInt8]? = nil,
              headers: [(String, String)] = []) throws -> CurlResponse {
        var extra: [String] = []
        for (k, v) in headers { extra += ["-H", "\(k): \(v)"] }
        if let token { extra += ["-H", "Authorization: Bearer \(token)"] }
        var file: String?
        defer { if let file { try? FileManager.default.removeItem(atPath: file) } }
        if let json {
            extra += ["-H", "Content-Type: application/json", "--data-binary", json]
        } else if let bytes {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-body-\(UUID().uuidString)").path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            file = path
            extra += ["-H", "Content-Type: application/octet-stream", "--data-binary", "@\(path)"]
        }
        return try Curl.fetch(method, base + path, extra)
    }

    func get(_ path: String, headers: [(String, String)] = []) throws -> CurlResponse {
        try send("GET", path, headers: headers)
    }
}

/// `{"variables": [{"name": n, "value": v}, ...]}` as name → value.
func variableValues(_ body: [String: Any]) -> [String: Any] {
    var out: [String: Any] = [:]
    for v in body["variables"] as? [[String: Any]] ?? [] {
        if let n = v["name"] as? String { out[n] = v["value"] ?? NSNull() }
    }
    return out
}

/// Foundation's rendering of a JSON value, so nested values compare as text.
func jsonText(_ value: Any?) -> String {
    guard let value else { return "<missing>" }
    if value is NSNull { return "null" }
    if let s = value as? String { return "\"\(s)\"" }
    guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) else {
        return "\(value)"
    }
    return String(decoding: data, as: UTF8.self)
}

/// Sum of the bytes of a `char[8]` holding `s` (NUL padded), as the fixture's program computes.
func tagSum(_ s: String) -> Int { s.utf8.reduce(0) { $0 + Int($1) } }

import Foundation
import GRDB

/// One audit row.
public struct AuditRecord: Sendable, Equatable {
    public var id: Int64 = 0
    public var at: Date
    public var client: String?
    public var address: String?
    public var requestID: String
    public var method: String
    public var route: String
    public var path: String
    public var status: Int
    public var objectID: String?
    public var loadID: Int64?
    public var linkID: Int64?
    /// JSON text: what the request changed.
    public var change: String?

    public init(at: Date, client: String?, address: String?, requestID: String, method: String, route: String, path: String,
                status: Int, objectID: String? = nil, loadID: Int64? = nil, linkID: Int64? = nil, change: String? = nil) {
        self.at = at
        self.client = client
        self.address = address
        self.requestID = requestID
        self.method = method
        self.route = route
        self.path = path
        self.status = status
        self.objectID = objectID
        self.loadID = loadID
        self.linkID = linkID
        self.change = change
    }
}

/// Which audit rows to list.
public struct AuditFilter: Sendable {
    public var loadID: Int64?
    public var objectID: String?
    public var client: String?
    public var since: Date?
    public var until: Date?
    /// Rows with a smaller id than this (newest first: pass the last id of the previous page).
    public var before: Int64?
    public var limit = 100

    public init() {}
}

extension DepotStore {
    public func appendAudit(_ r: AuditRecord) throws(StoreError) {
        try write("append audit") { db in
            try db.execute(sql: """
                INSERT INTO audit (at, client, address, request_id, method, route, path, status, object_id, load_id, link_id, change)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [StoreTime.text(r.at), r.client, r.address, r.requestID, r.method, r.route, r.path, r.status,
                                 r.objectID, r.loadID, r.linkID, r.change])
        }
    }

    /// Rows matching `filter`, newest first.
    public func audit(_ filter: AuditFilter) throws(StoreError) -> [AuditRecord] {
        guard (1...Self.maximumPageSize).contains(filter.limit) else { throw .invalidLimit(filter.limit) }
        var clauses: [String] = []
        var args: [(any DatabaseValueConvertible)?] = []
        if let v = filter.loadID { clauses.append("load_id = ?"); args.append(v) }
        if let v = filter.objectID { clauses.append("object_id = ?"); args.append(v) }
        if let v = filter.client { clauses.append("client = ?"); args.append(v) }
        if let v = filter.since { clauses.append("at >= ?"); args.append(StoreTime.text(v)) }
        if let v = filter.until { clauses.append("at < ?"); args.append(StoreTime.text(v)) }
        if let v = filter.before { clauses.append("id < ?"); args.append(v) }
        args.append(filter.limit)
        let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let sql = """
            SELECT id, at, client, address, request_id, method, route, path, status, object_id, load_id, link_id, change
            FROM audit \(whereSQL) ORDER BY id DESC LIMIT ?
            """
        return try read("list audit") { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args.map { $0?.databaseValue ?? .null })).map { row in
                var r = AuditRecord(at: try row.time("at"), client: row["client"], address: row["address"],
                                    requestID: row["request_id"], method: row["method"], route: row["route"], path: row["path"],
                                    status: row["status"], objectID: row["object_id"], loadID: row["load_id"],
                                    linkID: row["link_id"], change: row["change"])
                r.id = row["id"]
                return r
            }
        }
    }

    /// Sets the retention window and deletes the rows older than it; returns how many went.
    @discardableResult
    public func pruneAudit(retentionDays: Int) throws(StoreError) -> Int {
        try write("prune audit") { db in
            try db.execute(sql: "UPDATE audit_retention SET days = ? WHERE one = 1", arguments: [max(1, retentionDays)])
            try db.execute(sql: "DELETE FROM audit WHERE at < strftime('%Y-%m-%d %H:%M:%f', 'now', ?)",
                           arguments: ["-\(max(1, retentionDays)) days"])
            return db.changesCount
        }
    }
}

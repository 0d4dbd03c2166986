import Foundation
import GRDB

extension DepotStore {
    /// Records an attach of `program` of a load. The row is written before the kernel attach
    /// (state `failed`) and moved to `attached` once the link is pinned: see migration 0004.
    public func createLink(loadID: Int64, program: String, kind: String, target: String,
                           request: String = "{}", state: LinkState = .failed) throws(StoreError) -> LinkRecord {
        try Self.checkJSON(request, what: "link request")
        return try write("create link") { db in
            guard try Self.fetchLoad(db, id: loadID) != nil else { throw StoreError.loadNotFound(id: loadID) }
            let now = StoreTime.text(Date())
            try db.execute(
                sql: """
                    INSERT INTO links (load_id, program, kind, target, request, state, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [loadID, program, kind, target, request, state.rawValue, now, now])
            let id = db.lastInsertedRowID
            guard let link = try Self.fetchLink(db, id: id) else { throw StoreError.linkNotFound(id: id) }
            return link
        }
    }

    /// Moves a link to `state`; the kernel id, pin path, kind and target replace the row's when given.
    @discardableResult
    public func updateLink(id: Int64, state: LinkState, kernelID: UInt32? = nil, pinPath: String? = nil,
                           kind: String? = nil, target: String? = nil) throws(StoreError) -> LinkRecord {
        try write("update link") { db in
            guard try Self.fetchLink(db, id: id) != nil else { throw StoreError.linkNotFound(id: id) }
            try db.execute(
                sql: """
                    UPDATE links SET state = ?, kernel_id = coalesce(?, kernel_id), pin_path = coalesce(?, pin_path),
                        kind = coalesce(?, kind), target = coalesce(?, target), updated_at = ? WHERE id = ?
                    """,
                arguments: [state.rawValue, kernelID.map { Int64($0) }, pinPath, kind, target, StoreTime.text(Date()), id])
            guard let updated = try Self.fetchLink(db, id: id) else { throw StoreError.linkNotFound(id: id) }
            return updated
        }
    }

    /// Every attached link of a load becomes `detached` (its unload), in one transaction.
    public func detachLinks(loadID: Int64) throws(StoreError) {
        try write("detach links") { db in
            try db.execute(sql: "UPDATE links SET state = 'detached', updated_at = ? WHERE load_id = ? AND state = 'attached'",
                           arguments: [StoreTime.text(Date()), loadID])
        }
    }

    public func link(id: Int64) throws(StoreError) -> LinkRecord {
        let found = try read("get link") { db in try Self.fetchLink(db, id: id) }
        guard let found else { throw .linkNotFound(id: id) }
        return found
    }

    /// The links of a load (or, without one, of every load), optionally in one state, by id.
    public func links(loadID: Int64? = nil, state: LinkState? = nil) throws(StoreError) -> [LinkRecord] {
        var conditions: [String] = []
        var arguments = StatementArguments()
        if let loadID {
            conditions.append("load_id = ?")
            arguments += [loadID]
        }
        if let state {
            conditions.append("state = ?")
            arguments += [state.rawValue]
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try read("list links") { db in
            if let loadID, try Self.fetchLoad(db, id: loadID) == nil { throw StoreError.loadNotFound(id: loadID) }
            return try Row.fetchAll(db, sql: "SELECT \(Self.linkColumns) FROM links \(filter) ORDER BY id", arguments: arguments)
                .map(Self.decodeLink)
        }
    }

    // MARK: - Rows

    static let linkColumns = "id, load_id, program, kind, target, request, state, kernel_id, pin_path, created_at, updated_at"

    static func fetchLink(_ db: Database, id: Int64) throws -> LinkRecord? {
        try Row.fetchOne(db, sql: "SELECT \(linkColumns) FROM links WHERE id = ?", arguments: [id]).map(decodeLink)
    }

    static func decodeLink(_ row: Row) throws -> LinkRecord {
        let stateText: String = try row.decode(forColumn: "state")
        guard let state = LinkState(rawValue: stateText) else {
            throw StoreError.database(operation: "read link", code: -1, message: "expected a link state, found \"\(stateText)\"")
        }
        let kernelID: Int64? = try row.decode(forColumn: "kernel_id")
        return LinkRecord(id: try row.decode(forColumn: "id"), loadID: try row.decode(forColumn: "load_id"),
                          program: try row.decode(forColumn: "program"), kind: try row.decode(forColumn: "kind"),
                          target: try row.decode(forColumn: "target"), request: try row.decode(forColumn: "request"),
                          state: state, kernelID: kernelID.flatMap { UInt32(exactly: $0) },
                          pinPath: try row.decode(forColumn: "pin_path"),
                          created: try row.time("created_at"), updated: try row.time("updated_at"))
    }

    static func checkJSON(_ text: String, what: String) throws(StoreError) {
        guard isJSON(text) else { throw .invalidKernelIDs(reason: "\(what): \"\(shown(text))\" is not JSON") }
    }
}

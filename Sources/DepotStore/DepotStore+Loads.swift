import Foundation
import GRDB

extension DepotStore {
    /// Records a load of `revision` (nil: the current one) of an object. `kernelIDs` is the
    /// caller's JSON text (map and program ids). A `loaded` load with a pin directory claims it:
    /// no other `loaded` load may use the same directory.
    public func createLoad(objectID: String, revision: Int? = nil, state: LoadState,
                           pinDirectory: String? = nil, kernelIDs: String = "{}") throws(StoreError) -> LoadRecord {
        try Self.checkKernelIDs(kernelIDs)
        if let pinDirectory, pinDirectory.isEmpty {
            throw .emptyPinDirectory
        }
        return try write("create load") { db in
            let wanted = try Self.existingRevision(db, objectID: objectID, revision: revision)
            guard let wanted else {
                throw StoreError.revisionNotFound(objectID: objectID, revision: revision ?? 0)
            }
            if state == .loaded, let pinDirectory {
                try Self.checkPinDirectoryFree(db, pinDirectory, except: nil)
            }
            let now = Date()
            try db.execute(
                sql: """
                    INSERT INTO loads (object_id, revision, state, pin_directory, kernel_ids, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [objectID, wanted, state.rawValue, pinDirectory, kernelIDs, StoreTime.text(now), StoreTime.text(now)])
            let id = db.lastInsertedRowID
            guard let load = try Self.fetchLoad(db, id: id) else { throw StoreError.loadNotFound(id: id) }
            return load
        }
    }

    /// Moves a load to `state`, replacing its kernel ids and pin directory when given.
    @discardableResult
    public func updateLoad(id: Int64, state: LoadState, kernelIDs: String? = nil,
                           pinDirectory: String? = nil) throws(StoreError) -> LoadRecord {
        if let kernelIDs { try Self.checkKernelIDs(kernelIDs) }
        if let pinDirectory, pinDirectory.isEmpty { throw .emptyPinDirectory }
        return try write("update load") { db in
            guard let load = try Self.fetchLoad(db, id: id) else { throw StoreError.loadNotFound(id: id) }
            if state == .loaded, load.state != .loaded || pinDirectory != nil,
               let dir = pinDirectory ?? load.pinDirectory {
                try Self.checkPinDirectoryFree(db, dir, except: id)
            }
            try db.execute(
                sql: """
                    UPDATE loads SET state = ?, kernel_ids = coalesce(?, kernel_ids),
                        pin_directory = coalesce(?, pin_directory), updated_at = ? WHERE id = ?
                    """,
                arguments: [state.rawValue, kernelIDs, pinDirectory, StoreTime.text(Date()), id])
            guard let updated = try Self.fetchLoad(db, id: id) else { throw StoreError.loadNotFound(id: id) }
            return updated
        }
    }

    public func load(id: Int64) throws(StoreError) -> LoadRecord {
        let found = try read("get load") { db in try Self.fetchLoad(db, id: id) }
        guard let found else { throw .loadNotFound(id: id) }
        return found
    }

    /// Loads by id, optionally only of one object and/or in one state; keyset-paginated like
    /// `objects(limit:afterID:)`.
    public func loads(objectID: String? = nil, state: LoadState? = nil, limit: Int = 100,
                      afterID: Int64? = nil) throws(StoreError) -> [LoadRecord] {
        guard (1...Self.maximumPageSize).contains(limit) else { throw .invalidLimit(limit) }
        // Only the filters given, so `id > ?` is a seek on the rowid (an `? IS NULL OR ...` would
        // make SQLite scan from the first row).
        var conditions: [String] = []
        var arguments = StatementArguments()
        if let objectID {
            conditions.append("object_id = ?")
            arguments += [objectID]
        }
        if let state {
            conditions.append("state = ?")
            arguments += [state.rawValue]
        }
        if let afterID {
            conditions.append("id > ?")
            arguments += [afterID]
        }
        arguments += [limit]
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT \(Self.loadColumns) FROM loads \(filter) ORDER BY id LIMIT ?"
        return try read("list loads") { db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.decodeLoad)
        }
    }

    /// Forgets a load. Refused while it is `loaded`: update it to `unloaded` (or `lost`) first.
    public func deleteLoad(id: Int64) throws(StoreError) {
        try write("delete load") { db in
            guard let load = try Self.fetchLoad(db, id: id) else { throw StoreError.loadNotFound(id: id) }
            guard load.state != .loaded else { throw StoreError.loadStillLoaded(id: id) }
            try db.execute(sql: "DELETE FROM loads WHERE id = ?", arguments: [id])
        }
    }

    // MARK: - Rows

    static let loadColumns = "id, object_id, revision, state, pin_directory, kernel_ids, created_at, updated_at"

    static func fetchLoad(_ db: Database, id: Int64) throws -> LoadRecord? {
        try Row.fetchOne(db, sql: "SELECT \(loadColumns) FROM loads WHERE id = ?", arguments: [id])
            .map(decodeLoad)
    }

    static func decodeLoad(_ row: Row) throws -> LoadRecord {
        let stateText: String = try row.decode(forColumn: "state")
        guard let state = LoadState(rawValue: stateText) else {
            throw StoreError.database(operation: "read load", code: -1,
                                      message: "expected a load state, found \"\(stateText)\"")
        }
        return LoadRecord(id: try row.decode(forColumn: "id"),
                          objectID: try row.decode(forColumn: "object_id"),
                          revision: try row.decode(forColumn: "revision"),
                          state: state,
                          pinDirectory: try row.decode(forColumn: "pin_directory"),
                          kernelIDs: try row.decode(forColumn: "kernel_ids"),
                          created: try row.time("created_at"),
                          updated: try row.time("updated_at"))
    }

    static func checkPinDirectoryFree(_ db: Database, _ path: String, except loadID: Int64?) throws {
        if let holder = try Int64.fetchOne(
            db,
            sql: "SELECT id FROM loads WHERE pin_directory = ? AND state = 'loaded' AND id IS NOT ? LIMIT 1",
            arguments: [path, loadID])
        {
            throw StoreError.pinDirectoryInUse(path: path, loadID: holder)
        }
    }

    /// The same rule as the column's `json_valid` check, reported before any write.
    static func checkKernelIDs(_ text: String) throws(StoreError) {
        guard isJSON(text) else { throw .invalidKernelIDs(reason: "\"\(shown(text))\"") }
    }

    /// The test the columns' `json_valid` checks make, done before a write.
    static func isJSON(_ text: String) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil
    }

    /// A JSON text as an error shows it: its first 60 characters.
    static func shown(_ text: String) -> String {
        text.count > 60 ? String(text.prefix(60)) + "…" : text
    }
}

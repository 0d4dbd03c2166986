import GRDB

extension DepotStore {
    /// The variables of a load exported as gauges, by name.
    public func exports(loadID: Int64) throws(StoreError) -> [String] {
        let found: [String]? = try read("get load exports") { db in
            guard try Self.fetchLoad(db, id: loadID) != nil else { return nil }
            return try String.fetchAll(db, sql: "SELECT name FROM load_exports WHERE load_id = ? ORDER BY name",
                                       arguments: [loadID])
        }
        guard let found else { throw .loadNotFound(id: loadID) }
        return found
    }

    /// Replaces a load's exported variables with `names` (duplicates collapse; empty clears the
    /// list) and returns them by name.
    @discardableResult
    public func setExports(loadID: Int64, names: [String]) throws(StoreError) -> [String] {
        let unique = Array(Set(names)).sorted()
        return try write("set load exports") { db in
            guard try Self.fetchLoad(db, id: loadID) != nil else { throw StoreError.loadNotFound(id: loadID) }
            try db.execute(sql: "DELETE FROM load_exports WHERE load_id = ?", arguments: [loadID])
            for name in unique {
                try db.execute(sql: "INSERT INTO load_exports (load_id, name) VALUES (?, ?)", arguments: [loadID, name])
            }
            return unique
        }
    }

    /// How many objects are stored.
    public func objectCount() throws(StoreError) -> Int {
        try read("count objects") { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM objects") ?? 0 }
    }
}

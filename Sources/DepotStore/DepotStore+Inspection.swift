import GRDB

// Raw access for DepotStoreTests (`@testable import`), so the tests can check the bytes and rows
// in the file without importing GRDB themselves. Not part of the public API.
extension DepotStore {
    /// Rows in `table` (a name from the schema, never user input).
    func rowCount(_ table: String) throws(StoreError) -> Int {
        try read("count \(table)") { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)") ?? 0
        }
    }

    /// The first column of every row `sql` returns, as text, read on a reader connection.
    func readStrings(_ sql: String) throws(StoreError) -> [String] {
        try read("read strings") { db in try String.fetchAll(db, sql: sql) }
    }

    /// The same, on the writer connection (where migrations toggle foreign keys).
    func writerStrings(_ sql: String) throws(StoreError) -> [String] {
        do {
            return try writer.writeWithoutTransaction { db in try String.fetchAll(db, sql: sql) }
        } catch {
            throw StoreError(operation: "read strings on writer", error)
        }
    }

    /// Runs `sql` in one IMMEDIATE transaction, as a tool other than the store would.
    func executeRaw(_ sql: String) throws(StoreError) {
        try write("execute raw sql") { db in try db.execute(sql: sql) }
    }
}

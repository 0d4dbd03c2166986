import Foundation
import GRDB

/// What bpfdepot keeps: uploaded objects, the revisions of their initial images, and loads.
///
/// One SQLite file in WAL mode with foreign keys on. Reads run concurrently on snapshot
/// connections; every write is one `BEGIN IMMEDIATE` transaction, so a write either happens
/// whole or not at all, and a writer never finds mid-transaction that another process got the
/// lock first (a DEFERRED read-then-write would fail with SQLITE_BUSY there instead of waiting).
///
/// The API is synchronous: callers (the HTTP layer's worker threads, the CLI) are on threads
/// that may block. Every method is safe to call from any thread.
public final class DepotStore: Sendable {
    /// Largest page `objects(limit:afterID:)` and `loads(...)` return.
    public static let maximumPageSize = 1000

    /// The migrations compiled into this binary, in order.
    public static var knownMigrations: [String] { Migration.embedded.map(\.name) }

    let writer: any DatabaseWriter
    let path: String?
    private let runner: MigrationRunner

    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    /// The directory must exist. With `migrate: false` nothing is applied (for `bpfdepot migrate
    /// --status`); other calls then fail until `migrate()` runs.
    public convenience init(path: String, migrate: Bool = true) throws(StoreError) {
        try self.init(path: path, migrations: Migration.embedded, migrate: migrate)
    }

    /// A private in-memory database (for tests of other layers); gone when the store is.
    public static func inMemory() throws(StoreError) -> DepotStore {
        try DepotStore(inMemoryWith: Migration.embedded)
    }

    init(path: String, migrations: [Migration], migrate: Bool = true) throws(StoreError) {
        do {
            writer = try DatabasePool(path: path, configuration: DepotStore.configuration())
        } catch {
            throw .cannotOpen(path: path, reason: DepotStore.reason(error))
        }
        self.path = path
        runner = MigrationRunner(migrations: migrations)
        try runner.validate()
        if migrate { try self.migrate() }
    }

    init(inMemoryWith migrations: [Migration]) throws(StoreError) {
        do {
            writer = try DatabaseQueue(configuration: DepotStore.configuration())
        } catch {
            throw .cannotOpen(path: ":memory:", reason: DepotStore.reason(error))
        }
        path = nil
        runner = MigrationRunner(migrations: migrations)
        try runner.validate()
        try migrate()
    }

    private static func configuration() -> Configuration {
        var config = Configuration()
        config.label = "bpfdepot"
        config.foreignKeysEnabled = true
        // Another process (or a second store on the same file) may hold the write lock for the
        // length of one transaction; wait for it rather than fail at once.
        config.busyMode = .timeout(10)
        return config
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error)" }
        return "\(error)"
    }

    // MARK: - Migrations

    /// Applies pending migrations in order, in one transaction, and returns their names (empty
    /// when the database was up to date). Refuses a database with unknown or edited migrations.
    @discardableResult
    public func migrate() throws(StoreError) -> [String] {
        do {
            // A barrier: no read of this store runs while the schema changes under it.
            return try writer.barrierWriteWithoutTransaction { db in try runner.apply(db) }
        } catch {
            throw StoreError(operation: "migrate", error)
        }
    }

    /// The migrations recorded in the database, by name.
    public func appliedMigrations() throws(StoreError) -> [AppliedMigration] {
        try read("list migrations") { db in try MigrationRunner.recorded(db) }
    }

    /// Known migrations not yet applied.
    public func pendingMigrations() throws(StoreError) -> [String] {
        let applied = Set(try appliedMigrations().map(\.name))
        return runner.migrations.map(\.name).filter { !applied.contains($0) }
    }

    // MARK: - Health

    /// `PRAGMA integrity_check`: `["ok"]` for a sound file, otherwise SQLite's findings.
    public func integrityCheck() throws(StoreError) -> [String] {
        try read("integrity check") { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
    }

    /// Closes the connections. Calls made afterwards fail.
    public func close() throws(StoreError) {
        do {
            if let pool = writer as? DatabasePool { try pool.close() }
            if let queue = writer as? DatabaseQueue { try queue.close() }
        } catch {
            throw StoreError(operation: "close", error)
        }
    }

    // MARK: - Access

    func read<T>(_ operation: String, _ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try writer.read(body)
        } catch {
            throw StoreError(operation: operation, error)
        }
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction: committed if it returns, rolled back if
    /// it throws (a `StoreError` thrown inside comes out unchanged).
    func write<T>(_ operation: String, _ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try writer.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                guard let result else {
                    throw StoreError.database(operation: operation, code: -1,
                                              message: "expected a result from the committed transaction, found none")
                }
                return result
            }
        } catch {
            throw StoreError(operation: operation, error)
        }
    }
}

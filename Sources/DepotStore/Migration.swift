import Foundation
import GRDB

/// One schema step: `migrations/NNNN_name.sql`, embedded in the binary by `migrations/embed.sh`.
///
/// The store keeps its own table (`schema_migrations`: name, SHA-256 of the SQL, time) rather
/// than GRDB's `DatabaseMigrator`, for three reasons:
/// - the whole check-and-apply runs in one `BEGIN IMMEDIATE` transaction, so two processes
///   opening a fresh file at once cannot both apply a migration (the migrator reads its table
///   outside the migration transactions);
/// - the recorded SHA-256 turns "shipped migrations are never edited" into a check at start-up;
/// - a database from a newer bpfdepot (unknown migrations) is refused with a typed error.
public struct Migration: Sendable, Equatable {
    /// File name without `.sql`, e.g. `0001_initial`.
    public var name: String
    public var sql: String

    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }

    var sha256: String { Digest.sha256Hex(Array(sql.utf8)) }
}

/// Applies embedded migrations to one database.
struct MigrationRunner {
    let migrations: [Migration]

    /// Checks the list is well formed: `NNNN_name`, numbered 1, 2, 3, ... (embed.sh enforces the
    /// same; this catches a hand-built list).
    func validate() throws(StoreError) {
        for (index, migration) in migrations.enumerated() {
            let prefix = String(format: "%04d_", index + 1)
            guard migration.name.hasPrefix(prefix), migration.name.count > prefix.count else {
                throw .invalidMigration(name: migration.name,
                                        reason: "expected a name starting with \(prefix), found \(migration.name)")
            }
        }
    }

    /// Applies what is pending and returns the names applied.
    ///
    /// Foreign keys are switched off around the transaction (it cannot be done inside one) so a
    /// migration may rebuild a table as SQLite's ALTER TABLE guide describes; `foreign_key_check`
    /// before COMMIT makes sure it left no dangling reference.
    func apply(_ db: Database) throws -> [String] {
        try db.execute(sql: "PRAGMA foreign_keys = OFF")
        defer { try? db.execute(sql: "PRAGMA foreign_keys = ON") }
        let commitGuard = MigrationCommitGuard()
        db.add(transactionObserver: commitGuard, extent: .observerLifetime)
        defer { db.remove(transactionObserver: commitGuard) }
        var applied: [String] = []
        try db.inTransaction(.immediate) {
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    name       TEXT NOT NULL PRIMARY KEY,
                    sha256     TEXT NOT NULL,
                    applied_at TEXT NOT NULL
                )
                """)
            let recorded = try Row.fetchAll(db, sql: "SELECT name, sha256 FROM schema_migrations")
            var recordedSHA: [String: String] = [:]
            for row in recorded {
                recordedSHA[try row.decode(String.self, forColumn: "name")] = try row.decode(String.self, forColumn: "sha256")
            }
            let known = Set(migrations.map(\.name))
            let unknown = recordedSHA.keys.filter { !known.contains($0) }.sorted()
            guard unknown.isEmpty else { throw StoreError.unknownMigrations(names: unknown) }

            // Check the whole history before running anything: applied ones must be a prefix of
            // the known list, each with the SQL it was applied with.
            var previous: String?
            var pending: [Migration] = []
            for migration in migrations {
                guard let sha = recordedSHA[migration.name] else {
                    pending.append(migration)
                    continue
                }
                guard pending.isEmpty else {
                    throw StoreError.migrationOutOfOrder(name: migration.name, expectedAfter: previous)
                }
                guard sha == migration.sha256 else {
                    throw StoreError.migrationEdited(name: migration.name, appliedSHA256: sha,
                                                     embeddedSHA256: migration.sha256)
                }
                previous = migration.name
            }
            for migration in pending {
                commitGuard.running = migration.name
                try db.execute(sql: migration.sql)
                commitGuard.running = nil
                guard db.isInsideTransaction else {
                    throw StoreError.invalidMigration(name: migration.name,
                                                      reason: "expected no transaction control, found a rollback")
                }
                try db.execute(
                    sql: "INSERT INTO schema_migrations (name, sha256, applied_at) VALUES (?, ?, ?)",
                    arguments: [migration.name, migration.sha256, StoreTime.text(Date())])
                applied.append(migration.name)
            }
            if !applied.isEmpty {
                try db.checkForeignKeys()
            }
            return .commit
        }
        return applied
    }

    static func recorded(_ db: Database) throws -> [AppliedMigration] {
        guard try db.tableExists("schema_migrations") else { return [] }
        return try Row.fetchAll(db, sql: "SELECT name, sha256, applied_at FROM schema_migrations ORDER BY name")
            .map { row in
                AppliedMigration(name: try row.decode(forColumn: "name"),
                                 sha256: try row.decode(forColumn: "sha256"),
                                 applied: try row.time("applied_at"))
            }
    }
}

/// Turns a COMMIT inside a migration's SQL into a rollback of the whole migration run: without
/// it, the statements before the COMMIT would stay applied but unrecorded.
private final class MigrationCommitGuard: TransactionObserver {
    /// The migration whose SQL is executing.
    var running: String?

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { false }
    func databaseDidChange(with event: DatabaseEvent) {}
    func databaseDidCommit(_ db: Database) {}
    func databaseDidRollback(_ db: Database) {}

    func databaseWillCommit() throws {
        if let running {
            throw StoreError.invalidMigration(name: running, reason: "expected no transaction control, found a commit")
        }
    }
}

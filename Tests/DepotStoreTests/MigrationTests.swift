@testable import DepotStore
import BPFTestSupport
import Foundation
import Testing

@Suite struct MigrationTests {
    /// `NNNN_suffix`, numbered `offset` past the last embedded migration (1: the next one).
    static func later(_ offset: Int, _ suffix: String) -> String {
        let n = String(Migration.embedded.count + offset)
        return String(repeating: "0", count: max(0, 4 - n.count)) + n + suffix
    }

    static let extra = Migration(name: later(1, "_extra"), sql: "CREATE TABLE extra (x INTEGER NOT NULL);\n")

    @Test func freshDatabaseAppliesEveryMigrationOnceAndRecordsIt() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let applied = try store.appliedMigrations()
        #expect(applied.map(\.name) == DepotStore.knownMigrations)
        #expect(applied.map(\.sha256) == Migration.embedded.map { Digest.sha256Hex(Array($0.sql.utf8)) })
        #expect(try store.rowCount("schema_migrations") == Migration.embedded.count)
        #expect(try store.pendingMigrations() == [])
        let tables = try store.readStrings(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        #expect(tables == ["audit", "audit_retention", "image_blobs", "links", "load_exports", "loads", "object_elves", "objects", "revisions", "schema_migrations", "section_images"])
    }

    @Test func reopeningAppliesNothingAndKeepsData() throws {
        let tmp = try TemporaryDatabase()
        let first = try tmp.open()
        let before = try first.appliedMigrations()
        let (object, _) = try first.putObject(elf: Sample.elf(1), name: "one", images: Sample.images)
        try first.close()

        let second = try tmp.open()
        #expect(try second.migrate() == [])
        #expect(try second.appliedMigrations() == before)  // same names, hashes and times
        #expect(try second.object(id: object.id) == object)
        #expect(try second.rowCount("schema_migrations") == Migration.embedded.count)
    }

    @Test func walAndForeignKeysOnEveryConnection() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        #expect(try store.readStrings("PRAGMA journal_mode") == ["wal"])
        #expect(try store.readStrings("PRAGMA foreign_keys") == ["1"])
        // Migrations switch foreign keys off on the writer; they must come back on.
        #expect(try store.writerStrings("PRAGMA foreign_keys") == ["1"])
        #expect(try store.integrityCheck() == ["ok"])
    }

    @Test func aNewMigrationIsAppliedOnceOnTopOfExistingData() throws {
        let tmp = try TemporaryDatabase()
        let id = try tmp.open().putObject(elf: Sample.elf(2), name: "two", images: Sample.images).object.id

        let newer = try tmp.open(migrations: Migration.embedded + [Self.extra], migrate: false)
        #expect(try newer.pendingMigrations() == [Self.extra.name])
        #expect(try newer.migrate() == [Self.extra.name])
        #expect(try newer.migrate() == [])
        #expect(try newer.appliedMigrations().map(\.name) == DepotStore.knownMigrations + [Self.extra.name])
        #expect(try newer.object(id: id).name == "two")
        try newer.executeRaw("INSERT INTO extra (x) VALUES (1)")
        #expect(try newer.rowCount("extra") == 1)
    }

    @Test func aDatabaseFromANewerVersionIsRefused() throws {
        let tmp = try TemporaryDatabase()
        _ = try tmp.open(migrations: Migration.embedded + [Self.extra])
        #expect(throws: StoreError.unknownMigrations(names: [Self.extra.name])) { try tmp.open() }
    }

    @Test func anEditedShippedMigrationIsRefused() throws {
        let tmp = try TemporaryDatabase()
        _ = try tmp.open()
        var edited = Migration.embedded
        edited[0].sql += "\nCREATE TABLE sneaky (x INTEGER);\n"
        let error = #expect(throws: StoreError.self) { try tmp.open(migrations: edited) }
        guard case .migrationEdited(let name, let applied, let embedded) = error else {
            Issue.record("expected migrationEdited, found \(String(describing: error))")
            return
        }
        #expect(name == "0001_initial")
        #expect(applied == Migration.embedded[0].sha256)
        #expect(embedded == edited[0].sha256)
        #expect(error?.description.contains("append-only") == true)
    }

    @Test func aMigrationInsertedIntoHistoryIsRefused() throws {
        let tmp = try TemporaryDatabase()
        let base = Migration.embedded
        let third = Migration(name: Self.later(2, "_third"), sql: "CREATE TABLE third (x INTEGER);")
        _ = try tmp.open(migrations: base + [Self.extra, third])
        // As if 0002 had been added to history after 0003 shipped: 0003 is applied past a gap.
        let store = try tmp.open(migrations: base + [Self.extra, third], migrate: false)
        try store.executeRaw("DELETE FROM schema_migrations WHERE name = '\(Self.extra.name)'")
        #expect(throws: StoreError.migrationOutOfOrder(name: third.name, expectedAfter: base.last?.name)) {
            try store.migrate()
        }
    }

    @Test func aFailingMigrationLeavesNothingBehind() throws {
        let tmp = try TemporaryDatabase()
        let broken = Migration(name: Self.later(1, "_broken"),
                               sql: "CREATE TABLE half (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n")
        let error = #expect(throws: StoreError.self) { try tmp.open(migrations: Migration.embedded + [broken]) }
        guard case .database(let operation, _, let message) = error else {
            Issue.record("expected a database error, found \(String(describing: error))")
            return
        }
        #expect(operation == "migrate")
        #expect(message.contains("no_such_table"))
        // One transaction for all pending migrations: not even 0001 stayed.
        let store = try tmp.open(migrate: false)
        #expect(try store.pendingMigrations() == DepotStore.knownMigrations)
        #expect(try store.readStrings("SELECT name FROM sqlite_master WHERE name IN ('objects', 'half')") == [])
    }

    @Test func aMigrationThatCommitsIsRefusedAndLeavesNothingBehind() throws {
        let tmp = try TemporaryDatabase()
        let committing = Migration(name: Self.later(1, "_commits"), sql: "CREATE TABLE c (x INTEGER);\nCOMMIT;\n")
        #expect(throws: StoreError.invalidMigration(name: committing.name,
                                                    reason: "expected no transaction control, found a commit")) {
            try tmp.open(migrations: Migration.embedded + [committing])
        }
        let store = try tmp.open(migrations: Migration.embedded + [committing], migrate: false)
        #expect(try store.pendingMigrations() == DepotStore.knownMigrations + [committing.name])
        #expect(try store.readStrings("SELECT name FROM sqlite_master WHERE name IN ('objects', 'c')") == [])
        let rollingBack = Migration(name: Self.later(1, "_rolls_back"), sql: "CREATE TABLE r (x INTEGER);\nROLLBACK;\n")
        #expect(throws: StoreError.self) { try tmp.open(migrations: Migration.embedded + [rollingBack]) }
        #expect(try store.pendingMigrations() == DepotStore.knownMigrations + [committing.name])
        // The guard only watches migration SQL: the commits after it go through.
        let fine = try tmp.open()
        #expect(try fine.appliedMigrations().map(\.name) == DepotStore.knownMigrations)
        #expect(try fine.migrate() == [])
        #expect(try fine.putObject(elf: Sample.elf(1), name: "o", images: []).created)
    }

    @Test func misnumberedMigrationListsAreRefused() throws {
        let tmp = try TemporaryDatabase()
        let skipped = Migration(name: Self.later(2, "_skipped"), sql: "SELECT 1;")
        #expect(throws: StoreError.self) { try tmp.open(migrations: Migration.embedded + [skipped]) }
        let unnamed = Migration(name: Self.later(1, "_"), sql: "SELECT 1;")
        #expect(throws: StoreError.self) { try tmp.open(migrations: Migration.embedded + [unnamed]) }
    }

    @Test func storesOpeningAFreshFileAtOnceApplyEachMigrationOnce() async throws {
        let tmp = try TemporaryDatabase()
        let path = tmp.path
        let applied = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let store = try DepotStore(path: path, migrate: false)
                    return try store.migrate()
                }
            }
            var all: [String] = []
            for try await names in group { all += names }
            return all
        }
        #expect(applied == DepotStore.knownMigrations)
        #expect(try tmp.open().rowCount("schema_migrations") == Migration.embedded.count)
    }

    // MARK: - Embedded copy

    static let migrationsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("migrations")

    @Test func embeddedMigrationsEqualTheFilesOnDisk() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.migrationsDirectory.path)
            .filter { $0.hasSuffix(".sql") }.sorted()
        #expect(!files.isEmpty)
        #expect(Migration.embedded.map { $0.name + ".sql" } == files)
        for (migration, file) in zip(Migration.embedded, files) {
            let onDisk = try Data(contentsOf: Self.migrationsDirectory.appendingPathComponent(file))
            #expect(Array(migration.sql.utf8) == [UInt8](onDisk),
                    "\(file) differs from its embedded copy: run migrations/embed.sh")
        }
    }

    @Test func embeddedSwiftIsWhatTheScriptGenerates() throws {
        let script = Self.migrationsDirectory.appendingPathComponent("embed.sh").path
        let generated = try Fixtures.run("/bin/bash", [script, "-"]).get()
        let committed = try String(
            contentsOf: Self.migrationsDirectory.deletingLastPathComponent()
                .appendingPathComponent("Sources/DepotStore/EmbeddedMigrations.swift"),
            encoding: .utf8)
        #expect(generated == committed, "Sources/DepotStore/EmbeddedMigrations.swift is stale: run migrations/embed.sh")
    }
}

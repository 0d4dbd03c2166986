import BPFObject
import Foundation
import GRDB

extension DepotStore {
    /// The change recorded for revision 1.
    public static let initialChange = "initial images from the elf"

    /// Stores an object and its ELF images as revision 1. Content-addressed: the same bytes again
    /// return the existing object with `created == false` and write nothing (name and images of
    /// the second upload are ignored).
    public func putObject(elf: [UInt8], name: String, images: [SectionImage], signer: String? = nil)
        throws(StoreError) -> (object: StoredObject, created: Bool)
    {
        try putObject(elf: elf, name: name, images: images, elfOffsets: [], signer: signer)
    }

    /// `putObject(elf:name:images:)` with the images of a parsed object. A section image that is
    /// the ELF's own bytes is kept as a reference to them, not as a second copy.
    public func putObject(elf: [UInt8], name: String, spec: ObjectSpec, signer: String? = nil)
        throws(StoreError) -> (object: StoredObject, created: Bool)
    {
        try putObject(elf: elf, name: name, images: [SectionImage](spec),
                      elfOffsets: spec.dataSections.map(\.fileOffset), signer: signer)
    }

    private func putObject(elf: [UInt8], name: String, images: [SectionImage], elfOffsets: [Int?], signer: String?)
        throws(StoreError) -> (object: StoredObject, created: Bool)
    {
        guard !elf.isEmpty else { throw .emptyObject }
        try Self.checkSectionNames(images)
        // Hash before taking the write lock: 16 MiB takes tens of milliseconds.
        let id = Digest.sha256Hex(elf)
        if let existing = try read("find object", { db in try Self.fetchObject(db, id: id) }) {
            return (existing, false)
        }
        return try write("put object") { db in
            // Someone may have stored the same bytes between the read and the lock.
            if let existing = try Self.fetchObject(db, id: id) { return (existing, false) }
            let now = Date()
            try db.execute(
                sql: "INSERT INTO objects (id, name, size, created_at, current_revision, signer) VALUES (?, ?, ?, ?, 1, ?)",
                arguments: [id, name, elf.count, StoreTime.text(now), signer])
            try Self.rawExecute(db, "INSERT INTO object_elves (object_id, elf) VALUES (?, ?)", [.text(id), .blob(elf)])
            try Self.insertFirstRevision(db, objectID: id, elf: elf, images: images, elfOffsets: elfOffsets, at: now)
            guard let object = try Self.fetchObject(db, id: id) else {
                throw StoreError.objectNotFound(id: id)
            }
            return (object, true)
        }
    }

    public func object(id: String) throws(StoreError) -> StoredObject {
        let found = try read("get object") { db in try Self.fetchObject(db, id: id) }
        guard let found else { throw .objectNotFound(id: id) }
        return found
    }

    /// The ELF bytes exactly as uploaded.
    public func elf(objectID: String) throws(StoreError) -> [UInt8] {
        let data = try read("get elf") { db in
            try Data.fetchOne(db, sql: "SELECT elf FROM object_elves WHERE object_id = ?", arguments: [objectID])
        }
        guard let data else { throw .objectNotFound(id: objectID) }
        return [UInt8](data)
    }

    /// Objects ordered by id, at most `limit`, starting after `afterID` (keyset pagination: pass
    /// the last id of the previous page).
    public func objects(limit: Int = 100, afterID: String? = nil) throws(StoreError) -> [StoredObject] {
        guard (1...Self.maximumPageSize).contains(limit) else { throw .invalidLimit(limit) }
        return try read("list objects") { db in
            // Two statements rather than `? IS NULL OR id > ?`, which SQLite cannot answer with
            // a seek on the primary key: each later page would scan from the first row.
            if let afterID {
                return try Row.fetchAll(
                    db, sql: "SELECT \(Self.objectColumns) FROM objects WHERE id > ? ORDER BY id LIMIT ?",
                    arguments: [afterID, limit]
                ).map(Self.decodeObject)
            }
            return try Row.fetchAll(
                db, sql: "SELECT \(Self.objectColumns) FROM objects ORDER BY id LIMIT ?", arguments: [limit]
            ).map(Self.decodeObject)
        }
    }

    /// Deletes an object with its revisions, images and load records. Refused while any load of
    /// it is in state `loaded`.
    public func deleteObject(id: String) throws(StoreError) {
        try write("delete object") { db in
            guard try Self.fetchObject(db, id: id) != nil else { throw StoreError.objectNotFound(id: id) }
            let live = try Int64.fetchAll(
                db, sql: "SELECT id FROM loads WHERE object_id = ? AND state = 'loaded' ORDER BY id",
                arguments: [id])
            guard live.isEmpty else { throw StoreError.objectLoaded(id: id, loadIDs: live) }
            try db.execute(sql: "DELETE FROM objects WHERE id = ?", arguments: [id])
        }
    }

    // MARK: - Rows

    static let objectColumns = "id, name, size, created_at, current_revision, signer"

    static func fetchObject(_ db: Database, id: String) throws -> StoredObject? {
        try Row.fetchOne(db, sql: "SELECT \(objectColumns) FROM objects WHERE id = ?", arguments: [id])
            .map(decodeObject)
    }

    static func decodeObject(_ row: Row) throws -> StoredObject {
        StoredObject(id: try row.decode(forColumn: "id"),
                     name: try row.decode(forColumn: "name"),
                     size: try row.decode(forColumn: "size"),
                     created: try row.time("created_at"),
                     currentRevision: try row.decode(forColumn: "current_revision"),
                     signer: row["signer"])
    }

    static func checkSectionNames(_ images: [SectionImage]) throws(StoreError) {
        var seen = Set<String>()
        for image in images {
            guard !image.name.isEmpty else { throw .emptySectionName }
            guard seen.insert(image.name).inserted else { throw .duplicateSection(name: image.name) }
        }
    }
}

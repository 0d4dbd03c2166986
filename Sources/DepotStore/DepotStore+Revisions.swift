import Foundation
import GRDB

extension DepotStore {
    /// Adds a complete set of section images as the object's next revision and makes it current.
    ///
    /// `images` must hold exactly the sections of revision 1, each the same size (a kernel map's
    /// value size is fixed by the ELF). With `expectedCurrent`, the call fails with
    /// `revisionConflict` and writes nothing unless that is still the current revision (HTTP
    /// If-Match → 412). Returns the new revision number.
    ///
    /// Each image is compared with the current revision's and its stored bytes shared when equal,
    /// so a revision costs only the sections it changes.
    @discardableResult
    public func addRevision(objectID: String, images: [SectionImage], change: String,
                            expectedCurrent: Int? = nil) throws(StoreError) -> Int {
        try addRevision(objectID: objectID, images: images, change: change, expectedCurrent: expectedCurrent,
                        complete: true)
    }

    /// Adds a revision that changes `images` and keeps every other section as revision
    /// `expectedCurrent` has it (shared, not read or copied). Fails with `revisionConflict` unless
    /// `expectedCurrent` is still the current revision: the caller built `images` from it.
    @discardableResult
    public func addRevision(objectID: String, changing images: [SectionImage], change: String,
                            expectedCurrent: Int) throws(StoreError) -> Int {
        try addRevision(objectID: objectID, images: images, change: change, expectedCurrent: expectedCurrent,
                        complete: false)
    }

    private func addRevision(objectID: String, images: [SectionImage], change: String, expectedCurrent: Int?,
                             complete: Bool) throws(StoreError) -> Int {
        try Self.checkSectionNames(images)
        return try write("add revision") { db in
            guard let current = try Int.fetchOne(
                db, sql: "SELECT current_revision FROM objects WHERE id = ?", arguments: [objectID])
            else { throw StoreError.objectNotFound(id: objectID) }
            if let expectedCurrent, expectedCurrent != current {
                throw StoreError.revisionConflict(objectID: objectID, expected: expectedCurrent, current: current)
            }
            try Self.checkLayout(db, objectID: objectID, images: images, complete: complete)
            let next = current + 1
            try Self.insertNextRevision(db, objectID: objectID, revision: next, current: current,
                                        images: images, change: change, at: Date())
            try db.execute(sql: "UPDATE objects SET current_revision = ? WHERE id = ?",
                           arguments: [next, objectID])
            return next
        }
    }

    /// The section images of `revision` (nil: the current one), in revision 1's order;
    /// with `sections`, only those (a name the object does not have is skipped).
    public func images(objectID: String, revision: Int? = nil, sections: Set<String>? = nil)
        throws(StoreError) -> [SectionImage]
    {
        let found: [SectionImage]? = try read("get images") { db in
            guard let wanted = try Self.existingRevision(db, objectID: objectID, revision: revision) else { return nil }
            var stored = try Self.storedImages(db, objectID: objectID, revision: wanted)
            if let sections { stored.removeAll { !sections.contains($0.name) } }
            var elf: ELFBlobReader?
            return try stored.map { image in
                SectionImage(name: image.name, bytes: try Self.bytes(of: image, objectID: objectID, db, elf: &elf))
            }
        }
        guard let found else { throw .revisionNotFound(objectID: objectID, revision: revision ?? 0) }
        return found
    }

    /// The object's history, oldest first.
    public func revisions(objectID: String) throws(StoreError) -> [ImageRevision] {
        try read("list revisions") { db in
            guard try Self.fetchObject(db, id: objectID) != nil else {
                throw StoreError.objectNotFound(id: objectID)
            }
            return try Row.fetchAll(
                db,
                sql: "SELECT revision, created_at, change FROM revisions WHERE object_id = ? ORDER BY revision",
                arguments: [objectID]
            ).map { row in
                ImageRevision(revision: try row.decode(forColumn: "revision"),
                              created: try row.time("created_at"),
                              change: try row.decode(forColumn: "change"))
            }
        }
    }

    // MARK: - Rows

    /// Inserts revision 1: each image kept as a range of the ELF when `elfOffsets` says where it
    /// lies and the bytes there are the same, as zeros when it is all zeros, else as a blob.
    static func insertFirstRevision(_ db: Database, objectID: String, elf: [UInt8], images: [SectionImage],
                                    elfOffsets: [Int?], at time: Date) throws {
        try insertRevisionRow(db, objectID: objectID, revision: 1, change: initialChange, at: time)
        for (position, image) in images.enumerated() {
            let source: ImageSource
            if image.bytes.allZero {
                source = .zeros
            } else if position < elfOffsets.count, let offset = elfOffsets[position],
                      elf.holds(image.bytes, at: offset) {
                source = .elf(offset: offset)
            } else {
                source = .blob(try insertBlob(db, image.bytes))
            }
            try insertImage(db, objectID: objectID, revision: 1, position: position,
                            StoredImage(name: image.name, size: image.bytes.count, source: source))
        }
    }

    /// Inserts a later revision: the current revision's sections in its order, with `images`
    /// in place of those they name. A section not named keeps its source; a named one whose bytes
    /// equal the current revision's does too (no copy is written); zeros are kept as zeros;
    /// anything else becomes a new blob.
    static func insertNextRevision(_ db: Database, objectID: String, revision: Int, current: Int,
                                   images: [SectionImage], change: String, at time: Date) throws {
        try insertRevisionRow(db, objectID: objectID, revision: revision, change: change, at: time)
        let given = Dictionary(images.map { ($0.name, $0.bytes) }, uniquingKeysWith: { first, _ in first })
        var elf: ELFBlobReader?
        for (position, old) in try storedImages(db, objectID: objectID, revision: current).enumerated() {
            guard let newBytes = given[old.name] else {
                try insertImage(db, objectID: objectID, revision: revision, position: position, old)
                continue
            }
            let image = SectionImage(name: old.name, bytes: newBytes)
            let source: ImageSource
            if image.bytes.allZero {
                source = .zeros
            } else if old.size == image.bytes.count, old.source != .zeros,
                      try bytes(of: old, objectID: objectID, db, elf: &elf) == image.bytes {
                source = old.source
            } else {
                source = .blob(try insertBlob(db, image.bytes))
            }
            try insertImage(db, objectID: objectID, revision: revision, position: position,
                            StoredImage(name: image.name, size: image.bytes.count, source: source))
        }
    }

    private static func insertRevisionRow(_ db: Database, objectID: String, revision: Int, change: String,
                                          at time: Date) throws {
        try db.execute(
            sql: "INSERT INTO revisions (object_id, revision, created_at, change) VALUES (?, ?, ?, ?)",
            arguments: [objectID, revision, StoreTime.text(time), change])
    }

    private static func insertBlob(_ db: Database, _ bytes: [UInt8]) throws -> Int64 {
        try rawExecute(db, "INSERT INTO image_blobs (bytes) VALUES (?)", [.blob(bytes)])
        return db.lastInsertedRowID
    }

    private static func insertImage(_ db: Database, objectID: String, revision: Int, position: Int,
                                    _ image: StoredImage) throws {
        let offset: Int?
        let blob: Int64?
        switch image.source {
        case .zeros: (offset, blob) = (nil, nil)
        case .elf(let o): (offset, blob) = (o, nil)
        case .blob(let id): (offset, blob) = (nil, id)
        }
        try db.cachedStatement(sql: """
            INSERT INTO section_images (object_id, revision, section, position, size, elf_offset, blob_id)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [objectID, revision, image.name, position, image.size, offset, blob])
    }

    /// The rows of a revision's images, in position order, without their bytes.
    static func storedImages(_ db: Database, objectID: String, revision: Int) throws -> [StoredImage] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT section, size, elf_offset, blob_id FROM section_images
                WHERE object_id = ? AND revision = ? ORDER BY position
                """,
            arguments: [objectID, revision]
        ).map { row in
            let source: ImageSource
            if let offset: Int = try row.decode(forColumn: "elf_offset") {
                source = .elf(offset: offset)
            } else if let blob: Int64 = try row.decode(forColumn: "blob_id") {
                source = .blob(blob)
            } else {
                source = .zeros
            }
            return StoredImage(name: try row.decode(forColumn: "section"), size: try row.decode(forColumn: "size"),
                               source: source)
        }
    }

    /// An image's bytes, read from where they are kept. `elf` is opened on first need and reused.
    static func bytes(of image: StoredImage, objectID: String, _ db: Database,
                      elf: inout ELFBlobReader?) throws -> [UInt8] {
        switch image.source {
        case .zeros:
            return [UInt8](repeating: 0, count: image.size)
        case .blob(let id):
            guard let data = try Data.fetchOne(db, sql: "SELECT bytes FROM image_blobs WHERE id = ?", arguments: [id]),
                  data.count == image.size
            else {
                throw StoreError.database(operation: "read image", code: -1,
                                          message: "image blob \(id) of section '\(image.name)' is missing or not \(image.size) bytes")
            }
            return [UInt8](data)
        case .elf(let offset):
            if elf == nil { elf = try ELFBlobReader(db, objectID: objectID) }
            guard let reader = elf else { return [] }
            return try reader.read(offset: offset, count: image.size, section: image.name)
        }
    }

    /// Every revision has revision 1's sections with revision 1's sizes (`complete`: all of them
    /// given; otherwise the ones given).
    static func checkLayout(_ db: Database, objectID: String, images: [SectionImage], complete: Bool) throws {
        var expected: [String: Int] = [:]
        var order: [String] = []
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT section, size FROM section_images
                WHERE object_id = ? AND revision = 1 ORDER BY position
                """,
            arguments: [objectID])
        {
            let name: String = try row.decode(forColumn: "section")
            expected[name] = try row.decode(forColumn: "size")
            order.append(name)
        }
        let given = Dictionary(images.map { ($0.name, $0.bytes.count) }, uniquingKeysWith: { first, _ in first })
        for name in order where complete && given[name] == nil {
            throw StoreError.missingSection(objectID: objectID, name: name)
        }
        for image in images {
            guard let size = expected[image.name] else {
                throw StoreError.unexpectedSection(objectID: objectID, name: image.name)
            }
            guard size == image.bytes.count else {
                throw StoreError.sectionSizeMismatch(objectID: objectID, name: image.name,
                                                     expected: size, found: image.bytes.count)
            }
        }
    }
}

extension DepotStore {
    /// `revision` (nil: the object's current one) if the object has it, nil if it does not;
    /// throws `objectNotFound` for an unknown object.
    static func existingRevision(_ db: Database, objectID: String, revision: Int?) throws -> Int? {
        guard let current = try Int.fetchOne(
            db, sql: "SELECT current_revision FROM objects WHERE id = ?", arguments: [objectID])
        else { throw StoreError.objectNotFound(id: objectID) }
        let wanted = revision ?? current
        let exists = try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM revisions WHERE object_id = ? AND revision = ?)",
            arguments: [objectID, wanted]) == true
        return exists ? wanted : nil
    }
}

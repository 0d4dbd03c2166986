import Foundation
import GRDB

extension DepotStore {
    /// Adds a complete set of section images as the object's next revision and makes it current.
    ///
    /// `images` must hold exactly the sections of revision 1, each the same size (a kernel map's
    /// value size is fixed by the ELF). With `expectedCurrent`, the call fails with
    /// `revisionConflict` and writes nothing unless that is still the current revision (HTTP
    /// If-Match → 412). Returns the new revision number.
    @discardableResult
    public func addRevision(objectID: String, images: [SectionImage], change: String,
                            expectedCurrent: Int? = nil) throws(StoreError) -> Int {
        try Self.checkSectionNames(images)
        return try write("add revision") { db in
            guard let current = try Int.fetchOne(
                db, sql: "SELECT current_revision FROM objects WHERE id = ?", arguments: [objectID])
            else { throw StoreError.objectNotFound(id: objectID) }
            if let expectedCurrent, expectedCurrent != current {
                throw StoreError.revisionConflict(objectID: objectID, expected: expectedCurrent, current: current)
            }
            try Self.checkLayout(db, objectID: objectID, images: images)
            let next = current + 1
            try Self.insertRevision(db, objectID: objectID, revision: next, images: images,
                                    change: change, at: Date())
            try db.execute(sql: "UPDATE objects SET current_revision = ? WHERE id = ?",
                           arguments: [next, objectID])
            return next
        }
    }

    /// The section images of `revision` (nil: the current one), in the order they were given.
    public func images(objectID: String, revision: Int? = nil) throws(StoreError) -> [SectionImage] {
        let found: [SectionImage]? = try read("get images") { db in
            guard let wanted = try Self.existingRevision(db, objectID: objectID, revision: revision) else { return nil }
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT section, image FROM revision_images
                    WHERE object_id = ? AND revision = ? ORDER BY position
                    """,
                arguments: [objectID, wanted]
            ).map { row in
                SectionImage(name: try row.decode(forColumn: "section"),
                             bytes: [UInt8](try row.decode(Data.self, forColumn: "image")))
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
                              created: try row.decode(forColumn: "created_at"),
                              change: try row.decode(forColumn: "change"))
            }
        }
    }

    // MARK: - Rows

    static func insertRevision(_ db: Database, objectID: String, revision: Int, images: [SectionImage],
                               change: String, at time: Date) throws {
        try db.execute(
            sql: "INSERT INTO revisions (object_id, revision, created_at, change) VALUES (?, ?, ?, ?)",
            arguments: [objectID, revision, time, change])
        let insert = try db.cachedStatement(sql: """
            INSERT INTO revision_images (object_id, revision, section, position, image)
            VALUES (?, ?, ?, ?, ?)
            """)
        for (position, image) in images.enumerated() {
            try insert.execute(arguments: [objectID, revision, image.name, position, Data(image.bytes)])
        }
    }

    /// Every revision has revision 1's sections with revision 1's sizes.
    static func checkLayout(_ db: Database, objectID: String, images: [SectionImage]) throws {
        var expected: [String: Int] = [:]
        var order: [String] = []
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT section, length(image) AS size FROM revision_images
                WHERE object_id = ? AND revision = 1 ORDER BY position
                """,
            arguments: [objectID])
        {
            let name: String = try row.decode(forColumn: "section")
            expected[name] = try row.decode(forColumn: "size")
            order.append(name)
        }
        let given = Dictionary(images.map { ($0.name, $0.bytes.count) }, uniquingKeysWith: { first, _ in first })
        for name in order where given[name] == nil {
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

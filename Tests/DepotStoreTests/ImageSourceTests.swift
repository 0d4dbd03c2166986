@testable import DepotStore
import BPFObject
import BPFTestSupport
import Foundation
import Testing

/// Section images are kept once: revision 1 by reference to the ELF's bytes (or as zeros), later
/// revisions share every section they leave unchanged (migration 0003).
@Suite struct ImageSourceTests {
    @Test func revisionOneOfAParsedObjectStoresNoSecondCopyOfItsSections() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let elf = try Fixtures.bytes("globals")
        let spec = try ObjectSpec(elf: elf, name: "globals")
        let id = try store.putObject(elf: elf, name: "globals", spec: spec).object.id

        #expect(try store.images(objectID: id) == [SectionImage](spec))
        #expect(try store.rowCount("image_blobs") == 0)
        // Every section with bytes in the ELF points at them; the rest are zeros.
        let sources = try store.readStrings("""
            SELECT section || ':' || coalesce(elf_offset, 'zeros') FROM section_images
            WHERE object_id = '\(id)' ORDER BY position
            """)
        let expected = spec.dataSections.map { section in
            section.image.allSatisfy { $0 == 0 } ? "\(section.name):zeros" : "\(section.name):\(section.fileOffset ?? -1)"
        }
        #expect(sources == expected)
        #expect(sources.contains { $0.hasPrefix(".rodata:") && !$0.hasSuffix("zeros") })
    }

    @Test func anImageThatIsNotTheElfsBytesAtTheGivenPlaceIsStoredAsABlob() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let elf = try Fixtures.bytes("globals")
        var spec = try ObjectSpec(elf: elf, name: "globals")
        let index = try #require(spec.dataSections.firstIndex { $0.name == ".data" })
        spec.dataSections[index].image[0] ^= 0xff  // no longer what the ELF holds there
        let id = try store.putObject(elf: elf, name: "globals", spec: spec).object.id
        #expect(try store.images(objectID: id) == [SectionImage](spec))
        #expect(try store.rowCount("image_blobs") == 1)
    }

    @Test func aRevisionStoresOnlyTheSectionsItChanges() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(1), name: "o", images: Sample.images).object.id
        #expect(try store.rowCount("image_blobs") == 2)  // .data, .rodata; .bss is zeros

        let second = Sample.images(setting: ".data", byte: 0, to: 0xaa)
        try store.addRevision(objectID: id, images: second, change: "one byte of .data")
        #expect(try store.rowCount("image_blobs") == 3)
        let shared = try store.readStrings("""
            SELECT count(DISTINCT blob_id) FROM section_images WHERE object_id = '\(id)' AND section = '.rodata'
            """)
        #expect(shared == ["1"])

        // Back to revision 1's bytes: stored again (a revision is compared with the current one only).
        try store.addRevision(objectID: id, images: Sample.images, change: "undo")
        #expect(try store.rowCount("image_blobs") == 4)
        #expect(try store.images(objectID: id, revision: 1) == Sample.images)
        #expect(try store.images(objectID: id, revision: 2) == second)
        #expect(try store.images(objectID: id, revision: 3) == Sample.images)

        try store.deleteObject(id: id)
        #expect(try store.rowCount("image_blobs") == 0)
        #expect(try store.rowCount("section_images") == 0)
    }

    @Test func aSourceThatDoesNotHoldTheImageIsRefusedEvenInRawSQL() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let elf = Sample.elf(3)
        let id = try store.putObject(elf: elf, name: "o", images: Sample.images).object.id
        try store.executeRaw("INSERT INTO revisions (object_id, revision, created_at, change) VALUES ('\(id)', 2, '2026-01-01 00:00:00.000', 'raw')")
        #expect(throws: StoreError.self) {
            try store.executeRaw("""
                INSERT INTO section_images (object_id, revision, section, position, size, elf_offset)
                VALUES ('\(id)', 2, '.data', 0, 8, \(elf.count - 4))
                """)
        }
        #expect(throws: StoreError.self) {
            try store.executeRaw("""
                INSERT INTO section_images (object_id, revision, section, position, size, blob_id)
                VALUES ('\(id)', 2, '.data', 0, 9, (SELECT min(id) FROM image_blobs))
                """)
        }
    }

    /// A file written before migration 0003 (images in revision_images) reads the same after it.
    @Test func imagesStoredBeforeTheMigrationReadTheSameAfterIt() throws {
        let tmp = try TemporaryDatabase()
        let old = try tmp.open(migrations: Array(Migration.embedded.prefix(2)))
        let id = String(repeating: "ab", count: 32)
        try old.executeRaw("""
            INSERT INTO objects (id, name, size, elf, created_at, current_revision)
            VALUES ('\(id)', 'old', 4, x'7f454c46', '2026-01-01 00:00:00.000', 2);
            INSERT INTO revisions (object_id, revision, created_at, change) VALUES
                ('\(id)', 1, '2026-01-01 00:00:00.000', 'initial'),
                ('\(id)', 2, '2026-01-01 00:00:01.000', 'tuned');
            INSERT INTO revision_images (object_id, revision, section, position, image) VALUES
                ('\(id)', 1, '.data', 0, x'01020304'), ('\(id)', 1, '.bss', 1, x'0000'),
                ('\(id)', 2, '.data', 0, x'05060708'), ('\(id)', 2, '.bss', 1, x'0000');
            """)
        try old.close()

        let store = try tmp.open()
        #expect(try store.images(objectID: id, revision: 1)
            == [SectionImage(name: ".data", bytes: [1, 2, 3, 4]), SectionImage(name: ".bss", bytes: [0, 0])])
        #expect(try store.images(objectID: id)
            == [SectionImage(name: ".data", bytes: [5, 6, 7, 8]), SectionImage(name: ".bss", bytes: [0, 0])])
        #expect(try store.integrityCheck() == ["ok"])
        #expect(try store.readStrings("PRAGMA foreign_key_check") == [])
        #expect(try store.elf(objectID: id) == [0x7f, 0x45, 0x4c, 0x46])
        // The ELF is a row of its own, so reading or moving the current revision does not walk its pages.
        #expect(try store.readStrings("SELECT name FROM pragma_table_info('objects') ORDER BY cid")
            == ["id", "name", "size", "created_at", "current_revision", "signer"])
        // The rules of the rebuilt table still hold.
        #expect(throws: StoreError.self) { try store.executeRaw("UPDATE objects SET current_revision = 1") }
        #expect(throws: StoreError.self) { try store.executeRaw("UPDATE objects SET size = 1") }
        #expect(throws: StoreError.self) { try store.executeRaw("UPDATE object_elves SET elf = x'00'") }
        // And a revision on top of the migrated one shares its unchanged section.
        try store.addRevision(objectID: id, images: [SectionImage(name: ".data", bytes: [5, 6, 7, 8]),
                                                     SectionImage(name: ".bss", bytes: [0, 1])], change: "bss")
        #expect(try store.rowCount("image_blobs") == 5)
    }
}

@Suite struct StoreTimeTests {
    @Test func timesAreWrittenAsUTCTextWithMillisecondsAndReadBack() throws {
        let date = Date(timeIntervalSince1970: 1_795_600_000.1234)  // 2026-11-25 ...
        let text = StoreTime.text(date)
        #expect(text == "2026-11-25 09:46:40.123")
        #expect(StoreTime.date(text) == Date(timeIntervalSince1970: 1_795_600_000.123))
        #expect(StoreTime.text(Date(timeIntervalSince1970: 0)) == "1970-01-01 00:00:00.000")
        #expect(StoreTime.text(Date(timeIntervalSince1970: -0.5)) == "1969-12-31 23:59:59.500")
        #expect(StoreTime.date("2026-01-01 00:00:00") == Date(timeIntervalSince1970: 1_767_225_600))
        for bad in ["", "2026-13-01 00:00:00.000", "2026-01-01T00:00:00.000", "2026-01-01 00:00:00.0", "x026-01-01 00:00:00"] {
            #expect(StoreTime.date(bad) == nil, "\(bad)")
        }
    }

    @Test func aStoredObjectsTimeIsTheTimeItWasStored() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let before = Date().timeIntervalSince1970
        let object = try store.putObject(elf: Sample.elf(5), name: "t", images: Sample.images).object
        let after = Date().timeIntervalSince1970
        #expect(object.created.timeIntervalSince1970 >= (before * 1000).rounded(.down) / 1000)
        #expect(object.created.timeIntervalSince1970 <= after)
        #expect(try store.readStrings("SELECT created_at FROM objects") == [StoreTime.text(object.created)])
    }
}

extension ImageSourceTests {
    @Test func aRevisionChangingSomeSectionsKeepsTheOthersWithoutBeingGivenThem() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(9), name: "o", images: Sample.images).object.id
        let data = SectionImage(name: ".data", bytes: [9, 9, 9, 9, 9, 9, 9, 9])
        #expect(try store.addRevision(objectID: id, changing: [data], change: "c", expectedCurrent: 1) == 2)
        #expect(try store.rowCount("image_blobs") == 3)
        #expect(try store.images(objectID: id) == [data] + Sample.images.dropFirst())
        #expect(try store.images(objectID: id, sections: [".rodata", ".nope"]) == [Sample.images[1]])

        // Built from a revision that is no longer current: refused, nothing written.
        #expect(throws: StoreError.revisionConflict(objectID: id, expected: 1, current: 2)) {
            try store.addRevision(objectID: id, changing: [data], change: "stale", expectedCurrent: 1)
        }
        // A section the object lacks or of the wrong size: refused.
        #expect(throws: StoreError.unexpectedSection(objectID: id, name: ".nope")) {
            try store.addRevision(objectID: id, changing: [SectionImage(name: ".nope", bytes: [1])], change: "x",
                                  expectedCurrent: 2)
        }
        #expect(throws: StoreError.sectionSizeMismatch(objectID: id, name: ".data", expected: 8, found: 2)) {
            try store.addRevision(objectID: id, changing: [SectionImage(name: ".data", bytes: [1, 2])], change: "x",
                                  expectedCurrent: 2)
        }
        #expect(try store.revisions(objectID: id).count == 2)
        #expect(try store.rowCount("image_blobs") == 3)
    }
}

extension ImageSourceTests {
    @Test func aRangeOfTheElfIsCheckedInBounds() {
        let elf: [UInt8] = [1, 2, 3, 4]
        #expect(elf.holds([3, 4], at: 2))
        #expect(!elf.holds([3, 4, 5], at: 2))
        #expect(!elf.holds([4], at: 2))
        #expect(!elf.holds([1], at: -1))
        #expect(!elf.holds([1], at: Int.max))
        #expect(elf.holds([], at: 4))
        #expect(!elf.holds([], at: 5))
        #expect([UInt8]().holds([], at: 0))
    }
}

@testable import DepotStore
import BPFObject
import BPFTestSupport
import Foundation
import Testing

@Suite struct ObjectTests {
    @Test func putKeepsTheElfNameSizeAndTheElfsOwnImagesAsRevisionOne() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let elf = try Fixtures.bytes("globals")
        let spec = try ObjectSpec(elf: elf, name: "globals")
        let before = Date()
        let (object, created) = try store.putObject(elf: elf, name: "globals", spec: spec)

        #expect(created)
        #expect(object.id == Digest.sha256Hex(elf))
        #expect(object.id.count == 64)
        #expect(object.name == "globals")
        #expect(object.size == elf.count)
        #expect(object.currentRevision == 1)
        #expect(abs(object.created.timeIntervalSince(before)) < 60)
        #expect(try store.elf(objectID: object.id) == elf)

        let images = try store.images(objectID: object.id)
        #expect(images.map(\.name) == spec.dataSections.map(\.name))
        #expect(images.map(\.bytes) == spec.dataSections.map(\.image))
        #expect(images.contains { $0.name == ".rodata" })
        #expect(try store.images(objectID: object.id, revision: 1) == images)
        #expect(try store.revisions(objectID: object.id).map(\.change) == [DepotStore.initialChange])
        #expect(try store.object(id: object.id) == object)
    }

    @Test func theSameBytesTwiceAreOneObjectAndTheSecondPutWritesNothing() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let elf = Sample.elf(7)
        let first = try store.putObject(elf: elf, name: "first", images: Sample.images)
        let counts = try store.counts()

        let second = try store.putObject(elf: elf, name: "renamed", images: [])
        #expect(first.created)
        #expect(!second.created)
        #expect(second.object == first.object)  // name, images and time of the first upload
        #expect(try store.counts() == counts)
        #expect(try store.images(objectID: first.object.id) == Sample.images)

        let other = try store.putObject(elf: Sample.elf(8), name: "other", images: Sample.images)
        #expect(other.created)
        #expect(other.object.id != first.object.id)
        #expect(try store.rowCount("objects") == 2)
    }

    @Test func concurrentPutsOfTheSameBytesCreateOneObject() async throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let elf = Sample.elf(9, size: 64 * 1024)
        let created = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { try store.putObject(elf: elf, name: "racer", images: Sample.images).created }
            }
            var count = 0
            for try await c in group where c { count += 1 }
            return count
        }
        #expect(created == 1)
        #expect(try store.rowCount("objects") == 1)
        #expect(try store.rowCount("revisions") == 1)
    }

    @Test func sectionImagesRoundTripExactlyIncludingEmptyAndLargeOnes() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let images = [
            SectionImage(name: ".data", bytes: []),
            SectionImage(name: ".addr_space.1", bytes: (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }),
            SectionImage(name: ".rodata.str", bytes: [0, 0xff, 0, 0x80]),
        ]
        let id = try store.putObject(elf: Sample.elf(3), name: "x", images: images).object.id
        #expect(try store.images(objectID: id) == images)
    }

    @Test func objectsArePagedByID() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        var ids: [String] = []
        for seed in 0..<7 {
            ids.append(try store.putObject(elf: Sample.elf(100 + seed), name: "o\(seed)", images: []).object.id)
        }
        var seen: [String] = []
        var after: String?
        while true {
            let page = try store.objects(limit: 3, afterID: after)
            #expect(page.count <= 3)
            guard let last = page.last else { break }
            seen += page.map(\.id)
            after = last.id
        }
        #expect(seen == ids.sorted())
        #expect(try store.objects().map(\.id) == ids.sorted())
        #expect(throws: StoreError.invalidLimit(0)) { try store.objects(limit: 0) }
        #expect(throws: StoreError.invalidLimit(1001)) { try store.objects(limit: 1001) }
    }

    @Test func invalidPutsAreRefusedAndWriteNothing() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let counts = try store.counts()
        #expect(throws: StoreError.emptyObject) { try store.putObject(elf: [], name: "e", images: []) }
        let twice = [SectionImage(name: ".data", bytes: [1]), SectionImage(name: ".data", bytes: [2])]
        #expect(throws: StoreError.duplicateSection(name: ".data")) {
            try store.putObject(elf: Sample.elf(1), name: "d", images: twice)
        }
        #expect(throws: StoreError.emptySectionName) {
            try store.putObject(elf: Sample.elf(1), name: "d", images: [SectionImage(name: "", bytes: [])])
        }
        #expect(try store.counts() == counts)
    }

    @Test func missingObjectsAreReportedByID() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = String(repeating: "0", count: 64)
        #expect(throws: StoreError.objectNotFound(id: id)) { try store.object(id: id) }
        #expect(throws: StoreError.objectNotFound(id: id)) { try store.elf(objectID: id) }
        #expect(throws: StoreError.objectNotFound(id: id)) { try store.images(objectID: id) }
        #expect(throws: StoreError.objectNotFound(id: id)) { try store.revisions(objectID: id) }
        #expect(throws: StoreError.objectNotFound(id: id)) { try store.deleteObject(id: id) }
        #expect(StoreError.objectNotFound(id: id).description == "object \(id) not found")
    }

    @Test func storedBytesCannotBeChangedBehindTheStoresBack() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(4), name: "x", images: Sample.images).object.id
        #expect(throws: StoreError.self) { try store.executeRaw("UPDATE objects SET size = 1 WHERE id = '\(id)'") }
        #expect(throws: StoreError.self) { try store.executeRaw("UPDATE object_elves SET elf = x'00' WHERE object_id = '\(id)'") }
        #expect(throws: StoreError.self) {
            try store.executeRaw("INSERT INTO object_elves (object_id, elf) VALUES ('\(id)', x'00')")
        }
        #expect(throws: StoreError.self) { try store.executeRaw("UPDATE section_images SET size = 1") }
        #expect(throws: StoreError.self) { try store.executeRaw("UPDATE image_blobs SET bytes = x'00'") }
        #expect(throws: StoreError.self) { try store.executeRaw("UPDATE objects SET current_revision = 1 WHERE id = '\(id)'") }
        try store.executeRaw("UPDATE objects SET name = 'renamed' WHERE id = '\(id)'")  // metadata may change
        #expect(try store.elf(objectID: id) == Sample.elf(4))
        #expect(try store.images(objectID: id) == Sample.images)
    }
}

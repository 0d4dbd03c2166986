@testable import DepotStore
import Foundation
import Testing

@Suite struct RevisionTests {
    @Test func revisionsIncreaseWithTheirChangesAndExactImages() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(1), name: "o", images: Sample.images).object.id

        let second = Sample.images(setting: ".data", byte: 0, to: 0xaa)
        let third = Sample.images(setting: ".bss", byte: 15, to: 0x55, in: second)
        #expect(try store.addRevision(objectID: id, images: second, change: "set .data[0] = 0xaa") == 2)
        let json = #"{"variables":{"bss_int":1431655765}}"#
        #expect(try store.addRevision(objectID: id, images: third, change: json, expectedCurrent: 2) == 3)

        #expect(try store.object(id: id).currentRevision == 3)
        let history = try store.revisions(objectID: id)
        #expect(history.map(\.revision) == [1, 2, 3])
        #expect(history.map(\.change) == [DepotStore.initialChange, "set .data[0] = 0xaa", json])
        #expect(zip(history, history.dropFirst()).allSatisfy { $0.created <= $1.created })

        #expect(try store.images(objectID: id, revision: 1) == Sample.images)
        #expect(try store.images(objectID: id, revision: 2) == second)
        #expect(try store.images(objectID: id, revision: 3) == third)
        #expect(try store.images(objectID: id) == third)
        #expect(throws: StoreError.revisionNotFound(objectID: id, revision: 4)) {
            try store.images(objectID: id, revision: 4)
        }
    }

    @Test func aStaleExpectedCurrentIsAConflictAndWritesNothing() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(1), name: "o", images: Sample.images).object.id
        try store.addRevision(objectID: id, images: Sample.images(setting: ".data", byte: 1, to: 1), change: "a",
                              expectedCurrent: 1)
        let counts = try store.counts()

        #expect(throws: StoreError.revisionConflict(objectID: id, expected: 1, current: 2)) {
            try store.addRevision(objectID: id, images: Sample.images(setting: ".data", byte: 1, to: 2),
                                  change: "b", expectedCurrent: 1)
        }
        #expect(try store.counts() == counts)
        #expect(try store.object(id: id).currentRevision == 2)
        #expect(try store.revisions(objectID: id).map(\.change) == [DepotStore.initialChange, "a"])
        #expect(try store.images(objectID: id) == Sample.images(setting: ".data", byte: 1, to: 1))
        #expect(StoreError.revisionConflict(objectID: id, expected: 1, current: 2).description
                == "revision conflict on object \(id): expected current revision 1, found 2")
    }

    @Test func racingWritersWithTheSameExpectedRevisionHaveOneWinner() async throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let other = try tmp.open()  // a second pool on the file: a second process, in effect
        let id = try store.putObject(elf: Sample.elf(1), name: "o", images: Sample.images).object.id
        let results = await withTaskGroup(of: Result<Int, StoreError>.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    let target = writer % 2 == 0 ? store : other
                    do throws(StoreError) {
                        let images = Sample.images(setting: ".data", byte: 2, to: UInt8(writer))
                        return .success(try target.addRevision(objectID: id, images: images, change: "w\(writer)",
                                                               expectedCurrent: 1))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            var all: [Result<Int, StoreError>] = []
            for await r in group { all.append(r) }
            return all
        }
        let wins = results.compactMap { try? $0.get() }
        #expect(wins == [2])
        for case .failure(let error) in results {
            #expect(error == .revisionConflict(objectID: id, expected: 1, current: 2))
        }
        #expect(try store.rowCount("revisions") == 2)
    }

    @Test func aRevisionHoldsExactlyTheElfsSectionsAtTheirSizes() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(1), name: "o", images: Sample.images).object.id
        let counts = try store.counts()

        #expect(throws: StoreError.missingSection(objectID: id, name: ".bss")) {
            try store.addRevision(objectID: id, images: Array(Sample.images.prefix(2)), change: "x")
        }
        #expect(throws: StoreError.unexpectedSection(objectID: id, name: ".maps")) {
            try store.addRevision(objectID: id, images: Sample.images + [SectionImage(name: ".maps", bytes: [])],
                                  change: "x")
        }
        var grown = Sample.images
        grown[0].bytes.append(0)
        #expect(throws: StoreError.sectionSizeMismatch(objectID: id, name: ".data", expected: 8, found: 9)) {
            try store.addRevision(objectID: id, images: grown, change: "x")
        }
        #expect(throws: StoreError.duplicateSection(name: ".data")) {
            try store.addRevision(objectID: id, images: Sample.images + [Sample.images[0]], change: "x")
        }
        let missing = String(repeating: "f", count: 64)
        #expect(throws: StoreError.objectNotFound(id: missing)) {
            try store.addRevision(objectID: missing, images: Sample.images, change: "x")
        }
        #expect(try store.counts() == counts)

        // Order may differ from the ELF's; every revision reads back in revision 1's order.
        let reordered = Array(Sample.images(setting: ".data", byte: 0, to: 7).reversed())
        #expect(try store.addRevision(objectID: id, images: reordered, change: "reordered") == 2)
        #expect(try store.images(objectID: id) == Array(reordered.reversed()))
    }
}

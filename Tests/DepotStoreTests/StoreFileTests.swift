@testable import DepotStore
import Foundation
import Testing

@Suite struct StoreFileTests {
    @Test func twoStoresOnOneFileSeeEachOthersWrites() throws {
        let tmp = try TemporaryDatabase()
        let a = try tmp.open()
        let b = try tmp.open()
        let id = try a.putObject(elf: Sample.elf(1), name: "shared", images: Sample.images).object.id
        #expect(try b.object(id: id).name == "shared")
        #expect(try b.putObject(elf: Sample.elf(1), name: "again", images: []).created == false)

        let tuned = Sample.images(setting: ".rodata", byte: 0, to: UInt8(ascii: "C"))
        #expect(try b.addRevision(objectID: id, images: tuned, change: "from b", expectedCurrent: 1) == 2)
        #expect(try a.object(id: id).currentRevision == 2)
        #expect(try a.images(objectID: id) == tuned)
        #expect(throws: StoreError.revisionConflict(objectID: id, expected: 1, current: 2)) {
            try a.addRevision(objectID: id, images: Sample.images, change: "from a", expectedCurrent: 1)
        }

        let load = try a.createLoad(objectID: id, state: .loaded)
        #expect(throws: StoreError.objectLoaded(id: id, loadIDs: [load.id])) { try b.deleteObject(id: id) }
        try a.updateLoad(id: load.id, state: .unloaded)
        try b.deleteObject(id: id)
        #expect(try a.objects() == [])
        #expect(try a.integrityCheck() == ["ok"])
        #expect(try b.integrityCheck() == ["ok"])
    }

    @Test func aBusyWorkloadLeavesASoundFile() async throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let other = try tmp.open()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    let target = worker % 2 == 0 ? store : other
                    for round in 0..<10 {
                        let (object, _) = try target.putObject(elf: Sample.elf(worker * 100 + round), name: "w",
                                                               images: Sample.images)
                        try target.addRevision(objectID: object.id,
                                               images: Sample.images(setting: ".data", byte: 3, to: UInt8(round)),
                                               change: "round \(round)")
                        let load = try target.createLoad(objectID: object.id, state: .loaded)
                        try target.updateLoad(id: load.id, state: .unloaded)
                        if round % 3 == 0 { try target.deleteObject(id: object.id) }
                    }
                }
            }
            try await group.waitForAll()
        }
        let counts = try store.counts()
        #expect(counts["objects"] == 4 * 6)
        #expect(counts["revisions"] == 4 * 6 * 2)
        #expect(counts["section_images"] == 4 * 6 * 2 * Sample.images.count)
        #expect(counts["loads"] == 4 * 6)
        #expect(try store.integrityCheck() == ["ok"])
        #expect(try store.readStrings("PRAGMA foreign_key_check") == [])
    }

    @Test func aMissingDirectoryCannotBeOpened() throws {
        let path = "/nonexistent-\(UUID().uuidString)/depot.sqlite"
        let error = #expect(throws: StoreError.self) { try DepotStore(path: path) }
        guard case .cannotOpen(let reported, _) = error else {
            Issue.record("expected cannotOpen, found \(String(describing: error))")
            return
        }
        #expect(reported == path)
    }

    @Test func anInMemoryStoreWorksLikeAFile() throws {
        let store = try DepotStore.inMemory()
        #expect(try store.appliedMigrations().map(\.name) == DepotStore.knownMigrations)
        let (object, created) = try store.putObject(elf: Sample.elf(5), name: "mem", images: Sample.images)
        #expect(created)
        #expect(try store.addRevision(objectID: object.id, images: Sample.images, change: "same", expectedCurrent: 1) == 2)
        #expect(try store.readStrings("PRAGMA foreign_keys") == ["1"])
        #expect(try store.integrityCheck() == ["ok"])
    }
}

@testable import DepotStore
import Foundation
import Testing

@Suite struct LoadTests {
    static let kernelIDs = #"{"maps":{"data_map":12,".rodata":13},"programs":{"prog":44}}"#

    @Test func loadsAreCreatedUpdatedListedAndDeleted() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(1), name: "o", images: Sample.images).object.id
        try store.addRevision(objectID: id, images: Sample.images(setting: ".data", byte: 0, to: 9), change: "tune")

        let load = try store.createLoad(objectID: id, state: .loaded, pinDirectory: "/sys/fs/bpf/bpfdepot/1",
                                        kernelIDs: Self.kernelIDs)
        #expect(load.objectID == id)
        #expect(load.revision == 2)  // the current one
        #expect(load.state == .loaded)
        #expect(load.pinDirectory == "/sys/fs/bpf/bpfdepot/1")
        #expect(load.kernelIDs == Self.kernelIDs)
        #expect(try store.load(id: load.id) == load)

        let old = try store.createLoad(objectID: id, revision: 1, state: .failed)
        #expect(old.revision == 1)
        #expect(old.pinDirectory == nil)
        #expect(old.kernelIDs == "{}")

        #expect(try store.loads().map(\.id) == [load.id, old.id])
        #expect(try store.loads(objectID: id, state: .loaded).map(\.id) == [load.id])
        #expect(try store.loads(state: .failed).map(\.id) == [old.id])
        #expect(try store.loads(limit: 1, afterID: load.id).map(\.id) == [old.id])
        #expect(try store.loads(objectID: String(repeating: "a", count: 64)) == [])

        let unloaded = try store.updateLoad(id: load.id, state: .unloaded, kernelIDs: "{}")
        #expect(unloaded.state == .unloaded)
        #expect(unloaded.kernelIDs == "{}")
        #expect(unloaded.created == load.created)
        #expect(unloaded.updated >= load.updated)
        let lost = try store.updateLoad(id: load.id, state: .lost)
        #expect(lost.kernelIDs == "{}")  // kept when not given

        try store.deleteLoad(id: load.id)
        #expect(throws: StoreError.loadNotFound(id: load.id)) { try store.load(id: load.id) }
        #expect(throws: StoreError.loadNotFound(id: load.id)) { try store.deleteLoad(id: load.id) }
        #expect(throws: StoreError.loadNotFound(id: 999)) { try store.updateLoad(id: 999, state: .lost) }

        // AUTOINCREMENT: a deleted id is never handed out again.
        try store.deleteLoad(id: old.id)
        let next = try store.createLoad(objectID: id, state: .unloaded)
        #expect(next.id > old.id)
    }

    @Test func deletingAnObjectIsRefusedWhileLoadedAndCascadesAfterUnload() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(1), name: "o", images: Sample.images).object.id
        try store.addRevision(objectID: id, images: Sample.images(setting: ".data", byte: 0, to: 1), change: "r2")
        let keep = try store.putObject(elf: Sample.elf(2), name: "keep", images: Sample.images).object.id
        let keptLoad = try store.createLoad(objectID: keep, state: .loaded)

        let live = try store.createLoad(objectID: id, state: .loaded)
        let failed = try store.createLoad(objectID: id, revision: 1, state: .failed)
        let counts = try store.counts()

        #expect(throws: StoreError.objectLoaded(id: id, loadIDs: [live.id])) { try store.deleteObject(id: id) }
        #expect(throws: StoreError.loadStillLoaded(id: live.id)) { try store.deleteLoad(id: live.id) }
        #expect(try store.counts() == counts)

        try store.updateLoad(id: live.id, state: .unloaded)
        try store.deleteObject(id: id)

        #expect(throws: StoreError.objectNotFound(id: id)) { try store.object(id: id) }
        #expect(throws: StoreError.loadNotFound(id: failed.id)) { try store.load(id: failed.id) }
        let left = try store.counts()
        #expect(left["objects"] == 1)
        #expect(left["revisions"] == 1)
        #expect(left["section_images"] == Sample.images.count)
        // The deleted object's blobs went with it; the kept one's (.data and .rodata; .bss is zeros) stayed.
        #expect(left["image_blobs"] == 2)
        #expect(left["loads"] == 1)
        #expect(try store.load(id: keptLoad.id).state == .loaded)
        #expect(try store.images(objectID: keep) == Sample.images)
        #expect(try store.readStrings("PRAGMA foreign_key_check") == [])
        #expect(try store.integrityCheck() == ["ok"])
    }

    @Test func theSchemaRefusesToDropALoadedObjectEvenWithoutTheStore() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(1), name: "o", images: Sample.images).object.id
        _ = try store.createLoad(objectID: id, state: .loaded)
        let error = #expect(throws: StoreError.self) { try store.executeRaw("DELETE FROM objects") }
        #expect(error?.description.contains("unload it first") == true)
        #expect(try store.rowCount("objects") == 1)
    }

    @Test func invalidLoadsAreRefusedAndWriteNothing() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(1), name: "o", images: Sample.images).object.id
        let counts = try store.counts()
        #expect(throws: StoreError.invalidKernelIDs(reason: "\"{maps: 1\"")) {
            try store.createLoad(objectID: id, state: .loaded, kernelIDs: "{maps: 1")
        }
        #expect(throws: StoreError.emptyPinDirectory) {
            try store.createLoad(objectID: id, state: .loaded, pinDirectory: "")
        }
        #expect(throws: StoreError.revisionNotFound(objectID: id, revision: 2)) {
            try store.createLoad(objectID: id, revision: 2, state: .loaded)
        }
        let missing = String(repeating: "e", count: 64)
        #expect(throws: StoreError.objectNotFound(id: missing)) {
            try store.createLoad(objectID: missing, state: .loaded)
        }
        #expect(try store.counts() == counts)

        let load = try store.createLoad(objectID: id, state: .loaded)
        #expect(throws: StoreError.invalidKernelIDs(reason: "\"\"")) {
            try store.updateLoad(id: load.id, state: .unloaded, kernelIDs: "")
        }
        #expect(try store.load(id: load.id) == load)
        #expect(throws: StoreError.invalidLimit(0)) { try store.loads(limit: 0) }
    }

    @Test func aPinDirectoryHasOneLiveLoadAtATime() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let a = try store.putObject(elf: Sample.elf(1), name: "a", images: []).object.id
        let b = try store.putObject(elf: Sample.elf(2), name: "b", images: []).object.id
        let dir = "/sys/fs/bpf/bpfdepot/x"
        let first = try store.createLoad(objectID: a, state: .loaded, pinDirectory: dir)
        #expect(throws: StoreError.pinDirectoryInUse(path: dir, loadID: first.id)) {
            try store.createLoad(objectID: b, state: .loaded, pinDirectory: dir)
        }
        // A failed attempt may name the directory it would have used.
        let failed = try store.createLoad(objectID: b, state: .failed, pinDirectory: dir)
        #expect(throws: StoreError.pinDirectoryInUse(path: dir, loadID: first.id)) {
            try store.updateLoad(id: failed.id, state: .loaded)
        }
        try store.updateLoad(id: first.id, state: .unloaded)
        let second = try store.createLoad(objectID: b, state: .loaded, pinDirectory: dir)
        #expect(try store.loads(state: .loaded).map(\.id) == [second.id])
        // Re-marking a loaded load as loaded (new kernel ids) is not a clash with itself.
        #expect(try store.updateLoad(id: second.id, state: .loaded, kernelIDs: "[1,2]").kernelIDs == "[1,2]")
    }
}

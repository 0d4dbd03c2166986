@testable import DepotStore
import Foundation
import Testing

@Suite struct LoadExportsTests {
    @Test func exportListsAreReplacedKeptAcrossReopeningAndGoWithTheirLoad() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(1), name: "o", images: Sample.images).object.id
        let load = try store.createLoad(objectID: id, state: .loaded)
        let other = try store.createLoad(objectID: id, state: .loaded)
        #expect(try store.exports(loadID: load.id) == [])

        // Sorted, duplicates collapsed; a second call replaces the list.
        #expect(try store.setExports(loadID: load.id, names: ["stats", "hits", "stats"]) == ["hits", "stats"])
        #expect(try store.setExports(loadID: other.id, names: ["z"]) == ["z"])
        #expect(try store.setExports(loadID: load.id, names: ["b", "a"]) == ["a", "b"])
        #expect(try store.exports(loadID: load.id) == ["a", "b"])
        try store.close()

        // The list outlives a restart of the service.
        let reopened = try tmp.open()
        #expect(try reopened.exports(loadID: load.id) == ["a", "b"])
        #expect(try reopened.exports(loadID: other.id) == ["z"])
        #expect(try reopened.objectCount() == 1)

        // Unknown loads are refused; deleting a load deletes its list (ON DELETE CASCADE).
        #expect(throws: StoreError.loadNotFound(id: 999)) { try reopened.exports(loadID: 999) }
        #expect(throws: StoreError.loadNotFound(id: 999)) { try reopened.setExports(loadID: 999, names: ["a"]) }
        try reopened.updateLoad(id: load.id, state: .unloaded)
        try reopened.deleteLoad(id: load.id)
        #expect(try reopened.readStrings("SELECT name FROM load_exports ORDER BY load_id, name") == ["z"])
        #expect(try reopened.setExports(loadID: other.id, names: []) == [])
        #expect(try reopened.rowCount("load_exports") == 0)
    }
}

@testable import DepotStore
import Foundation
import GRDB
import Testing

@Suite struct LinkStoreTests {
    @Test func linksAreCreatedAttachedListedDetachedAndGoWithTheirLoad() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(1), name: "o", images: Sample.images).object.id
        let load = try store.createLoad(objectID: id, state: .loaded, pinDirectory: "/sys/fs/bpf/bpfdepot/1")
        let other = try store.createLoad(objectID: id, state: .loaded, pinDirectory: "/sys/fs/bpf/bpfdepot/2")

        let request = #"{"program":"count_getpid"}"#
        let a = try store.createLink(loadID: load.id, program: "count_getpid", kind: "raw_tracepoint",
                                     target: "sys_enter", request: request)
        #expect(a.state == .failed)  // written before the kernel attach
        #expect(a.kernelID == nil && a.pinPath == nil)
        #expect(a.request == request)
        let attached = try store.updateLink(id: a.id, state: .attached, kernelID: 42, pinPath: "/sys/fs/bpf/bpfdepot/1/links/\(a.id)")
        #expect(attached.state == .attached)
        #expect(attached.kernelID == 42)
        #expect(attached.pinPath == "/sys/fs/bpf/bpfdepot/1/links/\(a.id)")
        #expect(try store.link(id: a.id) == attached)

        let b = try store.createLink(loadID: load.id, program: "xdp_count", kind: "xdp", target: "veth0")
        try store.updateLink(id: b.id, state: .attached, kernelID: 43)
        let c = try store.createLink(loadID: other.id, program: "p", kind: "tracing", target: "do_nanosleep", state: .attached)
        #expect(try store.links(loadID: load.id).map(\.id) == [a.id, b.id])
        #expect(try store.links(state: .attached).map(\.id) == [a.id, b.id, c.id])

        // An unload detaches all of a load's links at once, and only its own.
        try store.detachLinks(loadID: load.id)
        #expect(try store.links(loadID: load.id).map(\.state) == [.detached, .detached])
        #expect(try store.link(id: c.id).state == .attached)
        #expect(try store.link(id: a.id).kernelID == 42)  // kept: what it was

        #expect(throws: StoreError.loadNotFound(id: 999)) { try store.links(loadID: 999) }
        #expect(throws: StoreError.loadNotFound(id: 999)) { try store.createLink(loadID: 999, program: "p", kind: "k", target: "t") }
        #expect(throws: StoreError.linkNotFound(id: 999)) { try store.link(id: 999) }
        #expect(throws: StoreError.self) { try store.createLink(loadID: load.id, program: "p", kind: "k", target: "t", request: "{") }

        // A link's row goes with its load's.
        try store.updateLoad(id: load.id, state: .unloaded)
        try store.deleteLoad(id: load.id)
        #expect(throws: StoreError.linkNotFound(id: a.id)) { try store.link(id: a.id) }
        #expect(try store.links(state: .attached).map(\.id) == [c.id])
    }

    @Test func theSchemaRefusesStatesAndIdsNoCodeWrites() throws {
        let tmp = try TemporaryDatabase()
        let store = try tmp.open()
        let id = try store.putObject(elf: Sample.elf(2), name: "o", images: Sample.images).object.id
        let load = try store.createLoad(objectID: id, state: .loaded)
        let link = try store.createLink(loadID: load.id, program: "p", kind: "k", target: "t")
        let queue = try DatabaseQueue(path: tmp.path)
        #expect(throws: (any Error).self) {
            try queue.write { try $0.execute(sql: "UPDATE links SET state = 'dangling' WHERE id = ?", arguments: [link.id]) }
        }
        #expect(throws: (any Error).self) {
            try queue.write { try $0.execute(sql: "UPDATE links SET kernel_id = 0 WHERE id = ?", arguments: [link.id]) }
        }
        #expect(throws: (any Error).self) {
            try queue.write { try $0.execute(sql: "UPDATE links SET program = '' WHERE id = ?", arguments: [link.id]) }
        }
    }
}

import BPFObject
import Foundation
import Glibc
import Testing

@testable import BPFKernel
import KernelTestSupport

/// Pages of map entries straight from the kernel (`LoadedMap.page`): batch lookups where the map
/// type has them, the key walk where the kernel says it has none (a devmap here), per-CPU value
/// sizing, and update flags. Maps are made here with BPF_MAP_CREATE, filled from user space.
@Suite(.enabled(if: SysTestSupport.bpfPermitted, SysTestSupport.skipMessage))
struct MapEntriesKernelTests {
    static func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func u32(_ b: [UInt8]) -> UInt32 { b.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.littleEndian }
    static func u64(_ b: ArraySlice<UInt8>) -> UInt64 { Array(b).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian }

    /// A map made here, wrapped as the loader wraps the maps it creates.
    static func map(_ type: BPFMapType, key: UInt32, value: UInt32, max: UInt32, flags: UInt32 = 0, name: String) throws -> LoadedMap {
        let fd = try BPFSys.mapCreate(type: type.rawValue, keySize: key, valueSize: value, maxEntries: max, flags: flags, name: name)
        let spec = MapSpec(name: name, realName: name, type: type, keySize: key, valueSize: value, maxEntries: max,
                           flags: flags, section: ".maps", role: .user(offset: 0))
        return LoadedMap(spec: spec, fd: fd, id: 0, region: nil)
    }

    /// Every page from the start: the entries in the order read, and each page's cursor.
    static func allPages(_ m: LoadedMap, limit: Int) throws -> (entries: [MapEntry], cursors: [MapCursor], sizes: [Int]) {
        var entries: [MapEntry] = [], cursors: [MapCursor] = [], sizes: [Int] = []
        var cursor: MapCursor?
        repeat {
            let page = try m.page(limit: limit, after: cursor)
            entries += page.entries
            sizes.append(page.entries.count)
            cursor = page.next
            if let c = cursor { cursors.append(c) }
        } while cursor != nil && sizes.count < 1000
        return (entries, cursors, sizes)
    }

    /// The independent count: /sys/devices/system/cpu/possible read here with Foundation.
    static func possibleFromSysfs() throws -> Int {
        let text = try String(contentsOfFile: "/sys/devices/system/cpu/possible", encoding: .utf8)
        return text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").reduce(0) { n, part in
            let r = part.split(separator: "-").compactMap { Int($0) }
            return n + (r.count == 2 ? r[1] - r[0] + 1 : 1)
        }
    }

    @Test("a kernel CPU list counts its CPUs; the possible count equals sysfs's")
    func cpuLists() throws {
        #expect(BPFSys.parseCPUList("0-3\n") == 4)
        #expect(BPFSys.parseCPUList("0,2-5") == 5)
        #expect(BPFSys.parseCPUList("7") == 1)
        #expect(BPFSys.parseCPUList("") == nil)
        #expect(BPFSys.parseCPUList("3-1") == nil)
        #expect(BPFSys.parseCPUList("0-") == nil)
        #expect(BPFSys.parseCPUList("x") == nil)
        #expect(try BPFSys.possibleCPUs() == Self.possibleFromSysfs())
        #expect(LoadedMap.possibleCPUs == (try Self.possibleFromSysfs()))
    }

    @Test("array: batch pages of 3 give every index once, in order, with its value")
    func arrayBatchPages() throws {
        let m = try Self.map(.array, key: 4, value: 8, max: 10, name: "pg_array")
        for i: UInt32 in 0..<10 { try m.update(key: Self.le32(i), value: Self.le64(UInt64(i) * 3 + 1)) }
        let (entries, cursors, sizes) = try Self.allPages(m, limit: 3)
        #expect(entries.map { Self.u32($0.key) } == Array(0..<10))
        #expect(entries.map { Self.u64($0.value[...]) } == (0..<10).map { UInt64($0) * 3 + 1 })
        #expect(sizes.allSatisfy { $0 <= 3 } && sizes.prefix(3) == [3, 3, 3], "\(sizes)")
        #expect(cursors.allSatisfy { if case .batch = $0 { true } else { false } }, "arrays have batch operations: \(cursors)")
        // A cursor survives its text form (what clients send back as `after`).
        for c in cursors { #expect(MapCursor(text: c.text) == c) }
        #expect(MapCursor(text: "zz") == nil && MapCursor(text: "b") == nil && MapCursor(text: "q00") == nil)
    }

    @Test("hash: batch pages of 7 over 50 keys cover each key exactly once; a deleted key is not read")
    func hashBatchPages() throws {
        let m = try Self.map(.hash, key: 4, value: 4, max: 64, name: "pg_hash")
        let keys = (0..<50).map { UInt32($0) * 7919 + 3 }
        for k in keys { try m.update(key: Self.le32(k), value: Self.le32(k ^ 0xffff)) }
        try #require(try m.delete(key: Self.le32(keys[10])))
        let (entries, cursors, _) = try Self.allPages(m, limit: 7)
        let read = entries.map { Self.u32($0.key) }
        #expect(read.count == 49 && Set(read) == Set(keys).subtracting([keys[10]]), "\(read.count) keys read")
        for e in entries { #expect(Self.u32(e.value) == Self.u32(e.key) ^ 0xffff) }
        #expect(cursors.allSatisfy { if case .batch = $0 { true } else { false } })
        // An empty hash map: one empty page, no cursor.
        let empty = try Self.map(.hash, key: 4, value: 4, max: 4, name: "pg_empty")
        let page = try empty.page(limit: 5, after: nil)
        #expect(page.entries.isEmpty && page.next == nil)
    }

    @Test("per-CPU array: a value is round_up(size, 8) bytes per possible CPU, read and written as such")
    func perCPUValueSizing() throws {
        let cpus = try Self.possibleFromSysfs()
        let m = try Self.map(.percpuArray, key: 4, value: 12, max: 2, name: "pg_percpu")
        #expect(m.isPerCPU)
        #expect(try m.valueBytes() == 16 * cpus)
        var value = [UInt8](repeating: 0, count: 16 * cpus)
        for c in 0..<cpus { value.replaceSubrange((c * 16)..<(c * 16 + 8), with: Self.le64(UInt64(100 + c))) }
        try m.update(key: Self.le32(1), value: value)
        let entries = try Self.allPages(m, limit: 10).entries
        #expect(entries.count == 2)
        let one = try #require(entries.first { Self.u32($0.key) == 1 })
        #expect(one.value.count == 16 * cpus)
        #expect((0..<cpus).map { Self.u64(one.value[($0 * 16)..<($0 * 16 + 8)]) } == (0..<cpus).map { UInt64(100 + $0) })
        #expect(try m.lookup(key: Self.le32(1)) == one.value)
    }

    @Test("LPM trie: batch pages of 2 (generic batch ops, Linux 5.18+) give each prefix once")
    func lpmTriePages() throws {
        // struct { u32 prefixlen; u8 addr[4]; } -> u32; LPM tries need BPF_F_NO_PREALLOC.
        let m = try Self.map(.lpmTrie, key: 8, value: 4, max: 16, flags: 1, name: "pg_lpm")
        let routes: [(UInt32, [UInt8], UInt32)] = [(8, [10, 0, 0, 0], 1), (24, [192, 168, 1, 0], 2), (16, [192, 168, 0, 0], 3)]
        for (len, addr, v) in routes { try m.update(key: Self.le32(len) + addr, value: Self.le32(v)) }
        let (entries, cursors, sizes) = try Self.allPages(m, limit: 2)
        #expect(sizes.first == 2 && sizes.allSatisfy { $0 <= 2 }, "\(sizes)")
        // Batched on the host (6.18) and in the matrix's 6.12 and 6.1 alike.
        #expect(!cursors.isEmpty && cursors.allSatisfy { if case .batch = $0 { true } else { false } }, "\(cursors)")
        let table = Dictionary(entries.map { (Self.u32(Array($0.key.prefix(4))), Self.u32($0.value)) }, uniquingKeysWith: { a, _ in a })
        #expect(entries.count == 3 && table == [8: 1, 24: 2, 16: 3])
    }

    @Test("a map whose kernel has no batch lookup (a devmap: ENOTSUPP) is walked key by key, with key cursors")
    func noBatchFallsBackToTheKeyWalk() throws {
        // DEVMAP has get_next_key and lookup but no batch ops on any kernel: the fallback's
        // trigger, seen on this kernel.
        let m = try Self.map(.devmap, key: 4, value: 4, max: 8, name: "pg_devmap")
        let lo = UInt32(if_nametoindex("lo"))
        try #require(lo > 0)
        for slot: UInt32 in [1, 4, 6] { try m.update(key: Self.le32(slot), value: Self.le32(lo)) }
        let refused = #expect(throws: BPFError.self) {
            _ = try BPFSys.mapLookupBatch(fd: m.fd, inBatch: nil, batchSize: 8, keySize: 4, valueSize: 4, count: 4)
        }
        let errno = try #require(refused?.errno)
        #expect(BPFSys.isBatchUnsupported(errno), "errno \(errno)")

        var entries: [MapEntry] = [], cursors: [MapCursor] = []
        var cursor: MapCursor?
        repeat {
            let page = try m.readPage(limit: 2, after: cursor)
            #expect(page.entries.count <= 2)
            entries += page.entries
            cursor = page.next
            if let c = cursor { cursors.append(c) }
        } while cursor != nil && cursors.count < 20
        #expect(entries.map { Self.u32($0.key) } == [1, 4, 6], "empty slots are skipped, filled ones read once, in index order")
        #expect(entries.allSatisfy { Self.u32($0.value) == lo })
        #expect(!cursors.isEmpty && cursors.allSatisfy { if case .afterKey = $0 { true } else { false } }, "\(cursors)")
    }

    @Test("large values: a page holds at most maxPageBytes of keys and values, and the pages still cover every key")
    func pagesAreBoundedInBytes() throws {
        let m = try Self.map(.array, key: 4, value: 1 << 20, max: 12, name: "pg_large")
        try m.update(key: Self.le32(11), value: [UInt8](repeating: 0xab, count: 1 << 20))
        let first = try m.page(limit: 100, after: nil)
        #expect(first.entries.count == LoadedMap.maxPageBytes / (4 + (1 << 20)), "\(first.entries.count) entries of 1 MiB")
        let all = try Self.allPages(m, limit: 100).entries
        #expect(all.map { Self.u32($0.key) } == Array(0..<12))
        #expect(all.last?.value == [UInt8](repeating: 0xab, count: 1 << 20))
    }

    @Test("update flags: create-only refuses an existing key (EEXIST), replace-only a missing one (ENOENT)")
    func updateFlags() throws {
        let m = try Self.map(.hash, key: 4, value: 4, max: 4, name: "pg_flags")
        try m.update(key: Self.le32(1), value: Self.le32(10), flags: BPFConstants.UpdateFlag.noExist)
        let exists = #expect(throws: BPFError.self) {
            try m.update(key: Self.le32(1), value: Self.le32(11), flags: BPFConstants.UpdateFlag.noExist)
        }
        #expect(exists?.errno == EEXIST)
        let missing = #expect(throws: BPFError.self) {
            try m.update(key: Self.le32(2), value: Self.le32(20), flags: BPFConstants.UpdateFlag.exist)
        }
        #expect(missing?.errno == ENOENT)
        try m.update(key: Self.le32(1), value: Self.le32(12), flags: BPFConstants.UpdateFlag.exist)
        #expect(try m.lookup(key: Self.le32(1)) == Self.le32(12))
        #expect(try m.lookup(key: Self.le32(2)) == nil)
    }

    @Test("a ring buffer has no entries by key: page refuses it without a syscall")
    func ringBufferIsNotPaged() throws {
        let m = try Self.map(.ringbuf, key: 0, value: 0, max: 4096, name: "pg_ring")
        #expect(!m.supportsLookup)
        #expect(throws: BPFError.self) { _ = try m.page(limit: 10, after: nil) }
    }
}

import BPFObject
import BPFTestSupport
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

@testable import BPFKernel
import KernelTestSupport

/// The "run" fixtures (Tests/Fixtures/README.md) loaded through `Loader.load`, their programs
/// run in the order their FACTS comments give, and every documented result read back through
/// the live views: arena variables straight from the mmap'ed arena, `.bss`/`.data`/`.rodata`
/// from the mmap'ed global-data maps, and arena pages the programs allocated through the arena
/// mapping itself (the pointers the programs store are user addresses).
///
/// The expected values are the closed forms of the FACTS blocks, which were checked with
/// libbpf 1.6. Where a value depends on where the arena globals sit (libbpf's `arena_data_off`:
/// arena offset 0 unless the kernel accepts full-range ld_imm64 offsets, then the last pages),
/// the expectation is computed from `obj.arenaDataOffset`.
///
/// Serialized: the fixed-address arenas can be mapped only once per process at a time.
@Suite("loader: arena and global-data fixtures run", .serialized,
       .enabled(if: SysTestSupport.bpfPermitted, SysTestSupport.skipMessage))
struct ArenaFixtureLoadTests {
    // MARK: helpers

    static func spec(_ fixture: String) throws -> ObjectSpec {
        try ObjectSpec(elf: Fixtures.bytes(fixture), name: fixture)
    }

    /// A little-endian integer at `offset` of `bytes`.
    static func le<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int = 0, as: T.Type = T.self) -> T {
        precondition(offset + MemoryLayout<T>.size <= bytes.count, "reading \(T.self) at \(offset) of \(bytes.count) bytes")
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }.littleEndian
    }

    static func u32(_ obj: LoadedObject, _ name: String, at offset: Int = 0) throws -> UInt32 {
        le(try obj.read(variable: name), at: offset)
    }
    static func i32(_ obj: LoadedObject, _ name: String, at offset: Int = 0) throws -> Int32 {
        le(try obj.read(variable: name), at: offset)
    }
    static func u64(_ obj: LoadedObject, _ name: String, at offset: Int = 0) throws -> UInt64 {
        le(try obj.read(variable: name), at: offset)
    }
    static func i64(_ obj: LoadedObject, _ name: String, at offset: Int = 0) throws -> Int64 {
        le(try obj.read(variable: name), at: offset)
    }
    static func u8(_ obj: LoadedObject, _ name: String, at offset: Int = 0) throws -> UInt8 {
        le(try obj.read(variable: name), at: offset)
    }

    /// `count` bytes of the arena at user address `address`, read through the loader's mapping.
    static func arenaBytes(_ obj: LoadedObject, at address: UInt64, count: Int) throws -> [UInt8] {
        let base = try #require(obj.arenaAddress)
        let index = try #require(obj.spec.arenaMapIndex)
        let region = try #require(obj.maps[index].region)
        try #require(address >= base && address + UInt64(count) <= base + UInt64(region.length),
                     "0x\(String(address, radix: 16)) is outside the arena")
        return try region.read(at: Int(address - base), count: count)
    }

    static func arenaU64(_ obj: LoadedObject, at address: UInt64) throws -> UInt64 {
        le(try arenaBytes(obj, at: address, count: 8))
    }
    static func arenaU32(_ obj: LoadedObject, at address: UInt64) throws -> UInt32 {
        le(try arenaBytes(obj, at: address, count: 4))
    }

    /// Runs a syscall program (no data) and returns r0.
    @discardableResult
    static func run(_ obj: LoadedObject, _ program: String) throws -> UInt32 {
        try obj.run(program: program).returnValue
    }

    static var page: UInt64 { UInt64(MappedRegion.pageSize) }

    /// The first page `bpf_arena_alloc_pages(NULL, ...)` hands out: page 1 when the globals sit
    /// at arena offset 0 (the loader's copy faulted page 0 in), page 0 when they sit at the end.
    static func firstFreePage(_ obj: LoadedObject) throws -> UInt64 {
        let base = try #require(obj.arenaAddress)
        return obj.arenaDataOffset == 0 ? base + page : base
    }

    /// A `CONFIG_X=value` line of the kernel's config (/boot/config-$(uname -r), else /proc/config.gz), read independently of the loader's parser.
    static func kernelConfig(_ option: String) throws -> String {
        let text = try Fixtures.run("/bin/sh", ["-c", "{ cat /boot/config-$(uname -r) 2>/dev/null || zcat /proc/config.gz; } | grep '^\(option)='"]).get()
        return String(text.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(option.count + 1))
    }

    /// KERNEL_VERSION(a, b, c) from `uname -r`, computed here rather than by `KernelVersion`.
    static func unameVersionCode() throws -> UInt32 {
        let release = try Fixtures.run("/bin/uname", ["-r"]).get()
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(3).compactMap { UInt32($0) }
        try #require(parts.count == 3, "uname -r: \(release)")
        return parts[0] << 16 | parts[1] << 8 | min(parts[2], 255)
    }

    // MARK: arena_list

    /// Default `list_len` 100: build, sum, free, build, sum; the list is also walked from user
    /// space through the mmap'ed arena, following the `next` pointers the program stored.
    @Test(.needsArenaMaps, .arenaTally) func arenaListDefaultLength() throws {
        let obj = try Loader.load(Self.spec("arena_list"))
        defer { obj.unload() }
        #expect(obj.arenaAddress == 0x1100_0000_0000)
        #expect(try Self.u32(obj, "list_len") == 100)
        #expect(try Self.u32(obj, "list_magic") == 0x4c49_5354)
        #expect(try Self.u64(obj, "list_head") == 0)

        let n: UInt64 = 100
        let head = try Self.firstFreePage(obj)
        #expect(try Self.run(obj, "list_build") == 0)
        #expect(try Self.u32(obj, "list_nodes") == 100)
        #expect(try Self.u32(obj, "list_target") == 100)
        #expect(try Self.u32(obj, "list_pages") == 1)
        #expect(try Self.u32(obj, "page_used") == 100)
        #expect(try Self.u64(obj, "list_head") == head)
        #expect(try Self.u64(obj, "page_addr", at: 0) == head)
        #expect(try Self.u64(obj, "page_addr", at: 8) == 0)
        #expect(try Self.u64(obj, "list_tail") == head + (n - 1) * 24)
        if obj.arenaDataOffset == 0 { #expect(try Self.u64(obj, "list_tail") == 0x1100_0000_1948) }

        // User-space walk: node = {next, prev, value}; values 1..N in order, prev links back.
        var node = try Self.u64(obj, "list_head"), prev: UInt64 = 0, values: [UInt64] = []
        while node != 0 && values.count <= 200 {
            let bytes = try Self.arenaBytes(obj, at: node, count: 24)
            #expect(Self.le(bytes, at: 8, as: UInt64.self) == prev)
            values.append(Self.le(bytes, at: 16))
            prev = node
            node = Self.le(bytes, at: 0)
        }
        #expect(values == Array(1...n))
        #expect(prev == (try Self.u64(obj, "list_tail")))

        try Self.expectListSum(obj, n: n)

        #expect(try Self.run(obj, "list_free") == 1)
        #expect(try Self.u32(obj, "bss_freed_pages") == 1)
        #expect(try Self.u32(obj, "bss_free_verified") == 1)
        for name in ["list_head", "list_tail"] { #expect(try Self.u64(obj, name) == 0, "\(name)") }
        for name in ["list_nodes", "list_pages", "page_used"] { #expect(try Self.u32(obj, name) == 0, "\(name)") }

        // Build again after the free: the same sums.
        #expect(try Self.run(obj, "list_build") == 0)
        #expect(try Self.u64(obj, "list_head") == head)
        try Self.expectListSum(obj, n: n)
    }

    /// list_sum's results for a list of values 1..n.
    static func expectListSum(_ obj: LoadedObject, n: UInt64, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let sum = n * (n + 1) / 2
        #expect(try run(obj, "list_sum") == UInt32(n), sourceLocation: sourceLocation)
        #expect(try u64(obj, "list_sum_result") == sum, sourceLocation: sourceLocation)
        #expect(try u64(obj, "bss_sum") == sum, sourceLocation: sourceLocation)
        #expect(try u64(obj, "bss_sum_back") == sum, sourceLocation: sourceLocation)
        #expect(try u64(obj, "bss_weighted") == n * (n + 1) * (2 * n + 1) / 6, sourceLocation: sourceLocation)
        #expect(try u32(obj, "bss_count") == UInt32(n), sourceLocation: sourceLocation)
    }

    /// `list_len` patched in the image before load: N = min(list_len, 5440) nodes on
    /// P = ceil(N / 170) pages (1000 -> 500500 on 6 pages; 100000 is clamped to 5440 -> 14799520
    /// on 32 pages).
    @Test(.needsArenaMaps, .arenaTally, arguments: [1000, 100_000] as [UInt64])
    func arenaListPatchedLength(listLen: UInt64) throws {
        var spec = try Self.spec("arena_list")
        try spec.patch(variable: "list_len", with: .uint(listLen))
        let obj = try Loader.load(spec)
        defer { obj.unload() }
        #expect(try Self.u32(obj, "list_len") == UInt32(listLen))   // frozen .rodata, read from its mmap

        let n = min(listLen, 5440), pages = (n + 169) / 170
        let head = try Self.firstFreePage(obj)
        #expect(try Self.run(obj, "list_build") == 0)
        #expect(try Self.u32(obj, "list_nodes") == UInt32(n))
        #expect(try Self.u32(obj, "list_target") == UInt32(n))
        #expect(try Self.u32(obj, "list_pages") == UInt32(pages))
        #expect(try Self.u32(obj, "page_used") == UInt32(n - 170 * (pages - 1)))
        #expect(try Self.u64(obj, "list_head") == head)
        for i in 0..<Int(pages) {
            #expect(try Self.u64(obj, "page_addr", at: 8 * i) == head + UInt64(i) * Self.page, "page_addr[\(i)]")
        }
        // The last node is the last one carved from the last page.
        #expect(try Self.u64(obj, "list_tail") == head + (pages - 1) * Self.page + (n - 170 * (pages - 1) - 1) * 24)

        try Self.expectListSum(obj, n: n)
        if listLen == 1000 {
            #expect(try Self.u64(obj, "bss_sum") == 500_500)
            #expect(try Self.u64(obj, "bss_weighted") == 333_833_500)
        } else {
            #expect(try Self.u64(obj, "bss_sum") == 14_799_520)
            #expect(try Self.u64(obj, "bss_weighted") == 53_677_859_040)
        }

        #expect(try Self.run(obj, "list_free") == UInt32(pages))
        #expect(try Self.u32(obj, "bss_freed_pages") == UInt32(pages))
        #expect(try Self.u32(obj, "bss_free_verified") == 1)
        #expect(try Self.u32(obj, "list_pages") == 0)
    }

    // MARK: arena_htab

    /// Slot layout: {used u32, key u32, value u64}; table = {cap, count, probes, slots}.
    static func expectHtabTable(_ obj: LoadedObject, keys k: UInt32, probes: UInt64,
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
        let table = try obj.read(variable: "table")
        #expect(table.count == 24, sourceLocation: sourceLocation)
        #expect(le(table, at: 0, as: UInt32.self) == 512, sourceLocation: sourceLocation)
        #expect(le(table, at: 4, as: UInt32.self) == k, sourceLocation: sourceLocation)
        #expect(le(table, at: 8, as: UInt64.self) == probes, sourceLocation: sourceLocation)
        let slotsAddress: UInt64 = le(table, at: 16)
        #expect(slotsAddress == (try firstFreePage(obj)), sourceLocation: sourceLocation)
        #expect(try u64(obj, "htab_slots_addr") == slotsAddress, sourceLocation: sourceLocation)
        // The table itself, read from user space: exactly keys 0..K-1, each with value 3k+1.
        let slots = try arenaBytes(obj, at: slotsAddress, count: 2 * 4096)
        var found: [UInt32: UInt64] = [:]
        for s in 0..<512 where le(slots, at: 16 * s, as: UInt32.self) != 0 {
            found[le(slots, at: 16 * s + 4)] = le(slots, at: 16 * s + 8)
        }
        #expect(found.count == Int(k), sourceLocation: sourceLocation)
        #expect(found.allSatisfy { $0.key < k && $0.value == 3 * UInt64($0.key) + 1 }, sourceLocation: sourceLocation)
    }

    static func expectHtabLookup(_ obj: LoadedObject, keys k: UInt32, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try run(obj, "htab_lookup") == k, sourceLocation: sourceLocation)
        #expect(try u32(obj, "htab_hits") == k, sourceLocation: sourceLocation)
        #expect(try u32(obj, "htab_misses") == k, sourceLocation: sourceLocation)
        #expect(try u32(obj, "htab_bad") == 0, sourceLocation: sourceLocation)
        #expect(try u32(obj, "htab_target") == k, sourceLocation: sourceLocation)
        #expect(try u64(obj, "htab_value_sum") == 3 * UInt64(k) * UInt64(k - 1) / 2 + UInt64(k), sourceLocation: sourceLocation)
        #expect(try u64(obj, "htab_found_value") == 0, sourceLocation: sourceLocation)
    }

    /// Default 100 keys: fill (100 new), fill again (0 new, table unchanged), lookup (100 hits,
    /// 100 misses, values sum to 14950).
    @Test(.needsArenaMaps, .arenaTally) func arenaHtabDefaultKeys() throws {
        let obj = try Loader.load(Self.spec("arena_htab"))
        defer { obj.unload() }
        #expect(obj.arenaAddress == 0x1200_0000_0000)
        #expect(try Self.u32(obj, "htab_magic") == 0x4854_4142)
        #expect(try Self.u32(obj, "htab_keys") == 100)

        #expect(try Self.run(obj, "htab_fill") == 100)
        #expect(try Self.u32(obj, "htab_inserted") == 100)
        try Self.expectHtabTable(obj, keys: 100, probes: 1847)
        if obj.arenaDataOffset == 0 { #expect(try Self.u64(obj, "htab_slots_addr") == 0x1200_0000_1000) }

        #expect(try Self.run(obj, "htab_fill") == 0)
        #expect(try Self.u32(obj, "htab_inserted") == 0)
        try Self.expectHtabTable(obj, keys: 100, probes: 1847)

        try Self.expectHtabLookup(obj, keys: 100)
        #expect(try Self.u64(obj, "htab_value_sum") == 14950)
    }

    /// Patched `htab_keys`: 300 (35411 probes) and 512 = full table (114705 probes, sum 392960);
    /// 1000 is clamped to 512.
    @Test(.needsArenaMaps, .arenaTally, arguments: [(300, 300, 35411), (512, 512, 114_705), (1000, 512, 114_705)] as [(UInt64, UInt32, UInt64)])
    func arenaHtabPatchedKeys(htabKeys: UInt64, k: UInt32, probes: UInt64) throws {
        var spec = try Self.spec("arena_htab")
        try spec.patch(variable: "htab_keys", with: .uint(htabKeys))
        let obj = try Loader.load(spec)
        defer { obj.unload() }
        #expect(try Self.run(obj, "htab_fill") == k)
        #expect(try Self.u32(obj, "htab_inserted") == k)
        try Self.expectHtabTable(obj, keys: k, probes: probes)
        try Self.expectHtabLookup(obj, keys: k)
        if k == 512 { #expect(try Self.u64(obj, "htab_value_sum") == 392_960) }
    }

    /// htab_lookup before any htab_fill: no table, so every key is a miss (and keys < K are bad).
    @Test(.needsArenaMaps, .arenaTally) func arenaHtabLookupWithoutFill() throws {
        let obj = try Loader.load(Self.spec("arena_htab"))
        defer { obj.unload() }
        #expect(try Self.run(obj, "htab_lookup") == 0)
        #expect(try Self.u32(obj, "htab_hits") == 0)
        #expect(try Self.u32(obj, "htab_misses") == 100)
        #expect(try Self.u32(obj, "htab_bad") == 100)
        #expect(try Self.u64(obj, "htab_value_sum") == 0)
    }

    // MARK: arena_atomics

    /// One atomics_run: every fetch/non-fetch add, or, and, xor, cmpxchg and xchg on 32- and
    /// 64-bit arena words, and 64 rounds of a test-and-set lock.
    @Test(.needsArenaMaps, .arenaTally) func arenaAtomicsSingleRun() throws {
        let obj = try Loader.load(Self.spec("arena_atomics"))
        defer { obj.unload() }
        #expect(obj.arenaAddress == 0x1300_0000_0000)
        #expect(try Self.u64(obj, "at_add64") == 1000)
        #expect(try Self.u32(obj, "at_add32") == 0xffff_fff0)
        #expect(try Self.u64(obj, "at_and64") == 0xff00_ff00_ff00_ff00)

        #expect(try Self.run(obj, "atomics_run") == 0)
        let u64s: [(String, UInt64)] = [
            ("at_add64", 1200), ("old_add64", 1234),
            ("at_or64", 0xf_0000_0ff0), ("old_or64", 0xff0),
            ("at_and64", 0x0f00_f000_0f00_0000), ("old_and64", 0xff00_ff00_ff00_0f00),
            ("at_xor64", 0xaaaa_aaaa_aaaa_aaa5), ("old_xor64", 0xaaaa_aaaa_aaaa_aaaa),
            ("at_cas64", 4242), ("cas64_ok", 42), ("cas64_fail", 4242),
            ("at_xchg64", 0x2222), ("old_xchg64", 0x1111),
            ("at_locked_counter", 64), ("at_lock_taken", 64), ("at_lock_failed", 0),
        ]
        let u32s: [(String, UInt32)] = [
            ("at_add32", 0x10), ("old_add32", 0),
            ("at_or32", 0x8000_0101), ("old_or32", 0x101),
            ("at_and32", 0xdead_00e0), ("old_and32", 0xdead_bee0),
            ("at_xor32", 0xed34_a979), ("old_xor32", 0xed34_a978),
            ("at_cas32", 11), ("cas32_ok", 10), ("cas32_fail", 11),
            ("at_xchg32", 6), ("old_xchg32", 5),
            ("at_lock", 0),
        ]
        for (name, value) in u64s {
            #expect(obj.spec.variable(named: name)?.size == 8, "\(name)")
            #expect(try Self.u64(obj, name) == value, "\(name)")
        }
        for (name, value) in u32s {
            #expect(obj.spec.variable(named: name)?.size == 4, "\(name)")
            #expect(try Self.u32(obj, name) == value, "\(name)")
        }
    }

    /// Runs from several threads at once (straight BPF_PROG_TEST_RUN on the program fd:
    /// `LoadedObject.run` holds the object's lock for the syscall, so it would serialize them):
    /// the lock never loses an increment and the adds all land.
    @Test(.needsArenaMaps, .arenaTally) func arenaAtomicsConcurrentRuns() throws {
        let obj = try Loader.load(Self.spec("arena_atomics"))
        defer { obj.unload() }
        let fd = try #require(obj.program(named: "atomics_run")).fd
        let threads = 4, perThread = 500
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<perThread {
                do {
                    let r = try BPFSys.progTestRun(fd: fd, repeat: 0)
                    if r.returnValue != 0 { failures.withLock { $0.append("retval \(r.returnValue)") } }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                    return
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0.prefix(3) })")
        let runs = UInt64(threads * perThread)
        #expect(try Self.u32(obj, "at_lock") == 0)
        #expect(try Self.u64(obj, "at_locked_counter") == (try Self.u64(obj, "at_lock_taken")))
        #expect(try Self.u64(obj, "at_lock_taken") + (try Self.u64(obj, "at_lock_failed")) == 64 * runs)
        #expect(try Self.u64(obj, "at_add64") == 1000 + 200 * runs)
    }

    // MARK: arena_big

    /// A 1 GiB arena at 1<<46 with a 4-page non-zero image; a page allocated at a fixed address
    /// near the end, seen through the user mapping, then freed and allocated again.
    @Test(.needsArenaMaps, .arenaTally) func arenaBigOneGiB() throws {
        let obj = try Loader.load(Self.spec("arena_big"))
        defer { obj.unload() }
        let base: UInt64 = 1 << 46
        #expect(obj.arenaAddress == base)
        let index = try #require(obj.spec.arenaMapIndex)
        #expect(obj.maps[index].spec.maxEntries == 262_144)
        #expect(obj.maps[index].spec.mapExtra == base)
        #expect(obj.maps[index].region?.length == 1 << 30)

        // The image, before any run, through the variables and through the raw mapping.
        let image = base + obj.arenaDataOffset
        #expect(try Self.u64(obj, "big_magic") == 0x0123_4567_89ab_cdef)
        #expect(try Self.u32(obj, "big_counter") == 41)
        let table = try obj.read(variable: "big_table")
        #expect(table.count == 12288)
        #expect(Self.le(table, at: 0, as: UInt32.self) == 1)
        #expect(Self.le(table, at: 4 * 1024, as: UInt32.self) == 2)
        #expect(Self.le(table, at: 4 * 3071, as: UInt32.self) == 0xc0ffee)
        #expect((0..<3072).reduce(0 as UInt64) { $0 + UInt64(Self.le(table, at: 4 * $1, as: UInt32.self)) } == 1 + 2 + 0xc0ffee)
        #expect(try Self.arenaU64(obj, at: image) == 0x0123_4567_89ab_cdef)
        #expect(try Self.arenaU32(obj, at: image + 8) == 41)
        #expect(try Self.arenaU32(obj, at: image + 0x100c) == 2)
        #expect(try Self.arenaU32(obj, at: image + 0x3008) == 0xc0ffee)

        let hint = base + 262_128 * 4096   // 0x40003fff0000
        #expect(try Self.run(obj, "big_touch") == 0)
        #expect(try Self.u64(obj, "big_page") == hint)
        #expect(try Self.u32(obj, "big_second_alloc_null") == 1)
        #expect(try Self.u32(obj, "big_counter") == 42)
        #expect(try Self.u32(obj, "big_table_sum") == 0xc0fff1)
        #expect(try Self.u32(obj, "big_table", at: 4) == 0xc0fff1)
        #expect(try Self.arenaU64(obj, at: hint) == 0x0123_4567_89ab_cdef)
        #expect(try Self.arenaU64(obj, at: hint + 8) == 41)
        #expect(try Self.arenaU64(obj, at: hint + 0xff8) == 0xfeed_face_cafe_beef)

        #expect(try Self.run(obj, "big_touch") == 1)   // the page is taken
        #expect(try Self.u32(obj, "big_counter") == 42)
        #expect(try Self.run(obj, "big_release") == 0)
        #expect(try Self.u64(obj, "big_page") == 0)
        #expect(try Self.run(obj, "big_release") == 1)  // nothing to release
        #expect(try Self.run(obj, "big_touch") == 0)
        #expect(try Self.u64(obj, "big_page") == hint)
        #expect(try Self.u32(obj, "big_counter") == 43)
        #expect(try Self.run(obj, "big_release") == 0)
    }

    // MARK: arena_anyaddr

    /// map_extra 0: the kernel picks the arena's address at the loader's mmap; the pointers the
    /// programs keep in .bss are addresses in that mapping.
    @Test(.needsArenaMaps, .arenaTally) func arenaAnyAddress() throws {
        let obj = try Loader.load(Self.spec("arena_anyaddr"))
        defer { obj.unload() }
        let index = try #require(obj.spec.arenaMapIndex)
        #expect(obj.maps[index].spec.mapExtra == 0)
        let a = try #require(obj.arenaAddress)
        #expect(a != 0)
        #expect(a % Self.page == 0)
        #expect(a >> 32 == (a + 8 * Self.page - 1) >> 32, "the 8 pages stay in one 4 GiB window")
        let counterAddress = a + obj.arenaDataOffset   // any_counter is at image offset 0

        #expect(try Self.u64(obj, "any_counter") == 100)
        #expect(try Self.u32(obj, "any_small") == 7)
        #expect(try obj.read(variable: "any_sample") == [0xed, 0x5e, 0, 0, 0, 0, 0, 0, 0xcd, 0xab, 0, 0, 1, 0, 0, 0])

        #expect(try Self.run(obj, "any_read") == 1)   // no pointers yet

        #expect(try Self.run(obj, "any_alloc") == 0)
        #expect(try Self.u64(obj, "any_counter") == 101)
        #expect(try Self.u32(obj, "any_small") == 21)
        #expect(try Self.u32(obj, "any_sample", at: 12) == 2)
        #expect(try Self.u64(obj, "any_base") == counterAddress)
        #expect(try Self.u64(obj, "any_counter_ptr") == counterAddress)
        let pageAddress = try Self.firstFreePage(obj)
        #expect(try Self.u64(obj, "any_page") == pageAddress)
        if obj.arenaDataOffset == 0 { #expect(pageAddress == a + 0x1000) }
        // The pointers are user addresses: following them from here finds the same memory.
        #expect(try Self.arenaU64(obj, at: counterAddress) == 101)
        var sample = try Self.arenaBytes(obj, at: pageAddress, count: 16)
        #expect(Self.le(sample, at: 0, as: UInt64.self) == 0x5f52)
        #expect(Self.le(sample, at: 8, as: UInt32.self) == 0xabcd)
        #expect(Self.le(sample, at: 12, as: UInt32.self) == 2)

        for (k, (counter, small, copies)) in [(111, 22, 3), (121, 23, 4)].enumerated() {
            #expect(try Self.run(obj, "any_read") == 0, "any_read #\(k + 1)")
            #expect(try Self.u64(obj, "any_read_seq") == 0x5f52)
            #expect(try Self.u32(obj, "any_read_tag") == 0xabcd)
            #expect(try Self.u32(obj, "any_read_ok") == 1)
            #expect(try Self.u64(obj, "any_counter") == UInt64(counter))
            #expect(try Self.u32(obj, "any_small") == UInt32(small))
            sample = try Self.arenaBytes(obj, at: pageAddress, count: 16)
            #expect(Self.le(sample, at: 12, as: UInt32.self) == UInt32(copies))
        }
    }

    // MARK: arena_loop

    /// loop_run with loop_n (default 1000, or patched): sum 1..n, squares 1..min(n, 1023).
    @Test(.needsArenaMaps, .arenaTally, arguments: [nil, 50, 100_000, 0] as [UInt64?])
    func arenaLoop(loopN: UInt64?) throws {
        var spec = try Self.spec("arena_loop")
        if let loopN { try spec.patch(variable: "loop_n", with: .uint(loopN)) }
        let obj = try Loader.load(spec)
        defer { obj.unload() }
        #expect(obj.arenaAddress == 0x1400_0000_0000)
        let n = loopN ?? 1000, m = min(n, 1023)
        #expect(try Self.u32(obj, "loop_n") == UInt32(n))
        #expect(try Self.u64(obj, "loop_magic") == 0x6c6f_6f70)

        for run in 1...2 {
            #expect(try Self.run(obj, "loop_run") == 0)
            #expect(try Self.u32(obj, "loop_bound") == UInt32(n))
            #expect(try Self.u32(obj, "loop_iters") == UInt32(n))
            #expect(try Self.u64(obj, "loop_sum") == n * (n + 1) / 2)
            #expect(try Self.u64(obj, "loop_sq_sum") == m * (m + 1) * (2 * m + 1) / 6)
            #expect(try Self.u32(obj, "loop_done") == 1)
            #expect(try Self.u64(obj, "loop_magic") == 0x6c6f_6f70 + UInt64(run))
            #expect(try Self.u64(obj, "loop_page") == (try Self.firstFreePage(obj)), "the freed page is reused")
        }
        if obj.arenaDataOffset == 0 { #expect(try Self.u64(obj, "loop_page") == 0x1400_0000_1000) }
        switch loopN {
        case nil: #expect(try Self.u64(obj, "loop_sum") == 500_500); #expect(try Self.u64(obj, "loop_sq_sum") == 333_833_500)
        case 50: #expect(try Self.u64(obj, "loop_sum") == 1275); #expect(try Self.u64(obj, "loop_sq_sum") == 42925)
        case 100_000: #expect(try Self.u64(obj, "loop_sum") == 5_000_050_000); #expect(try Self.u64(obj, "loop_sq_sum") == 357_389_824)
        default: #expect(try Self.u64(obj, "loop_sum") == 0); #expect(try Self.u64(obj, "loop_sq_sum") == 0)
        }
    }

    // MARK: globals_run

    /// Defaults: out = 3*(20+k-1) - 7 for the k-th run; .data updated in place; kconfig values
    /// equal what /proc/config.gz and uname say.
    @Test func globalsRunDefaults() throws {
        let obj = try Loader.load(Self.spec("globals_run"))
        defer { obj.unload() }
        #expect(try Self.i32(obj, "scale") == 3)
        #expect(try Self.i32(obj, "offset") == -7)
        #expect(try Self.u32(obj, "mode") == 1)
        #expect(try obj.read(variable: "greeting") == Array("depot".utf8) + [0, 0, 0])
        #expect(try Self.i32(obj, "input") == 20)
        #expect(try Self.i64(obj, "acc") == 1000)
        #expect(try obj.read(variable: "note") == Array("init".utf8) + [0, 0, 0, 0])
        #expect(try Self.u32(obj, "runs") == 0)

        let nrCPUs = try #require(UInt32(Self.kernelConfig("CONFIG_NR_CPUS")))
        let bpfSyscall = try Self.kernelConfig("CONFIG_BPF_SYSCALL")
        let versionCode = try Self.unameVersionCode()
        #expect(KernelVersion.code == versionCode)

        var acc: Int64 = 1000
        for (k, expected) in [(1, 53), (2, 56), (3, 59)] as [(Int32, Int32)] {
            #expect(try Self.run(obj, "compute") == UInt32(bitPattern: expected), "run \(k)")
            #expect(try Self.i32(obj, "out") == expected)
            #expect(expected == 3 * (20 + k - 1) - 7)
            acc += Int64(expected)
            #expect(try Self.i64(obj, "acc") == acc)
            #expect(try Self.i32(obj, "input") == 20 + k)
            #expect(try Self.u32(obj, "runs") == UInt32(k))
            #expect(try obj.read(variable: "note") == Array("r\(k)it".utf8) + [0, 0, 0, 0])
            #expect(try Self.u32(obj, "greeting_len") == 5)
            #expect(try Self.u32(obj, "nr_cpus") == nrCPUs)
            #expect(try Self.u32(obj, "kernel_version") == KernelVersion.code)
            #expect(try Self.u32(obj, "kernel_version") == versionCode)
            #expect(try Self.u8(obj, "have_bpf_syscall") == (bpfSyscall == "y" ? 1 : 0))
        }
        #expect(acc == 1168)   // 1000 + 53 + 56 + 59
    }

    /// scale 5, offset 2, mode 0 (.rodata) and input -4 (.data) patched before load: one run
    /// gives out -18, retval 18 (mode 0 returns -out), acc 982, input -3.
    @Test func globalsRunPatched() throws {
        var spec = try Self.spec("globals_run")
        try spec.patch(variable: "scale", with: .int(5))
        try spec.patch(variable: "offset", with: .int(2))
        try spec.patch(variable: "mode", with: .uint(0))
        try spec.patch(variable: "input", with: .int(-4))
        let obj = try Loader.load(spec)
        defer { obj.unload() }
        #expect(try Self.i32(obj, "scale") == 5)
        #expect(try Self.i32(obj, "offset") == 2)
        #expect(try Self.run(obj, "compute") == 18)
        #expect(try Self.i32(obj, "out") == -18)
        #expect(try Self.i64(obj, "acc") == 982)
        #expect(try Self.i32(obj, "input") == -3)
        // A write to .data between runs is what the next run computes with.
        try obj.write(variable: "input", bytes: withUnsafeBytes(of: Int32(10).littleEndian, Array.init))
        #expect(try Self.run(obj, "compute") == UInt32(bitPattern: -52))   // -(5*10 + 2)
        #expect(try Self.i32(obj, "out") == 52)
        #expect(try Self.i64(obj, "acc") == 1034)
    }

    // MARK: verifier_reject

    /// bad_null_deref is autoloaded, so the whole load fails with the verifier's log (libbpf
    /// fails bpf_object__load the same way). Its FACTS: insn 7 dereferences the unchecked
    /// lookup result.
    @Test func verifierRejectFailsTheLoadWithTheLog() throws {
        let spec = try Self.spec("verifier_reject")
        #expect(spec.program(named: "bad_null_deref")?.autoload == true)   // plain SEC("syscall"), not "?syscall"
        do {
            let obj = try Loader.load(spec)
            obj.unload()
            Issue.record("verifier_reject loaded")
        } catch {
            guard case .verifier(let v) = error else {
                Issue.record("expected a verifier error, got \(error)")
                return
            }
            #expect(v.programName == "bad_null_deref")
            #expect(v.errno == EACCES)
            #expect(v.log.contains("R0 invalid mem access 'map_value_or_null'"), "\(v.log)")
            #expect(v.log.contains("7: (79) r1 = *(u64 *)(r0 +0)"), "\(v.log)")
            #expect(v.log.contains("call bpf_map_lookup_elem#1"), "\(v.log)")
            #expect(v.summary.contains("invalid mem access 'map_value_or_null'"), "\(v.summary)")
        }
    }

    /// The good program runs when the bad one is not loaded: autoload off on its ProgramSpec
    /// (libbpf's bpf_program__set_autoload(prog, false); a `?syscall` section would do the same
    /// at compile time).
    @Test func verifierRejectGoodProgramRunsWithoutTheBadOne() throws {
        var spec = try Self.spec("verifier_reject")
        let bad = try #require(spec.programs.firstIndex { $0.name == "bad_null_deref" })
        spec.programs[bad].autoload = false
        let obj = try Loader.load(spec)
        defer { obj.unload() }
        #expect(obj.programs.map(\.name) == ["good_lookup"])
        let counts = try #require(obj.map(named: "counts"))
        for k in 1...3 as ClosedRange<UInt64> {
            #expect(try Self.run(obj, "good_lookup") == 0)
            #expect(try Self.u64(obj, "good_seen") == 41 + k)
            let value = try #require(try BPFSys.mapLookup(fd: counts.fd, key: [1, 0, 0, 0], valueSize: 8))
            #expect(Self.le(value, as: UInt64.self) == 41 + k)
        }
    }
}

import BPFObject
import BPFTestSupport
import Foundation
import Glibc
import Testing

@testable import BPFKernel
import KernelTestSupport

/// Real loads of the fixtures into this kernel, read back through live views. Serialized: the
/// arena fixtures map fixed addresses, which one process can hold only once at a time.
@Suite("loader: real kernel loads", .serialized, .enabled(if: SysTestSupport.bpfPermitted, SysTestSupport.skipMessage))
struct LoaderTests {
    static func spec(_ fixture: String) throws -> ObjectSpec {
        try ObjectSpec(elf: Fixtures.bytes(fixture), name: fixture)
    }

    static func int32(_ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }.littleEndian
    }

    static func le32(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }

    /// CONFIG_NR_CPUS as the kernel's config says (/boot/config-$(uname -r), else /proc/config.gz, as the loader looks), read independently of the loader's own parser.
    static func configNRCPUs() throws -> Int32 {
        let text = try Fixtures.run("/bin/sh", ["-c", "{ cat /boot/config-$(uname -r) 2>/dev/null || zcat /proc/config.gz; } | grep '^CONFIG_NR_CPUS='"]).get()
        return try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("CONFIG_NR_CPUS=".count)))
    }

    @Test func globalsLoadRunAndReadBackThroughLiveViews() throws {
        let obj = try Loader.load(Self.spec("globals"))
        defer { obj.unload() }
        #expect(Set(obj.programs.map(\.name)) == ["sys_first", "sys_second", "xdp_prog", "tc_prog"])  // tp_getpid: autoload off
        #expect(obj.maps.allSatisfy { $0.id > 0 })
        // Initial values are live before anything runs.
        #expect(Self.int32(try obj.read(variable: "data_int")) == 1234)
        #expect(Self.int32(try obj.read(variable: "cfg_limit")) == 100)
        let first = try obj.run(program: "sys_first")
        #expect(first.returnValue == 1399)
        #expect(Self.int32(try obj.read(variable: "bss_int")) == 1399)
        #expect(Self.int32(try obj.read(variable: "hidden_counter")) == 10)   // static: map without mmap? still readable
        #expect(Self.int32(try obj.read(variable: "data_int")) == 1192)
        let second = try obj.run(program: "sys_second")
        #expect(second.returnValue == 267)
        #expect(Self.int32(try obj.read(variable: "custom_val")) == 43)
        // User-space writes are seen by the program; rodata is frozen.
        try obj.write(variable: "custom_val", bytes: Self.le32(1000))
        _ = try obj.run(program: "sys_second")
        #expect(Self.int32(try obj.read(variable: "custom_val")) == 1001)
        #expect(throws: LoaderError.readOnly(variable: "ro_u32", section: ".rodata")) {
            try obj.write(variable: "ro_u32", bytes: [0, 0, 0, 0])
        }
    }

    @Test func patchedRodataImageChangesWhatTheProgramComputes() throws {
        let spec = try Self.spec("globals")
        var image = try #require(spec.dataSection(named: ".rodata.cfg")).image
        image.replaceSubrange(0..<4, with: Self.le32(7))
        let obj = try Loader.load(spec, images: [".rodata.cfg": image])
        defer { obj.unload() }
        #expect(Self.int32(try obj.read(variable: "cfg_limit")) == 7)
    }

    @Test(.needsArenaMaps, .arenaTally) func arenaGlobalsKfuncsAndKconfig() throws {
        let spec = try Self.spec("arena")
        var image = try #require(spec.dataSection(named: ".addr_space.1")).image
        image.replaceSubrange(0..<4, with: Self.le32(41))   // patch arena_counter before load
        let obj = try Loader.load(spec, images: [".addr_space.1": image])
        defer { obj.unload() }
        #expect(obj.arenaAddress == 1 << 44)
        #expect(Self.int32(try obj.read(variable: "arena_counter")) == 41)
        let run = try obj.run(program: "arena_run")
        #expect(run.returnValue == 0)
        #expect(Self.int32(try obj.read(variable: "arena_counter")) == 42)
        #expect(Self.int32(try obj.read(variable: "arena_zero")) == 0x5ac2)
        #expect(Self.int32(try obj.read(variable: "nr_cpus_seen")) == (try Self.configNRCPUs()))
        #expect(UInt32(bitPattern: Self.int32(try obj.read(variable: "kver_seen"))) == KernelVersion.code)
        #expect(Self.int32(try obj.read(variable: "missing_kfunc_called")) == 0)
        // The page the program allocated is inside our mapping, readable from user space.
        let page = try obj.read(variable: "arena_page").withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        let arena = try #require(obj.arenaAddress)
        #expect(page > arena && page < arena + 100 * 4096)
    }

    @Test(.needsArenaMaps, .arenaTally) func secondArenaAtTheSameAddressIsRefusedNotClobbered() throws {
        let spec = try Self.spec("arena")
        let first = try Loader.load(spec)
        defer { first.unload() }
        try first.write(variable: "arena_counter", bytes: Self.le32(555))
        #expect(throws: LoaderError.arenaAddressInUse(map: "arena", address: 1 << 44, length: 100 * 4096)) {
            try Loader.load(spec)
        }
        #expect(Self.int32(try first.read(variable: "arena_counter")) == 555)
        first.unload()
        let again = try Loader.load(spec)
        again.unload()
    }

    @Test func mapKindsSlotsTailCallsAndCORE() throws {
        let obj = try Loader.load(Self.spec("maps"))
        defer { obj.unload() }
        #expect(Set(obj.programs.map(\.name)) == ["tail_a", "tail_b", "dispatch", "on_switch", "dump_task"])
        let packet = [UInt8](repeating: 0, count: 64)
        #expect(try obj.run(program: "dispatch", data: packet).returnValue == 0xA)
        try obj.write(variable: "tail_slot", bytes: Self.le32(2))
        #expect(try obj.run(program: "dispatch", data: packet).returnValue == 0xB)
        try obj.write(variable: "tail_slot", bytes: Self.le32(1))
        #expect(try obj.run(program: "dispatch", data: packet).returnValue == UInt32(bitPattern: -1))
        // The pinned-by-name map went to bpffs and is removed again by the test.
        let pinned = "/sys/fs/bpf/pinned_hash"
        #expect(FileManager.default.fileExists(atPath: pinned))
        unlink(pinned)
    }

    @Test func unknownVariableAndUnloadedAccessAreTypedErrors() throws {
        let obj = try Loader.load(Self.spec("globals"))
        #expect(throws: LoaderError.unknownVariable("nope")) { try obj.read(variable: "nope") }
        obj.unload()
        #expect(throws: LoaderError.unloaded) { try obj.read(variable: "data_int") }
        #expect(throws: LoaderError.unloaded) { try obj.run(program: "sys_first") }
    }

    /// Where the kernel has no arena maps (6.1: type unknown; a sandbox: EPERM), an arena object
    /// is refused by the probe's verdict before any map, BTF or program is created.
    @Test(.disabled(if: KernelRequirements.arenaMaps.available, "this kernel has BPF arena maps"))
    func arenaObjectOnAKernelWithoutArenasIsATypedRefusal() throws {
        let spec = try Self.spec("arena")
        var lastMapID: UInt32 = 0
        while let next = try BPFSys.mapGetNextID(after: lastMapID) { lastMapID = next }
        do {
            let obj = try Loader.load(spec)
            obj.unload()
            Issue.record("an arena object loaded on a kernel whose probe says \(KernelRequirements.arenaMaps.reason)")
        } catch {
            guard case .kernelLacks(let probe, let needed) = error else {
                Issue.record("expected kernelLacks, got \(error)")
                return
            }
            #expect(probe.feature == .arenaMaps)
            #expect(needed.contains("BPF arena map 'arena'"))
            print("arena load refused: \(error)")
            if probe.errno == EINVAL {
                #expect(error.description.contains("has no BPF arena maps (map type 33 is unknown: EINVAL); they need Linux 6.9 or later"))
            } else {
                #expect(error.description.contains("kernel refuses BPF arena maps"))
            }
        }
        // Nothing of the object reached the kernel: no new map carries one of its names.
        let names = Set(spec.maps.map { BPFSys.objectName($0.name) })
        var cursor = lastMapID
        while let next = try BPFSys.mapGetNextID(after: cursor) {
            cursor = next
            guard let fd = try? BPFSys.mapGetFDByID(next), let info = try? BPFSys.objGetInfoByFD(mapFD: fd) else { continue }
            #expect(!names.contains(info.name), "map \(info.name) (id \(next)) was created")
        }
        // Objects without arenas still load on such a kernel.
        let globals = try Loader.load(Self.spec("globals"))
        globals.unload()
    }

    /// Every load/unload cycle gives back its kernel objects: after 1,000 cycles none of the
    /// map or program ids still exist, the arena range is unmapped, and the fd count is flat.
    /// The arena fixture where the kernel has arenas; the global-data fixture everywhere.
    @Test(arguments: KernelRequirements.arenaMaps.available ? ["globals", "arena"] : ["globals"])
    func thousandLoadUnloadCyclesLeakNothing(fixture: String) throws {
        let spec = try Self.spec(fixture)
        // Only bpf/btf fds: the servers, databases and pipes of suites running in parallel come
        // and go by the dozen and would drown a leak of these.
        func fdCount() -> Int {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
            return fds.filter { fd in
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
                return target.hasPrefix("anon_inode:bpf") || target.hasPrefix("anon_inode:btf")
            }.count
        }
        func arenaMapped() -> Bool {
            (ProcFile.text("/proc/self/maps") ?? "").contains("100000000000-")
        }
        let fdsBefore = fdCount()
        var mapIDs: [UInt32] = [], progIDs: [UInt32] = []
        for _ in 0..<1000 {
            let obj = try Loader.load(spec)
            mapIDs += obj.maps.map(\.id)
            progIDs += obj.programs.map(\.id)
            obj.unload()
        }
        #expect(!arenaMapped())
        // Other suites run in parallel in this process, so allow a little movement.
        #expect(abs(fdCount() - fdsBefore) < 16, "fds before \(fdsBefore), after \(fdCount())")
        // The kernel frees maps asynchronously; give it a moment.
        var alive = 0
        for _ in 0..<50 {
            alive = mapIDs.filter { (try? BPFSys.mapGetFDByID($0)) != nil }.count
                + progIDs.filter { (try? BPFSys.progGetFDByID($0)) != nil }.count
            if alive == 0 { break }
            usleep(100_000)
        }
        #expect(alive == 0, "\(alive) kernel objects of unloaded loads are still alive")
    }
}

/// bpffs pinning: a whole load under a directory, and libbpf's PIN_BY_NAME reuse.
@Suite("loader: pinning", .serialized, .enabled(if: SysTestSupport.bpfPermitted && SysTestSupport.bpffsMounted, "needs CAP_BPF and bpffs at /sys/fs/bpf"))
struct PinningTests {
    @Test func wholeLoadIsPinnedUnderItsDirectoryAndUnpinnedOnUnload() throws {
        let dir = "/sys/fs/bpf/bpfdepot-test-\(getpid())/load-1"
        var options = LoadOptions()
        options.pinDirectory = dir
        let obj = try Loader.load(LoaderTests.spec("globals"), options: options)
        // Another process could adopt it: every map and program is reachable by path, and
        // the pinned map is the same kernel object.
        for m in obj.maps {
            let fd = try BPFSys.objGet(path: Pinning.mapPath(dir, m.spec.name))
            #expect(try BPFSys.objGetInfoByFD(mapFD: fd).id == m.id)
        }
        for p in obj.programs {
            #expect(FileManager.default.fileExists(atPath: Pinning.programPath(dir, p.name)))
        }
        obj.unload()
        #expect(!FileManager.default.fileExists(atPath: dir))
        rmdir("/sys/fs/bpf/bpfdepot-test-\(getpid())")
    }

    @Test func pinByNameReusesACompatibleMapAndRefusesAnIncompatibleOne() throws {
        let root = "/sys/fs/bpf/bpfdepot-test-byname-\(getpid())"
        var options = LoadOptions()
        options.pinRoot = root
        defer {
            unlink("\(root)/pinned_hash")
            rmdir(root)
        }
        let spec = try LoaderTests.spec("maps")
        let first = try Loader.load(spec, options: options)
        defer { first.unload() }
        let second = try Loader.load(spec, options: options)
        defer { second.unload() }
        // Same kernel map for both loads; the other maps are their own.
        #expect(first.map(named: "pinned_hash")?.id == second.map(named: "pinned_hash")?.id)
        #expect(first.map(named: "stats_hash")?.id != second.map(named: "stats_hash")?.id)
        // A map pinned under that name with another shape is not silently reused.
        var incompatible = spec
        let i = try #require(incompatible.maps.firstIndex { $0.name == "pinned_hash" })
        incompatible.maps[i].maxEntries += 1
        #expect(throws: LoaderError.self) { try Loader.load(incompatible, options: options) }
    }
}

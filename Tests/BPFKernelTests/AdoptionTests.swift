import BPFObject
import BPFTestSupport
import Foundation
import Glibc
import Testing

@testable import BPFKernel
import KernelTestSupport

/// Taking over a pinned load, as a restarted service does: the same kernel objects, the arena at
/// the same address with the same pages, the data maps mapped again.
@Suite("loader: adopting pinned loads", .serialized, .enabled(if: SysTestSupport.bpfPermitted, SysTestSupport.skipMessage))
struct AdoptionTests {
    static func u64(_ b: [UInt8]) -> UInt64 { b.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian }
    static func u32(_ b: [UInt8]) -> UInt32 { b.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.littleEndian }
    static func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }

    static func pinDirectory() throws -> String {
        try PinRoot.prepare("/sys/fs/bpf")
        return "/sys/fs/bpf/bpfdepot-adopt-test-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    }

    /// Kernel ids of the bpf maps and programs this process holds fds for, from
    /// /proc/self/fdinfo (other suites run in parallel, so a plain fd count would not do).
    static func heldBPFIDs() -> Set<String> {
        var ids: Set<String> = []
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fdinfo")) ?? [] {
            guard let text = ProcFile.text("/proc/self/fdinfo/\(fd)") else { continue }
            for line in text.split(separator: "\n") where line.hasPrefix("map_id:") || line.hasPrefix("prog_id:") {
                ids.insert(line.replacingOccurrences(of: "\t", with: " "))
            }
        }
        return ids
    }

    @Test(.needsArenaMaps, .arenaTally) func anAdoptedLoadHasTheSameObjectsMemoryAndValues() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("adopt_arena"), name: "adopt_arena")
        let dir = try Self.pinDirectory()
        var options = LoadOptions()
        options.pinDirectory = dir
        var record: AdoptionRecord
        var mapIDs: [UInt32]
        do {
            let first = try Loader.load(spec, options: options)
            #expect(first.arenaAddress == 0x1600_0000_0000)
            #expect(try first.run(program: "ad_tick").returnValue == 103)
            try first.write(variable: "ad_counter", bytes: Self.le64(5000))
            record = first.adoptionRecord
            mapIDs = first.maps.map(\.id)
            // Dropped without unload (as by a crash): the pins keep everything in the kernel.
        }
        let adopted = try Loader.adopt(spec, pinDirectory: dir, record: record)
        #expect(adopted.maps.map(\.id) == mapIDs)
        #expect(adopted.arenaAddress == 0x1600_0000_0000)
        // Values written by the program and by user space before the "restart".
        #expect(Self.u64(try adopted.read(variable: "ad_counter")) == 5000)
        #expect(Self.u64(try adopted.read(variable: "ad_seen")) == 103)
        #expect(Self.u32(try adopted.read(variable: "ad_runs")) == 1)
        #expect(Self.u32(try adopted.read(variable: "ad_step")) == 3)
        // The program still runs against the same memory; user space sees its writes.
        #expect(try adopted.run(program: "ad_tick").returnValue == 5003)
        #expect(Self.u64(try adopted.read(variable: "ad_seen")) == 5003)
        let hist = try adopted.read(variable: "ad_hist")
        #expect((0..<4).map { Self.u32(Array(hist[($0 * 4)..<($0 * 4 + 4)])) } == [2, 3, 4, 5])
        #expect(throws: LoaderError.readOnly(variable: "ad_step", section: ".rodata")) {
            try adopted.write(variable: "ad_step", bytes: [1, 0, 0, 0])
        }
        let ours = Set(adopted.maps.map { "map_id: \($0.id)" } + adopted.programs.map { "prog_id: \($0.id)" })
        #expect(Self.heldBPFIDs().isSuperset(of: ours))
        adopted.unload()
        #expect(!FileManager.default.fileExists(atPath: dir))
        #expect(Self.heldBPFIDs().isDisjoint(with: ours))  // every fd of the adopted load closed
    }

    @Test(.needsArenaMaps, .arenaTally) func anArenaTheKernelPlacedIsMappedAgainAtItsRecordedAddress() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("arena_anyaddr"), name: "arena_anyaddr")
        let dir = try Self.pinDirectory()
        var options = LoadOptions()
        options.pinDirectory = dir
        let record: AdoptionRecord
        do {
            let first = try Loader.load(spec, options: options)
            #expect(try first.run(program: "any_alloc").returnValue == 0)
            record = first.adoptionRecord
        }
        let address = try #require(record.arenaAddress)
        // Without the address the kernel's arena cannot be mapped again: a clear error, no guess.
        var blind = record
        blind.arenaAddress = nil
        #expect(throws: LoaderError.self) { try Loader.adopt(spec, pinDirectory: dir, record: blind) }
        let adopted = try Loader.adopt(spec, pinDirectory: dir, record: record)
        defer { adopted.unload() }
        #expect(adopted.arenaAddress == address)
        // Pointers the program stored in .bss point into the re-mapped arena; the page it
        // allocated is still there.
        #expect(Self.u64(try adopted.read(variable: "any_base")) == address)
        #expect(try adopted.run(program: "any_read").returnValue == 0)
        #expect(Self.u64(try adopted.read(variable: "any_read_seq")) == 0x5f52)
    }

    /// The arena fixture where the kernel has arenas; the global-data fixture everywhere.
    @Test(arguments: KernelRequirements.arenaMaps.available ? ["globals", "adopt_arena"] : ["globals"])
    func aPinReplacedByAnotherObjectIsRefused(fixture: String) throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes(fixture), name: fixture)
        let dir = try Self.pinDirectory()
        var options = LoadOptions()
        options.pinDirectory = dir
        let first = try Loader.load(spec, options: options)
        var record = first.adoptionRecord
        first.unload()
        // Same names and shapes, new kernel objects: the recorded ids no longer match.
        let second = try Loader.load(spec, options: options)
        defer { second.unload() }
        #expect(record.mapIDs[spec.maps[0].name] != second.maps[0].id)
        do {
            _ = try Loader.adopt(spec, pinDirectory: dir, record: record)
            Issue.record("expected adoption to refuse a replaced pin")
        } catch {
            guard case .pin(_, let reason) = error else { Issue.record("unexpected \(error)"); return }
            #expect(reason.contains("replaced"))
        }
        // With the right ids it works, and a missing pin is a clear error.
        record = second.adoptionRecord
        #expect(throws: LoaderError.self) { try Loader.adopt(spec, pinDirectory: dir + "-missing", record: record) }
    }
}

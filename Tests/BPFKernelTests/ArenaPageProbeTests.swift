import BPFKernel
import BPFObject
import BPFTestSupport
import KernelTestSupport
import Testing

/// The embedded arena page probe (Sources/BPFKernel/Probes/arena_pages.bpf.c) on this kernel:
/// it loads, attaches as an iterator over maps, and writes nothing for a map that is no arena.
/// (Its answers for real arenas are checked in the VM matrix: ArenaFollowTests.)
@Suite(.needsBPF) struct ArenaPageProbeTests {
    @Test func theProbeLoadsAndAnswersOnlyForArenas() throws {
        let probe = try ArenaPageProbe.shared()
        let obj = try Loader.load(try ObjectSpec(elf: Fixtures.bytes("globals_run"), name: "globals_run"))
        defer { obj.unload() }
        let array = try #require(obj.maps.first)
        #expect(throws: ArenaProbeError.self) { try probe.present(arenaMapID: array.id, pages: [0, 1]) }
        #expect(throws: ArenaProbeError.self) { try probe.present(arenaMapID: 1, pages: Array(repeating: 0, count: 513)) }
    }
}

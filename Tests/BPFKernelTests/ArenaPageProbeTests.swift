import BPFKernel
import BPFObject
import BPFTestSupport
import Glibc
import KernelTestSupport
import Testing

/// The embedded arena page probe (Sources/BPFKernel/Probes/arena_pages.bpf.c) on this kernel.
/// Where the kernel knows arena maps (it may still refuse them, as this host does) the probe
/// loads, attaches as an iterator over maps, and writes nothing for a map that is no arena;
/// where it does not (before 6.9: no `struct bpf_arena` in its BTF) the probe is a typed
/// refusal, never a wrong answer. Its answers for real arenas: ArenaFollowTests in the 6.12 VM.
@Suite(.needsBPF) struct ArenaPageProbeTests {
    @Test func theProbeLoadsAndAnswersOnlyForArenas() throws {
        let arenas = FeatureProbes.result(.arenaMaps)
        guard arenas.available || arenas.errno != EINVAL else {
            #expect(throws: ArenaProbeError.self, "no bpf_arena in this kernel's BTF: \(arenas.reason)") {
                try ArenaPageProbe.shared()
            }
            return
        }
        let probe = try ArenaPageProbe.shared()
        let obj = try Loader.load(try ObjectSpec(elf: Fixtures.bytes("globals_run"), name: "globals_run"))
        defer { obj.unload() }
        let array = try #require(obj.maps.first)
        #expect(throws: ArenaProbeError.self) { try probe.present(arenaMapID: array.id, pages: [0, 1]) }
        #expect(throws: ArenaProbeError.self) { try probe.present(arenaMapID: 1, pages: Array(repeating: 0, count: 513)) }
        #expect(throws: ArenaProbeError.self) { try probe.copy(arenaMapID: array.id, pages: [0]) }
        #expect(throws: ArenaProbeError.self) { try probe.copy(arenaMapID: 1, pages: Array(repeating: 0, count: 8)) }
    }
}

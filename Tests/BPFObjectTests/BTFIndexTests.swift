import BPFObject
import BPFTestSupport
import Foundation
import Testing

/// The lazy BTF reader (the loader's view of vmlinux) gives exactly what the full parser gives.
@Suite struct BTFIndexTests {
    static func check(_ bytes: [UInt8]) throws {
        let full = try BTF(parsing: bytes)
        let index = try BTFIndex(parsing: bytes)
        #expect(index.typeCount == full.types.count)
        #expect(index.stringLength == full.strings.count)
        for id in 1..<full.types.count {
            let t = full.types[id]
            guard index.type(UInt32(id)) == t, index.nameOffsets[id] == t.nameOffset,
                  index.kindTags[id] == t.kind.tag.rawValue, index.name(of: UInt32(id)) == full.name(of: UInt32(id))
            else {
                Issue.record("type [\(id)] differs: \(String(describing: index.type(UInt32(id)))) vs \(t)")
                return
            }
        }
        #expect(index.type(0) == nil)
        #expect(index.type(UInt32(full.types.count)) == nil)
        #expect(try index.decodedAll() == full)
    }

    @Test func everyTypeOfTheRunningKernelsBTFIsWhatTheFullParserReads() throws {
        guard let data = FileManager.default.contents(atPath: "/sys/kernel/btf/vmlinux") else {
            Issue.record("no /sys/kernel/btf/vmlinux: the kernel has no BTF (CONFIG_DEBUG_INFO_BTF)")
            return
        }
        let bytes = [UInt8](data)
        try Self.check(bytes)
        let index = try BTFIndex(parsing: bytes)
        let kfunc = try #require(index.kindTags.indices.first {
            index.kindTags[$0] == BTFKindTag.function.rawValue && index.stringEquals(index.nameOffsets[$0], Array("bpf_arena_alloc_pages".utf8))
        })
        #expect(index.name(of: UInt32(kfunc)) == "bpf_arena_alloc_pages")
    }

    @Test func everyFixturesBTFReadsTheSame() throws {
        for name in Fixtures.allSources where !name.hasPrefix("bad_") {
            guard let spec = try? ObjectSpec(elf: Fixtures.bytes(name), name: name), let btf = spec.btf else { continue }
            try Self.check(btf.encoded())
        }
    }

    /// Every truncation and random byte changes of a real blob: a typed error or a consistent
    /// index whose types, where they decode, are the full parser's — never a trap.
    @Test func malformedBlobsAreErrorsNotTraps() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("globals"), name: "globals")
        let blob = try #require(spec.btf).encoded()
        for cut in 0..<blob.count {
            _ = try? BTFIndex(parsing: Array(blob.prefix(cut)))
        }
        var rng = SplitMix64(state: 0xb7f_1dec5)
        for _ in 0..<5000 {
            var bytes = blob
            for _ in 0...rng.below(4) { bytes[rng.below(bytes.count)] = UInt8(truncatingIfNeeded: rng.next()) }
            guard let index = try? BTFIndex(parsing: bytes) else { continue }
            for id in 0...index.typeCount { _ = index.type(UInt32(id)); _ = index.name(of: UInt32(id)) }
            if let full = try? BTF(parsing: bytes) {
                #expect(full.types.indices.dropFirst().allSatisfy { index.type(UInt32($0)) == full.types[$0] })
            }
        }
        #expect(throws: BTFError.self) { try BTFIndex(parsing: [0x9f, 0xeb, 1, 0]) }
    }
}

import BPFObject
import BPFTestSupport
import Foundation
import Testing

/// The parser is a security boundary: any bytes end in a typed error or a consistent spec.
/// A trap here kills the test process, so "the loop finished" is itself the first assertion.
@Suite struct MalformedInputTests {
    typealias Random = SplitMix64

    static let seed: UInt64 = ProcessInfo.processInfo.environment["BPFDEPOT_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x5EED_B0F0
    static let goodFixtures = ["globals", "arena", "arena_legacy", "maps"]

    /// Section header table location and entries of a clean ELF64 LE object.
    struct Layout {
        var shoff: Int
        var shnum: Int
        /// (name offset in shstrtab, sh_offset, sh_size) per section.
        var sections: [(type: UInt32, offset: Int, size: Int)]
        init(_ b: [UInt8]) {
            shoff = Layout.u64(b, 0x28)
            shnum = Int(b[0x3c]) | Int(b[0x3d]) << 8
            let base = shoff
            sections = (0..<shnum).map { i in
                let h = base + i * 64
                return (UInt32(Layout.u64(b, h + 4) & 0xffff_ffff), Layout.u64(b, h + 24), Layout.u64(b, h + 32))
            }
        }
        static func u64(_ b: [UInt8], _ o: Int) -> Int {
            Int(truncatingIfNeeded: b[o..<(o + 8)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.1) << (8 * UInt64($1.0)) })
        }
        func header(_ i: Int) -> Int { shoff + i * 64 }
    }

    /// Every outcome must be a thrown `ObjectError` or a spec whose cross-references hold.
    static func check(_ bytes: [UInt8]) -> Bool {
        do {
            let spec = try ObjectSpec(elf: bytes, name: "fuzz")
            for p in spec.programs {
                for r in p.relocations {
                    guard r.instruction >= 0, r.instruction < p.instructions.count else { return false }
                    switch r.kind {
                    case .mapFD(let m), .mapValue(let m, _), .arenaValue(let m, _):
                        guard m >= 0, m < spec.maps.count else { return false }
                    case .externCall(let e), .externLoad(let e):
                        guard e >= 0, e < spec.externs.count else { return false }
                    default: break
                    }
                }
            }
            for v in spec.variables {
                guard let ds = spec.dataSection(named: v.section),
                      Int(v.offset) + Int(v.size) <= ds.image.count else { return false }
                // Decoding an initial value must not trap either.
                _ = try? spec.initialValue(of: v)
            }
            for d in spec.dataSections where d.kind != .arena {
                guard d.mapIndex >= 0, d.mapIndex < spec.maps.count else { return false }
            }
            _ = spec.summaryJSON.text
            _ = spec.summaryText
            return true
        } catch {
            return true
        }
    }

    @Test(arguments: goodFixtures)
    func truncatedObjectsFailCleanly(fixture: String) throws {
        let clean = try Fixtures.bytes(fixture)
        #expect(Self.check(clean))
        var rng = Random(state: Self.seed ^ UInt64(fixture.utf8.count))
        var rejected = 0
        let cuts = Array(Set((0..<400).map { _ in rng.below(clean.count) } + [0, 1, 16, 63, 64, 65, clean.count - 1]))
        for cut in cuts {
            let bytes = Array(clean.prefix(cut))
            #expect(Self.check(bytes), "truncated at \(cut)")
            if (try? ObjectSpec(elf: bytes, name: "x")) == nil { rejected += 1 }
        }
        // Cutting the section header table off must always be refused.
        #expect(rejected >= cuts.filter { $0 < Layout(clean).shoff }.count)
    }

    @Test(arguments: goodFixtures)
    func randomByteMutationsFailCleanlyOrParse(fixture: String) throws {
        let clean = try Fixtures.bytes(fixture)
        var rng = Random(state: Self.seed &+ UInt64(clean.count))
        let layout = Layout(clean)
        let start = Date()
        for i in 0..<1500 {
            var b = clean
            let flips = 1 + rng.below(8)
            for _ in 0..<flips {
                // Bias towards the parts that steer parsing: headers, BTF, symbols, relocations.
                let pos: Int
                switch rng.below(4) {
                case 0: pos = layout.shoff + rng.below(layout.shnum * 64)
                case 1:
                    let s = layout.sections[rng.below(layout.sections.count)]
                    pos = s.size > 0 && s.type != 8 ? s.offset + rng.below(s.size) : rng.below(b.count)
                default: pos = rng.below(b.count)
                }
                guard pos < b.count else { continue }
                switch rng.below(3) {
                case 0: b[pos] = UInt8(truncatingIfNeeded: rng.next())
                case 1: b[pos] ^= 1 << UInt8(rng.below(8))
                default: b[pos] = [0, 0xff, 0x7f, 0x80][rng.below(4)]
                }
            }
            #expect(Self.check(b), "mutation #\(i) of \(fixture) (seed \(Self.seed))")
        }
        // No hang: 1,500 parses of a small object take well under a minute even in a debug build.
        #expect(Date().timeIntervalSince(start) < 60)
    }

    @Test(arguments: goodFixtures)
    func sectionHeaderFieldMutations(fixture: String) throws {
        let clean = try Fixtures.bytes(fixture)
        let layout = Layout(clean)
        var rng = Random(state: Self.seed &* 3 &+ UInt64(fixture.utf8.count))
        // sh_name, sh_type, sh_flags, sh_offset, sh_size, sh_link, sh_info, sh_entsize.
        let fields: [(offset: Int, width: Int)] = [(0, 4), (4, 4), (8, 8), (24, 8), (32, 8), (40, 4), (44, 4), (56, 8)]
        let extremes: [UInt64] = [0, 1, 7, 8, 16, 0xffff_ffff, 0x1_0000_0000, 0x7fff_ffff_ffff_ffff, ~0]
        for i in 0..<1000 {
            var b = clean
            let s = rng.below(layout.shnum)
            let f = fields[rng.below(fields.count)]
            let v = rng.below(2) == 0 ? extremes[rng.below(extremes.count)] : rng.next() >> UInt64(rng.below(64))
            for k in 0..<f.width { b[layout.header(s) + f.offset + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
            #expect(Self.check(b), "header mutation #\(i): section \(s) field @\(f.offset) = \(v)")
        }
    }

    @Test func aSectionClaimingFourGiBIsRefusedNotAllocated() throws {
        let clean = try Fixtures.bytes("globals")
        let layout = Layout(clean)
        // Find .bss (NOBITS, type 8) and make it claim 4 GiB.
        let bss = try #require(layout.sections.indices.first { layout.sections[$0].type == 8 })
        var b = clean
        let size: UInt64 = 4 << 30
        for k in 0..<8 { b[layout.header(bss) + 32 + k] = UInt8(truncatingIfNeeded: size >> (8 * UInt64(k))) }
        let error = #expect(throws: ObjectError.self) { try ObjectSpec(elf: b, name: "x") }
        guard case .sectionTooLarge(_, let claimed, _)? = error else {
            Issue.record("expected sectionTooLarge, got \(String(describing: error))")
            return
        }
        #expect(claimed == size)
        // A PROGBITS section claiming 4 GiB of a small file.
        let data = try #require(layout.sections.indices.first { layout.sections[$0].type == 1 && layout.sections[$0].size > 0 })
        var p = clean
        for k in 0..<8 { p[layout.header(data) + 32 + k] = UInt8(truncatingIfNeeded: size >> (8 * UInt64(k))) }
        #expect(throws: ObjectError.self) { try ObjectSpec(elf: p, name: "x") }
    }

    @Test func handMadeBadBTFIsATypedError() throws {
        func header(typeLen: UInt32, strLen: UInt32) -> [UInt8] {
            var h: [UInt8] = [0x9f, 0xeb, 1, 0]
            for v: UInt32 in [24, 0, typeLen, typeLen, strLen] { h += withUnsafeBytes(of: v.littleEndian, Array.init) }
            return h
        }
        func le(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        let strings: [UInt8] = [0, 0x61, 0]
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("bad magic", [0xeb, 0x9f, 1, 0] + [UInt8](repeating: 0, count: 20)),
            ("version 2", [0x9f, 0xeb, 2, 0] + le(24) + [UInt8](repeating: 0, count: 16)),
            ("type section past the end", header(typeLen: 1000, strLen: 3) + strings),
            ("unknown kind 31", header(typeLen: 12, strLen: 3) + le(1) + le(31 << 24) + le(0) + strings),
            ("dangling pointer", header(typeLen: 12, strLen: 3) + le(0) + le(2 << 24) + le(77) + strings),
            ("struct with 65535 members in 12 bytes", header(typeLen: 12, strLen: 3) + le(1) + le(4 << 24 | 0xffff) + le(4) + strings),
            ("name outside strings", header(typeLen: 16, strLen: 3) + le(999) + le(1 << 24) + le(4) + le(32) + strings),
            ("strings not NUL-terminated", header(typeLen: 0, strLen: 2) + [0, 0x61]),
            ("int with 200 bits", header(typeLen: 16, strLen: 3) + le(1) + le(1 << 24) + le(4) + le(200) + strings),
        ]
        for (what, blob) in cases {
            #expect(throws: BTFError.self, "\(what)") { try BTF(parsing: blob) }
        }
        // A typedef loop parses (ids are valid) but every walk over it stops with an error.
        let loop = header(typeLen: 24, strLen: 3) + le(1) + le(8 << 24) + le(2) + le(1) + le(8 << 24) + le(1) + strings
        let btf = try BTF(parsing: loop)
        #expect(throws: BTFError.typeLoop(id: 1)) { try btf.resolveSize(1) }
        #expect(throws: BTFError.typeLoop(id: 1)) { try btf.skipModifiersAndTypedefs(1) }
        #expect(btf.typeName(1).contains("loop") || !btf.typeName(1).isEmpty)
    }

    /// Regression (found by the mutation test in CI): an array whose total size overflows 32 bits
    /// made the size resolve to "unknown" and the decoder tried to reserve room for 4 billion
    /// elements.
    @Test func decodingAnArrayWhoseSizeOverflowsIsAnErrorNotAnAllocation() throws {
        func le(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        let types = le(1) + le(1 << 24) + le(4) + le(32)                         // [1] int, 4 bytes
            + le(0) + le(3 << 24) + le(0) + le(1) + le(1) + le(0xC000_0000)       // [2] int[0xC0000000]
        let strings: [UInt8] = [0, 0x69, 0x6e, 0x74, 0]
        var blob: [UInt8] = [0x9f, 0xeb, 1, 0]
        for v: UInt32 in [24, 0, UInt32(types.count), UInt32(types.count), UInt32(strings.count)] { blob += le(v) }
        let btf = try BTF(parsing: blob + types + strings)
        #expect(throws: BTFValueDecoder.DecodeError.self) {
            try BTFValueDecoder(btf: btf).decode(2, [UInt8](repeating: 0, count: 64)[...])
        }
    }

    @Test func btfRoundTripsThroughTheEncoder() throws {
        for fixture in Self.goodFixtures {
            let spec = try ObjectSpec(elf: Fixtures.bytes(fixture), name: fixture)
            let btf = try #require(spec.btf)
            let again = try BTF(parsing: btf.encoded())
            #expect(again == btf, "\(fixture)")
        }
    }
}

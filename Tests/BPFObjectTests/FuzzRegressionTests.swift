import BPFObject
import BPFTestSupport
import Foundation
import Testing

/// What the libFuzzer targets (Fuzz/, run by scripts/fuzz.sh) and the review around them found,
/// kept so it stays fixed. Each hostile object is a fixture with a few fields rewritten, so the
/// test shows which fields matter; each used to crash, hang or exhaust memory.
@Suite struct FuzzRegressionTests {
    // MARK: - objects

    /// A `.kconfig` extern whose type is a struct containing itself: working out its alignment
    /// recursed until the stack overflowed.
    @Test func kconfigExternOfAStructThatContainsItselfIsATypeLoop() throws {
        var elf = try HostileELF(fixture: "arena")
        let rec = try elf.type(named: "arena_rec", kind: .structure)
        try elf.setVariableType("CONFIG_NR_CPUS", to: rec)
        elf.setMemberType(of: rec, member: 0, to: rec)
        let error = #expect(throws: ObjectError.self) { try ObjectSpec(elf: elf.bytes, name: "arena") }
        guard case .externSymbol("CONFIG_NR_CPUS", let reason)? = error else {
            Issue.record("expected an extern error, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("reference chain too deep"))
    }

    /// A `.kconfig` extern `char CONFIG_NR_CPUS[0xfffffff0]`: the .kconfig image was allocated
    /// at 4 GiB.
    @Test func kconfigAreaIsHeldToTheDataSectionLimit() throws {
        var elf = try HostileELF(fixture: "arena")
        let msg = try elf.variableType("arena_msg")  // char[32]
        try elf.setVariableType("CONFIG_NR_CPUS", to: msg)
        elf.setArrayCount(of: msg, to: 0xffff_fff0)
        #expect(throws: ObjectError.externSymbol(name: "CONFIG_NR_CPUS", reason: ".kconfig area grows past 67108864 bytes")) {
            try ObjectSpec(elf: elf.bytes, name: "arena")
        }
    }

    /// Forty more `.bss` section headers of 60 MiB each: 2.4 GB of zeroed images from a 10 KB
    /// file. The 64 MiB limit now holds for all NOBITS sections together.
    @Test func nobitsSectionsShareOneSizeLimit() throws {
        var elf = try HostileELF(fixture: "globals")
        let bss = try elf.sectionHeader(named: ".bss")
        var header = Array(elf.bytes[bss..<(bss + 64)])
        HostileELF.put(UInt64(60 << 20), into: &header, at: 32)
        elf.appendSectionHeaders(Array(repeating: header, count: 40))
        let error = #expect(throws: ObjectError.self) { try ObjectSpec(elf: elf.bytes, name: "globals") }
        guard case .sectionTooLarge(".bss", 60 << 20, let limit)? = error else {
            Issue.record("expected sectionTooLarge, got \(String(describing: error))")
            return
        }
        #expect(limit < 60 << 20)
        // One 60 MiB .bss is still fine.
        var one = try HostileELF(fixture: "globals")
        HostileELF.put(UInt64(60 << 20), into: &one.bytes, at: bss + 32)
        #expect(try ObjectSpec(elf: one.bytes, name: "globals").dataSection(named: ".bss")?.image.count == 60 << 20)
    }

    /// A 48 MiB `.bss` holding one `__u64[6291455]`: rendering it built six million JSON values
    /// (over 2 GB under the fuzzer) for every view of the object. It is refused as too large to
    /// render, and the other variables still read.
    @Test func aVariableTooLargeToRenderIsATypedError() throws {
        var elf = try HostileELF(fixture: "globals")
        let size = 48 << 20
        HostileELF.put(UInt64(size), into: &elf.bytes, at: try elf.sectionHeader(named: ".bss") + 32)
        let arr = try elf.variableType("bss_arr")  // __u64[4] at .bss+8
        elf.setArrayCount(of: arr, to: UInt32((size - 8) / 8))
        try elf.setDatasecEntrySize(section: ".bss", variable: "bss_arr", to: UInt32(size - 8))
        let spec = try ObjectSpec(elf: elf.bytes, name: "globals")
        let big = try #require(spec.variable(named: "bss_arr"))
        #expect(big.size == UInt32(size - 8))
        #expect(throws: BTFValueDecoder.DecodeError.tooLarge(typeName: "__u64[6291455]", limit: BTFValueDecoder.maxValues)) {
            try spec.initialValue(of: big)
        }
        #expect(try spec.initialValue(of: #require(spec.variable(named: "data_int"))) == .int(1234))
        #expect(spec.summaryText.contains("__u64[6291455] bss_arr = <a __u64[6291455] has more than 1048576 values to render>"))
    }

    /// DATASEC entries may not overlap (the kernel's rule): thousands of entries that each cover
    /// a whole 64 MiB .bss would each be rendered in full.
    @Test func overlappingVariablesAreRefused() throws {
        var elf = try HostileELF(fixture: "globals")
        try elf.setDatasecEntrySize(section: ".data", variable: "data_int", to: 8)  // data_str starts at 4
        #expect(throws: ObjectError.datasecFixup(datasec: ".data", reason: "variable 'data_str' at 4 overlaps 'data_int', which ends at 8")) {
            try ObjectSpec(elf: elf.bytes, name: "globals")
        }
    }

    // MARK: - BTF

    /// A `.BTF` blob of these type records (each as its 32-bit words); strings "", "x", "y".
    static func btf(_ types: [[UInt32]]) throws -> BTF {
        let body = types.flatMap { $0 }.flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * UInt32($0))) } }
        let strings: [UInt8] = [0, 0x78, 0, 0x79, 0]
        var blob: [UInt8] = [0x9f, 0xeb, 1, 0]
        for w: UInt32 in [24, 0, UInt32(body.count), UInt32(body.count), UInt32(strings.count)] {
            blob += (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * UInt32($0))) }
        }
        return try BTF(parsing: blob + body + strings)
    }

    /// [1] an 8-byte int, then `levels` structs of 8 bytes, each with two members at offset 0 of
    /// the type before it (named x and y, or both anonymous): 2^levels leaves in 8 bytes.
    static func doublingStructs(levels: Int, anonymous: Bool = false) throws -> (BTF, top: UInt32) {
        var types: [[UInt32]] = [[0, 1 << 24, 8, 64]]
        for k in 1...levels {
            types.append([0, 4 << 24 | 2, 8, anonymous ? 0 : 1, UInt32(k), 0, anonymous ? 0 : 3, UInt32(k), 0])
        }
        return (try btf(types), UInt32(levels + 1))
    }

    /// Rendering such a value visited 2^30 leaves; it stops at 8 values a byte (+256).
    @Test(.timeLimit(.minutes(1))) func overlappingMembersCannotBlowUpRendering() throws {
        let (btf, top) = try Self.doublingStructs(levels: 30)
        #expect(throws: BTFValueDecoder.DecodeError.tooLarge(typeName: "struct {...}", limit: 8 * 8 + 256)) {
            try BTFValueDecoder(btf: btf).decode(top, [UInt8](repeating: 0, count: 8)[...])
        }
        // A few levels still render: 2^3 leaves.
        let (small, smallTop) = try Self.doublingStructs(levels: 3)
        let value = try BTFValueDecoder(btf: small).decode(smallTop, [UInt8](repeating: 0, count: 8)[...])
        #expect(value.text == #"{"x":{"x":{"x":0,"y":0},"y":{"x":0,"y":0}},"y":{"x":{"x":0,"y":0},"y":{"x":0,"y":0}}}"#)
    }

    /// Alignment walked every path through the same shared member types (2^30 of them).
    @Test(.timeLimit(.minutes(1))) func alignmentVisitsSharedMemberTypesOnce() throws {
        let (btf, top) = try Self.doublingStructs(levels: 30)
        #expect(try btf.alignment(top) == 8)
        // A struct that contains itself is a loop, not a stack overflow.
        let loop = try Self.btf([[0, 1 << 24, 4, 32], [0, 4 << 24 | 1, 4, 1, 2, 0]])
        #expect(throws: BTFError.typeLoop(id: 2)) { try loop.alignment(2) }
    }

    /// The encoder listed the members of anonymous members by walking every path (2^30 of them).
    @Test(.timeLimit(.minutes(1))) func anonymousMembersCannotBlowUpEncoding() throws {
        let (btf, top) = try Self.doublingStructs(levels: 30, anonymous: true)
        var bytes = [UInt8](repeating: 0, count: 8)
        let error = #expect(throws: BTFValueEncoder.EncodeError.self) {
            try BTFValueEncoder(btf: btf).encode(.object([("x", .int(1))]), as: top, into: &bytes, at: 0, path: "v")
        }
        #expect(error?.reason == .tooManyMembers(limit: BTFValueEncoder.maxMembers))
        #expect(bytes == [UInt8](repeating: 0, count: 8))
    }

    // MARK: - encoder round trip

    /// The variable's bytes in its section image.
    static func bytes(_ spec: ObjectSpec, _ v: VariableSpec) throws -> [UInt8] {
        let image = try #require(spec.dataSection(named: v.section)).image
        return Array(image[Int(v.offset)..<Int(v.offset + v.size)])
    }

    /// What a client does: read a variable (as JSON text), send that text back as a patch.
    static func writeBack(_ spec: ObjectSpec, _ name: String) throws -> ObjectSpec {
        let v = try #require(spec.variable(named: name))
        var again = spec
        try again.patch(variable: name, with: JSONValue(parsing: spec.initialValue(of: v).text))
        return again
    }

    /// Found by EncoderFuzz: `char[16]` set to `[0,0,11]` keeps "depot-data" after the first NUL;
    /// it decoded as "" and writing that back cleared the hidden bytes. A char array now reads as
    /// a string only when nothing but NULs follow the text.
    @Test func charArrayWithBytesAfterItsNULReadsAsNumbersAndWritesBackUnchanged() throws {
        var spec = try ObjectSpec(elf: Fixtures.bytes("globals"), name: "globals")
        let v = try #require(spec.variable(named: "data_str"))
        try spec.patch(variable: "data_str", with: JSONValue(parsing: "[0,0,11]"))
        let patched = try Self.bytes(spec, v)
        #expect(patched == [0, 0, 11] + Array("depot-data".utf8) + [0, 0, 0])
        #expect(try spec.initialValue(of: v) == JSONValue(parsing: "[0,0,11,100,101,112,111,116,45,100,97,116,97,0,0,0]"))
        #expect(try Self.bytes(Self.writeBack(spec, "data_str"), v) == patched)
        // A string, then only NULs, still reads as the string.
        try spec.patch(variable: "data_str", with: .string("hi"))
        #expect(try spec.initialValue(of: v) == .string("hi"))
    }

    /// The same loss through a union: `bytes` (unsigned char[8]) shares its storage with `wide`,
    /// so a wide value whose low bytes spell "AB\0" was corrupted by writing the union back.
    @Test func unionWithACharArrayMemberWritesBackUnchanged() throws {
        var spec = try ObjectSpec(elf: Fixtures.bytes("globals"), name: "globals")
        let v = try #require(spec.variable(named: "data_word"))
        try spec.patch(variable: "data_word", with: JSONValue(parsing: #"{"wide":72057594037944897}"#))  // 0x0100000000004241
        let patched = try Self.bytes(spec, v)
        #expect(patched == [0x41, 0x42, 0, 0, 0, 0, 0, 1])
        #expect(try spec.initialValue(of: v)["bytes"] == JSONValue(parsing: "[65,66,0,0,0,0,0,1]"))
        #expect(try Self.bytes(Self.writeBack(spec, "data_word"), v) == patched)
    }

    /// A char array with no NUL at all (a BPF program may fill it) cannot be written back as a
    /// string (a string needs room for its NUL), so it reads as numbers.
    @Test func charArrayWithoutANULReadsAsNumbers() throws {
        var spec = try ObjectSpec(elf: Fixtures.bytes("globals"), name: "globals")
        let v = try #require(spec.variable(named: "ro_name"))
        try spec.patch(variable: "ro_name", with: JSONValue(parsing: "[97,98,99,100,101,102,103,104]"))
        #expect(try spec.initialValue(of: v) == JSONValue(parsing: "[97,98,99,100,101,102,103,104]"))
        #expect(try Self.bytes(Self.writeBack(spec, "ro_name"), v) == Array("abcdefgh".utf8))
    }

    /// The property EncoderFuzz checks after every patch, on every variable of every fixture that
    /// parses, as compiled: the value read back, written back as JSON text, changes no byte.
    @Test func everyFixtureVariableWritesBackUnchanged() throws {
        var checked = 0
        for fixture in Fixtures.allSources {
            guard let spec = try? ObjectSpec(elf: Fixtures.bytes(fixture), name: fixture) else { continue }
            for v in spec.variables {
                let again = try Self.writeBack(spec, v.name)
                #expect(try Self.bytes(again, v) == Self.bytes(spec, v), "\(fixture): \(v.name)")
                checked += 1
            }
        }
        #expect(checked > 100)
    }
}

/// A compiled fixture with fields rewritten in place: section headers, and `.BTF` type records
/// found by walking the type section as the kernel lays it out.
struct HostileELF {
    var bytes: [UInt8]
    /// File offset of each BTF type record (index = type id; 0 unused).
    private var records: [Int] = [0]
    let btf: BTF

    struct Missing: Error, CustomStringConvertible { let description: String }

    init(fixture: String) throws {
        bytes = try Fixtures.bytes(fixture)
        let btfHeader = try HostileELF.sectionHeader(named: ".BTF", in: bytes)
        let start = Int(HostileELF.u64(bytes, btfHeader + 24)), size = Int(HostileELF.u64(bytes, btfHeader + 32))
        btf = try BTF(parsing: Array(bytes[start..<(start + size)]))
        let hdrLen = Int(HostileELF.u32(bytes, start + 4))
        var o = start + hdrLen + Int(HostileELF.u32(bytes, start + 8))
        let end = o + Int(HostileELF.u32(bytes, start + 12))
        while o < end {
            records.append(o)
            let info = HostileELF.u32(bytes, o + 4)
            let vlen = Int(info & 0xffff)
            o += 12
            switch (info >> 24) & 0x1f {
            case 1, 14, 17: o += 4                  // INT, VAR, DECL_TAG
            case 3: o += 12                         // ARRAY
            case 4, 5, 15, 19: o += 12 * vlen       // STRUCT, UNION, DATASEC, ENUM64
            case 6, 13: o += 8 * vlen               // ENUM, FUNC_PROTO
            default: break
            }
        }
    }

    func type(named name: String, kind: BTFKindTag) throws -> UInt32 {
        guard let id = btf.find(named: name, kind: kind) else { throw Missing(description: "no \(kind) \(name)") }
        return id
    }

    /// The type of the VAR `name`.
    func variableType(_ name: String) throws -> UInt32 {
        u32(records[Int(try type(named: name, kind: .variable))] + 8)
    }

    mutating func setVariableType(_ name: String, to type: UInt32) throws {
        set(type, at: records[Int(try self.type(named: name, kind: .variable))] + 8)
    }

    mutating func setMemberType(of aggregate: UInt32, member: Int, to type: UInt32) {
        set(type, at: records[Int(aggregate)] + 12 + 12 * member + 4)
    }

    mutating func setArrayCount(of array: UInt32, to count: UInt32) {
        set(count, at: records[Int(array)] + 12 + 8)
    }

    mutating func setDatasecEntrySize(section: String, variable: String, to size: UInt32) throws {
        let sec = try type(named: section, kind: .dataSection)
        let v = try type(named: variable, kind: .variable)
        guard case .dataSection(_, let vars)? = btf.type(sec)?.kind, let k = vars.firstIndex(where: { $0.type == v }) else {
            throw Missing(description: "\(variable) is not in \(section)")
        }
        set(size, at: records[Int(sec)] + 12 + 12 * k + 8)
    }

    func sectionHeader(named name: String) throws -> Int { try HostileELF.sectionHeader(named: name, in: bytes) }

    /// Moves the section header table to the end of the file with `headers` added.
    mutating func appendSectionHeaders(_ headers: [[UInt8]]) {
        let shoff = Int(HostileELF.u64(bytes, 0x28)), shnum = Int(bytes[0x3c]) | Int(bytes[0x3d]) << 8
        let table = Array(bytes[shoff..<(shoff + 64 * shnum)]) + headers.flatMap { $0 }
        while bytes.count % 8 != 0 { bytes.append(0) }
        HostileELF.put(UInt64(bytes.count), into: &bytes, at: 0x28)
        let count = shnum + headers.count
        bytes[0x3c] = UInt8(count & 0xff)
        bytes[0x3d] = UInt8(count >> 8)
        bytes += table
    }

    static func sectionHeader(named name: String, in b: [UInt8]) throws -> Int {
        let shoff = Int(u64(b, 0x28)), shnum = Int(b[0x3c]) | Int(b[0x3d]) << 8
        let shstrndx = Int(b[0x3e]) | Int(b[0x3f]) << 8
        let strings = Int(u64(b, shoff + 64 * shstrndx + 24))
        let target = Array(name.utf8) + [0]
        for i in 0..<shnum {
            let at = strings + Int(u32(b, shoff + 64 * i))
            if Array(b[at..<(at + target.count)]) == target { return shoff + 64 * i }
        }
        throw Missing(description: "no section \(name)")
    }

    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * UInt32($1)) } }
    static func u64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) } }
    static func put(_ v: UInt64, into b: inout [UInt8], at o: Int) {
        for k in 0..<8 { b[o + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
    }

    private func u32(_ o: Int) -> UInt32 { HostileELF.u32(bytes, o) }
    private mutating func set(_ v: UInt32, at o: Int) {
        for k in 0..<4 { bytes[o + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
    }
}

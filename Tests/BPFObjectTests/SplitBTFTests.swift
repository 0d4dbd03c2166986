import BPFObject
import BPFTestSupport
import Foundation
import Testing

/// Split BTF (a kernel module's, over vmlinux): own ids continue after the base's last id, own
/// string offsets after the base's string section, and types may name base types and strings.
@Suite struct SplitBTFTests {
    /// Base: [1] int, [2] int *, [3] struct pair { int a; int b; }.
    static func base() throws -> (BTF, [UInt8]) {
        var b = BTFBlobBuilder()
        let int = b.int("int", size: 4)
        _ = b.pointer(to: int)
        _ = b.structure("pair", size: 8, members: [("a", int, bitOffset: 0), ("b", int, bitOffset: 32)])
        let blob = b.blob()
        return (try BTF(parsing: blob), blob)
    }

    /// Split over `base`: [4] FUNC_PROTO int (int *p, struct pair q), [5] FUNC mod_kfunc,
    /// [6] const struct pair, [7] VAR mod_counter (int), [8] TYPEDEF pair_t → [3],
    /// [9] FUNC int (reusing the base string "int" as its name: a FUNC, not the base INT).
    static func split(over base: BTF, leadingNUL: Bool = true) -> BTFBlobBuilder {
        var s = BTFBlobBuilder(baseTypeCount: UInt32(base.types.count), baseStringLength: UInt32(base.strings.count),
                               leadingNUL: leadingNUL)
        let proto = s.functionProto(returns: 1, params: [("p", 2), ("q", 3)])
        _ = s.function("mod_kfunc", proto: proto)
        _ = s.const(3)
        _ = s.variable("mod_counter", type: 1)
        _ = s.typedef("pair_t", 3)
        _ = s.raw([1, 12 << 24 | 1, proto])  // name offset 1 = base "int"
        return s
    }

    @Test("split BTF: own ids follow the base's last id, names resolve in base and own strings")
    func idsAndNames() throws {
        let (base, _) = try Self.base()
        #expect(base.types.count == 4)
        for leadingNUL in [true, false] {
            let blob = Self.split(over: base, leadingNUL: leadingNUL).blob()
            let split = try SplitBTF(parsing: blob, base: base)
            #expect(split.firstID == 4)
            #expect(split.endID == 10)
            #expect(split.stringBase == UInt32(base.strings.count))
            #expect(split.ownTypes.count == 6)

            #expect(split.findOwn(named: "mod_kfunc", kind: .function) == 5)
            #expect(split.name(of: 5) == "mod_kfunc")
            guard case .function(let proto, let linkage)? = split.type(5)?.kind else {
                Issue.record("[5] is not a FUNC: \(String(describing: split.type(5)))")
                continue
            }
            #expect(proto == 4)
            #expect(linkage == 1)
            guard case .functionProto(let ret, let params)? = split.type(4)?.kind else {
                Issue.record("[4] is not a FUNC_PROTO")
                continue
            }
            #expect(ret == 1)
            #expect(params.map(\.type) == [2, 3])
            #expect(params.map { split.string(at: $0.nameOffset) } == ["p", "q"])
            // Own types name base types: the parameter's struct is the base's.
            #expect(split.name(of: 3) == "pair")
            #expect(split.type(6)?.kind == .const(3))
            #expect(try split.skipModifiersAndTypedefs(8) == 3)
            #expect(split.findOwn(named: "mod_counter", kind: .variable) == 7)
            #expect(split.findOwn(named: "pair_t") == 8)
            // Base types are not the module's own.
            #expect(split.findOwn(named: "pair", kind: .structure) == nil)
            #expect(split.findOwn(named: "int", kind: .int) == nil)
            // A name held in base strings, on an own type.
            #expect(split.findOwn(named: "int", kind: .function) == 9)
            #expect(split.name(of: 9) == "int")
            #expect(split.findOwn(named: "mod_kfunc", kind: .variable) == nil)
            #expect(split.findOwn(named: "mod_kfun") == nil)
            #expect(split.type(10) == nil)
            #expect(split.type(0) == nil)
        }
    }

    @Test("split BTF may have no strings of its own")
    func noOwnStrings() throws {
        let (base, _) = try Self.base()
        var s = BTFBlobBuilder(baseTypeCount: 4, baseStringLength: UInt32(base.strings.count), leadingNUL: false)
        _ = s.const(3)
        _ = s.pointer(to: 4)
        let split = try SplitBTF(parsing: s.blob(), base: base)
        #expect(split.endID == 6)
        #expect(split.type(5)?.kind == .pointer(4))
        #expect(split.string(at: split.stringBase) == "")
    }

    @Test("bpftool (libbpf) reads the test's split blob with the same ids and names")
    func bpftoolAgrees() throws {
        let tool = "/usr/sbin/bpftool"
        guard FileManager.default.isExecutableFile(atPath: tool) else { return }
        let (base, baseBlob) = try Self.base()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("splitbtf-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let basePath = dir.appendingPathComponent("base.btf"), splitPath = dir.appendingPathComponent("split.btf")
        try Data(baseBlob).write(to: basePath)
        try Data(Self.split(over: base).blob()).write(to: splitPath)
        let out = try Fixtures.run(tool, ["-B", basePath.path, "btf", "dump", "file", splitPath.path]).get()
        #expect(out.contains("[5] FUNC 'mod_kfunc' type_id=4 linkage=global"), "\(out)")
        #expect(out.contains("[7] VAR 'mod_counter' type_id=1"), "\(out)")
        #expect(out.contains("[8] TYPEDEF 'pair_t' type_id=3"), "\(out)")
        #expect(out.contains("[9] FUNC 'int' type_id=4"), "\(out)")
        #expect(out.contains("'p' type_id=2"), "\(out)")
        #expect(!out.contains("[10]"), "\(out)")
    }

    @Test("malformed split BTF: typed errors, never a trap")
    func malformed() throws {
        let (base, _) = try Self.base()

        // A name offset past base + own strings.
        var s = Self.split(over: base)
        let past = s.stringBase + UInt32(s.strings.count)
        _ = s.raw([past, 8 << 24, 1])
        #expect(throws: BTFError.badString(offset: past)) { try SplitBTF(parsing: s.blob(), base: base) }

        // A reference past the last own id (ids are counted from the base's).
        s = Self.split(over: base)
        _ = s.pointer(to: 11)
        #expect(throws: BTFError.badType(id: 10, reason: "refers to type [11], only 10 exist")) {
            try SplitBTF(parsing: s.blob(), base: base)
        }
        // Over a smaller base the same blob's references no longer fit.
        var smallBuilder = BTFBlobBuilder()
        _ = smallBuilder.int("int", size: 4)
        let small = try BTF(parsing: smallBuilder.blob())
        #expect(throws: BTFError.self) { try SplitBTF(parsing: Self.split(over: base).blob(), base: small) }

        // Truncated type record, bad magic, unterminated strings, unknown kind.
        var blob = Self.split(over: base).blob()
        let typeLen = Int(blob[12]) | Int(blob[13]) << 8
        blob[12] = UInt8((typeLen - 2) & 0xff); blob[13] = UInt8((typeLen - 2) >> 8)
        #expect {
            try SplitBTF(parsing: blob, base: base)
        } throws: { error in
            if case .truncated? = error as? BTFError { return true }
            return false
        }
        blob = Self.split(over: base).blob()
        blob[0] = 0
        #expect(throws: BTFError.self) { try SplitBTF(parsing: blob, base: base) }
        blob = Self.split(over: base).blob()
        blob[blob.count - 1] = 0x41
        #expect(throws: BTFError.badHeader(reason: "string section is not NUL-terminated")) { try SplitBTF(parsing: blob, base: base) }
        s = Self.split(over: base)
        _ = s.raw([0, 31 << 24, 0])
        #expect(throws: BTFError.unknownKind(id: 10, kind: 31)) { try SplitBTF(parsing: s.blob(), base: base) }
        // A split blob is not valid base BTF: its names point past its own strings.
        #expect(throws: BTFError.self) { try BTF(parsing: Self.split(over: base).blob()) }
    }

    @Test("every truncation and 20,000 byte mutations of a split blob end in a typed error or a consistent parse")
    func mutations() throws {
        let (base, _) = try Self.base()
        let good = Self.split(over: base).blob()
        func check(_ bytes: [UInt8]) -> Bool {
            do {
                let split = try SplitBTF(parsing: bytes, base: base)
                // A parse that succeeds names only types that exist.
                for id in split.firstID..<split.endID {
                    guard let t = split.type(id) else { return false }
                    if let r = t.kind.referencedType, r >= split.endID { return false }
                    _ = split.string(at: t.nameOffset)
                }
                return true
            } catch {
                return true
            }
        }
        for n in 0..<good.count { #expect(check(Array(good[0..<n]))) }
        var random = SplitMix64(state: 0x5EED_5B17)
        for _ in 0..<20_000 {
            var b = good
            for _ in 0...random.below(4) { b[random.below(b.count)] = UInt8(truncatingIfNeeded: random.next()) }
            #expect(check(b))
        }
    }
}

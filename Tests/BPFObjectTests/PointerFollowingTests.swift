import BPFObject
import BPFTestSupport
import Testing

/// Pointer following over a fake arena: pages the test says exist, reads recorded, so a test
/// can check that an absent page is never read.
final class FakeArena: ArenaMemory {
    let start: UInt64
    let size: UInt64
    var memory: [UInt8]
    var present: Set<UInt64>
    var reads: [(UInt64, Int)] = []

    init(start: UInt64, pages: Int, present: Set<UInt64>) {
        self.start = start
        self.size = UInt64(pages * 4096)
        self.memory = [UInt8](repeating: 0, count: pages * 4096)
        self.present = present
    }

    func read(offset: UInt64, count: Int) -> ArenaRead {
        for page in (offset >> 12)...((offset + UInt64(count) - 1) >> 12) where !present.contains(page) { return .absent }
        reads.append((offset, count))
        return .bytes(Array(memory[Int(offset)..<(Int(offset) + count)]))
    }

    func put(_ value: UInt64, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { memory.replaceSubrange(offset..<(offset + 8), with: $0) }
    }

    /// A `struct node {next, prev, value}` at `offset`.
    func node(at offset: Int, next: UInt64, prev: UInt64, value: UInt64) {
        put(next, at: offset)
        put(prev, at: offset + 8)
        put(value, at: offset + 16)
    }
}

@Suite struct PointerFollowingTests {
    static let base: UInt64 = 0x1100_0000_0000

    /// arena_list.bpf.c's BTF and the type of `list_head` (`struct node __arena *`).
    static func listTypes() throws -> (BTF, UInt32) {
        let spec = try ObjectSpec(elf: Fixtures.bytes("arena_list"), name: "arena_list")
        let btf = try #require(spec.btf)
        return (btf, try #require(spec.variable(named: "list_head")).btfTypeID)
    }

    static func pointer(_ v: UInt64) -> ArraySlice<UInt8> { withUnsafeBytes(of: v.littleEndian) { Array($0) }[...] }

    /// The values along `next` of a followed list, and what the last link says.
    static func walk(_ v: JSONValue) -> (values: [UInt64], end: JSONValue?) {
        var values: [UInt64] = []
        var cur: JSONValue? = v
        while let c = cur, case .object = c {
            guard let target = c["target"] else { return (values, c) }
            if case .uint(let n)? = target["value"] { values.append(n) }
            cur = target["next"]
        }
        return (values, cur)
    }

    @Test func aListReadsAsItsNodesInOrderAndBackPointersAreSeen() throws {
        let (btf, type) = try Self.listTypes()
        let arena = FakeArena(start: Self.base, pages: 8, present: [1])
        for i in 0..<5 {
            let at = 4096 + 24 * i
            arena.node(at: at, next: i < 4 ? Self.base + UInt64(at + 24) : 0, prev: i > 0 ? Self.base + UInt64(at - 24) : 0, value: UInt64(i + 1))
        }
        let following = PointerFollowing(memory: arena, depth: 16, nodes: 100)
        let v = try BTFValueDecoder(btf: btf).decode(type, Self.pointer(Self.base + 4096), following: following)
        let (values, end) = Self.walk(v)
        #expect(values == [1, 2, 3, 4, 5], "\(v.text)")
        #expect(end == .null, "the last node's next is null")
        #expect(v["ptr"] == .string("0x110000001000"))
        // The second node's prev is the first node, shown once already.
        let second = try #require(v["target"]?["next"]?["target"])
        #expect(second["prev"] == .object([("ptr", .string("0x110000001000")), ("seen", .bool(true))]), "\(second.text)")
        #expect(following.nodesLeft == 95)
    }

    @Test func depthAndNodeBudgetsStopWhereTheySay() throws {
        let (btf, type) = try Self.listTypes()
        let arena = FakeArena(start: Self.base, pages: 8, present: [1])
        for i in 0..<10 { arena.node(at: 4096 + 24 * i, next: Self.base + UInt64(4096 + 24 * (i + 1)), prev: 0, value: UInt64(i)) }
        let shallow = try BTFValueDecoder(btf: btf).decode(type, Self.pointer(Self.base + 4096),
                                                            following: PointerFollowing(memory: arena, depth: 3, nodes: 100))
        let (a, endA) = Self.walk(shallow)
        #expect(a == [0, 1, 2])
        #expect(endA?["more"] == .string("depth"), "\(shallow.text)")
        let budget = try BTFValueDecoder(btf: btf).decode(type, Self.pointer(Self.base + 4096),
                                                           following: PointerFollowing(memory: arena, depth: 50, nodes: 4))
        let (b, endB) = Self.walk(budget)
        #expect(b == [0, 1, 2, 3])
        #expect(endB?["more"] == .string("nodes"))
    }

    @Test func aCycleStopsAndAbsentPagesAreNeverRead() throws {
        let (btf, type) = try Self.listTypes()
        let arena = FakeArena(start: Self.base, pages: 8, present: [1])
        // Two nodes pointing at each other; the second's prev points into page 5, never allocated.
        arena.node(at: 4096, next: Self.base + 4096 + 24, prev: 0, value: 7)
        arena.node(at: 4096 + 24, next: Self.base + 4096, prev: Self.base + 5 * 4096, value: 8)
        let v = try BTFValueDecoder(btf: btf).decode(type, Self.pointer(Self.base + 4096),
                                                      following: PointerFollowing(memory: arena, depth: 50, nodes: 100))
        let (values, end) = Self.walk(v)
        #expect(values == [7, 8])
        #expect(end?["seen"] == .bool(true), "the cycle back to the first node stops: \(v.text)")
        let second = try #require(v["target"]?["next"]?["target"])
        #expect(second["prev"] == .object([("ptr", .string("0x110000005000")), ("absent", .bool(true))]))
        #expect(arena.reads.allSatisfy { $0.0 >> 12 == 1 }, "only the present page was read: \(arena.reads)")
    }

    @Test func pointersOutsideTheArenaAndLow32BitOffsets() throws {
        let (btf, type) = try Self.listTypes()
        let arena = FakeArena(start: Self.base, pages: 8, present: [2])
        arena.node(at: 8192, next: 0xffff_8880_0000_1000, prev: 0x9000_0000, value: 3)
        // Only the low 32 bits (upper bits zero): the kernel's own view of an arena address.
        let v = try BTFValueDecoder(btf: btf).decode(type, Self.pointer(0x2000), following: PointerFollowing(memory: arena, depth: 4, nodes: 10))
        let node = try #require(v["target"], "\(v.text)")
        #expect(node["value"] == .uint(3))
        #expect(node["next"]?["outside"] == .bool(true), "a kernel address")
        #expect(node["prev"]?["outside"] == .bool(true), "past the arena's end")
        // Without following, a pointer is still a number.
        #expect(try BTFValueDecoder(btf: btf).decode(type, Self.pointer(Self.base)) == .uint(Self.base))
    }
}

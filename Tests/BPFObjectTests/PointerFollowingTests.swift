@testable import BPFObject
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

    // MARK: the kernel's hlist shape (arena_hlist.bpf.c): nodes embedded in elements

    /// arena_hlist.bpf.c's BTF and the type of `list_head` (`struct hl_head __arena *`).
    static func hlistTypes() throws -> (BTF, UInt32) {
        let spec = try ObjectSpec(elf: Fixtures.bytes("arena_hlist"), name: "arena_hlist")
        let btf = try #require(spec.btf)
        return (btf, try #require(spec.variable(named: "list_head")).btfTypeID)
    }

    /// An hlist as hlist_build makes it in page 0: the head at 0, `struct elem {value, pad,
    /// node {next, pprev}}` (32 bytes) from byte 64, element i holding `101 + i`, each pushed
    /// at the front. Returns the node address of element i.
    static func hlist(_ arena: FakeArena, count: Int) -> (Int) -> UInt64 {
        let node = { (i: Int) -> UInt64 in base + UInt64(64 + 32 * i + 16) }
        arena.put(node(count - 1), at: 0)
        for i in 0..<count {
            let at = 64 + 32 * i
            arena.put(UInt64(101 + i), at: at)
            arena.put(i > 0 ? node(i - 1) : 0, at: at + 16)                // next: the element pushed before
            arena.put(i == count - 1 ? base : node(i + 1), at: at + 24)    // pprev: &head->first or &next of the one after
        }
        return node
    }

    @Test func embeddedNodesReadAsTheirElementsAndPprevIsSeenWithinThePreviousOne() throws {
        let (btf, type) = try Self.hlistTypes()
        let arena = FakeArena(start: Self.base, pages: 4, present: [0])
        let node = Self.hlist(arena, count: 3)
        let following = PointerFollowing(memory: arena, depth: 16, nodes: 100)
        let v = try BTFValueDecoder(btf: btf).decode(type, Self.pointer(Self.base), following: following)
        // head -> first -> elem(103) -> node.next -> elem(102) -> elem(101) -> null
        let first = try #require(v["target"]?["first"], "\(v.text)")
        #expect(first["container"] == .string("elem") && first["member"] == .string("node"), "\(first.text)")
        #expect(first["ptr"] == PointerFollowing.hex(node(2)), "ptr stays the stored value (the node's address)")
        var values: [UInt64] = []
        var cur: JSONValue? = first
        var elems: [JSONValue] = []
        while let c = cur, let e = c["target"] {
            if case .uint(let x)? = e["value"] { values.append(x) }
            elems.append(e)
            cur = e["node"]?["next"]
        }
        #expect(values == [103, 102, 101], "\(v.text)")
        #expect(cur == .null, "the last element's next is null")
        // The front element's pprev is &head->first: the head, shown first.
        #expect(elems[0]["node"]?["pprev"] == .object([("ptr", PointerFollowing.hex(Self.base)), ("seen", .bool(true))]))
        // The others' pprev is the previous element's node.next, 16 bytes into that element.
        #expect(elems[1]["node"]?["pprev"] == .object([("ptr", PointerFollowing.hex(node(2))), ("seen", .bool(true)),
                                                        ("within", PointerFollowing.hex(node(2) - 16))]), "\(elems[1].text)")
        #expect(following.nodesLeft == 100 - 4, "the head and three elements")
    }

    @Test func anHlistCycleStopsWithinTheFirstElementAndBudgetsCountElements() throws {
        let (btf, type) = try Self.hlistTypes()
        let arena = FakeArena(start: Self.base, pages: 4, present: [0])
        let node = Self.hlist(arena, count: 5)
        arena.put(node(4), at: 64 + 16)  // the last element's next back at the first one's node
        let v = try BTFValueDecoder(btf: btf).decode(type, Self.pointer(Self.base), following: PointerFollowing(memory: arena, depth: 50, nodes: 100))
        var cur = v["target"]?["first"]
        var values: [UInt64] = []
        while let c = cur, let e = c["target"] {
            if case .uint(let x)? = e["value"] { values.append(x) }
            cur = e["node"]?["next"]
        }
        #expect(values == [105, 104, 103, 102, 101])
        #expect(cur == .object([("ptr", PointerFollowing.hex(node(4))), ("seen", .bool(true)), ("within", PointerFollowing.hex(node(4) - 16))]),
                "the cycle ends at the first element, named by its start: \(v.text)")
        // Two nodes of budget: the head and one element, then "more".
        let short = try BTFValueDecoder(btf: btf).decode(type, Self.pointer(Self.base), following: PointerFollowing(memory: arena, depth: 50, nodes: 2))
        #expect(short["target"]?["first"]?["target"]?["value"] == .uint(105))
        #expect(short["target"]?["first"]?["target"]?["node"]?["next"]?["more"] == .string("nodes"), "\(short.text)")
        // Depth 2: the head, the first element; its next is where depth ends.
        let shallow = try BTFValueDecoder(btf: btf).decode(type, Self.pointer(Self.base), following: PointerFollowing(memory: arena, depth: 2, nodes: 100))
        #expect(shallow["target"]?["first"]?["target"]?["node"]?["next"]?["more"] == .string("depth"), "\(shallow.text)")
    }

    @Test func aContainerIsInferredOnlyWhenOneStructEmbedsTheNode() throws {
        var (btf, type) = try Self.hlistTypes()
        let arena = FakeArena(start: Self.base, pages: 4, present: [0])
        let node = Self.hlist(arena, count: 2)
        // A second struct embedding hl_node: which one holds a given node is no longer known.
        let hlNode = try #require(btf.find(named: "hl_node", kind: .structure))
        let name = btf.addString("other")
        btf.types.append(BTFType(nameOffset: name, kind: .structure(size: 16, members: [BTFMember(nameOffset: 0, type: hlNode, offset: 0)], bitfieldOffsets: false)))
        let v = try BTFValueDecoder(btf: btf).decode(type, Self.pointer(Self.base), following: PointerFollowing(memory: arena, depth: 8, nodes: 100))
        let first = try #require(v["target"]?["first"])
        #expect(first["container"] == nil, "\(first.text)")
        #expect(first["target"]?["next"]?["ptr"] == PointerFollowing.hex(node(0)), "the node itself, next and pprev: \(first.text)")
        #expect(first["target"]?["value"] == nil)
    }

    @Test func aContainerReachingAnAbsentPageReadsAsTheNodeAlone() throws {
        let (btf, _) = try Self.hlistTypes()
        let hlNode = try #require(btf.find(named: "hl_node", kind: .structure))
        // A node at the very start of page 1: its element would begin in page 0, never allocated.
        let arena = FakeArena(start: Self.base, pages: 4, present: [1])
        let following = PointerFollowing(memory: arena, depth: 4, nodes: 10)
        let v = try following.pointer(Self.base + 4096, target: hlNode, level: 1, btf: btf) { (id, bytes, _) throws(BTFValueDecoder.DecodeError) in
            try BTFValueDecoder(btf: btf).decode(id, bytes)
        }
        #expect(v["container"] == nil && v["target"]?["next"] == .uint(0), "\(v.text)")
        #expect(arena.reads.allSatisfy { $0.0 >> 12 == 1 }, "page 0 was never read: \(arena.reads)")
    }
}

/// What an arena read gives back: the bytes, or why there are none.
public enum ArenaRead: Sendable, Equatable {
    case bytes([UInt8])
    /// The page was never allocated (reading it through the user mapping would allocate it).
    case absent
    /// Whether the page exists could not be found out: nothing was read.
    case unknown(String)
}

/// An arena's memory as a pointer follower reads it. Implementations must never read a page
/// that does not exist (see `ArenaRead.absent`).
public protocol ArenaMemory {
    /// The user address of the arena's first byte.
    var start: UInt64 { get }
    /// Its size in bytes.
    var size: UInt64 { get }
    /// `count` bytes at `offset` from `start`; the caller keeps `offset + count <= size`.
    func read(offset: UInt64, count: Int) -> ArenaRead
}

/// State of one pointer-following decode: how deep and how many pointers it may still follow,
/// and the memory already shown (a second visit, a cycle included, is not followed again).
///
/// Pointers render as `{"ptr": "0x…", "target": …}` when followed; without a target and with
/// `"seen": true` (shown already on this read; a pointer into the middle of something shown,
/// such as an hlist node's `pprev` naming the previous node's `next` field, adds
/// `"within": "0x…"`, the start of what contains it), `"absent": true` (its page was never
/// allocated), `"outside": true` (not an address in the arena), `"more": "depth"` or
/// `"more": "nodes"` (the depth or node budget ran out), `"unknown": "<why>"` (whether its page
/// exists could not be found out). A null pointer is `null`; a pointer to void or a function is
/// `{"ptr": …}`.
///
/// Embedded nodes (`container_of`): a pointer to a struct type that the object's BTF embeds as
/// a member of exactly one other struct (the kernel's `arena_list_node` inside `struct elem`)
/// reads as that containing struct, marked `"container": "<struct>"` and `"member":
/// "<member>"`; `ptr` stays the stored value. Where the containing struct would not fit in the
/// arena, or its memory is not all there, the pointer reads as its own type.
public final class PointerFollowing {
    public let memory: any ArenaMemory
    public let maxDepth: Int
    public private(set) var nodesLeft: Int
    /// Arena offsets of the values shown, as half-open ranges sorted by start.
    private var shown: [(start: UInt64, end: UInt64)] = []
    /// Per pointee type: the one struct embedding it, or nil (none, or more than one).
    private var containers: [UInt32: Container?] = [:]

    struct Container {
        let type: UInt32
        let name: String
        let member: String
        /// Byte offset of the member in the container.
        let offset: UInt64
        let size: UInt64
    }

    public init(memory: any ArenaMemory, depth: Int, nodes: Int) {
        self.memory = memory
        self.maxDepth = depth
        self.nodesLeft = nodes
    }

    /// The offset into the arena of a stored pointer: a full user address inside the arena, or
    /// its low 32 bits alone (the kernel addresses arena memory by them).
    func offset(of raw: UInt64) -> UInt64? {
        let start = memory.start
        guard raw >> 32 == start >> 32 || raw >> 32 == 0 else { return nil }
        let low = raw & 0xffff_ffff, base = start & 0xffff_ffff
        guard low >= base, low - base < memory.size else { return nil }
        return low - base
    }

    static func hex(_ v: UInt64) -> JSONValue { .string("0x" + String(v, radix: 16)) }

    /// The shown range holding arena offset `off`, if any.
    func shownRange(holding off: UInt64) -> (start: UInt64, end: UInt64)? {
        // Last range starting at or before off; ranges may nest, so look a few back.
        var lo = 0, hi = shown.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if shown[mid].start <= off { lo = mid + 1 } else { hi = mid }
        }
        var i = lo - 1
        var looked = 0
        while i >= 0, looked < 16 {
            if shown[i].start <= off, off < shown[i].end { return shown[i] }
            i -= 1
            looked += 1
        }
        return nil
    }

    private func markShown(_ start: UInt64, _ end: UInt64) {
        var lo = 0, hi = shown.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if shown[mid].start <= start { lo = mid + 1 } else { hi = mid }
        }
        shown.insert((start, end), at: lo)
    }

    /// The one struct or union of `btf` with a member of type `target` (typedefs and modifiers
    /// skipped), when there is exactly one such member in all of it.
    func container(of target: UInt32, btf: BTF) -> Container? {
        if let known = containers[target] { return known }
        var found: Container?
        var count = 0
        for (i, t) in btf.types.enumerated() where i > 0 && count < 2 {
            guard case .structure(let size, let members, let kf) = t.kind else { continue }
            for m in members {
                guard (try? btf.skipModifiersAndTypedefs(m.type)) == target else { continue }
                count += 1
                let bits = kf ? m.offset & 0xff_ffff : m.offset
                let name = btf.string(at: t.nameOffset)
                if bits % 8 == 0, !name.isEmpty, UInt32(i) != target {
                    found = Container(type: UInt32(i), name: name, member: btf.string(at: m.nameOffset),
                                      offset: UInt64(bits / 8), size: UInt64(size))
                } else {
                    found = nil
                }
            }
        }
        let result = count == 1 ? found : nil
        containers[target] = result
        return result
    }

    /// Renders the pointer `raw` of pointee type `target` at nesting `level` (1 for a pointer in
    /// the variable itself).
    func pointer(_ raw: UInt64, target: UInt32, level: Int, btf: BTF,
                 decode: (UInt32, ArraySlice<UInt8>, Int) throws(BTFValueDecoder.DecodeError) -> JSONValue)
        throws(BTFValueDecoder.DecodeError) -> JSONValue {
        if raw == 0 { return .null }
        let ptr = ("ptr", Self.hex(raw))
        guard let off = offset(of: raw) else { return .object([ptr, ("outside", .bool(true))]) }
        guard let resolved = try? btf.skipModifiersAndTypedefs(target), let t = btf.type(resolved) else { return .object([ptr]) }
        switch t.kind {
        case .void, .function, .functionProto, .forward: return .object([ptr])
        default: break
        }
        guard let size = try? btf.resolveSize(resolved), size > 0 else { return .object([ptr]) }
        if let r = shownRange(holding: off) {
            if r.start == off { return .object([ptr, ("seen", .bool(true))]) }
            return .object([ptr, ("seen", .bool(true)), ("within", Self.hex(memory.start &+ r.start))])
        }
        if level > maxDepth { return .object([ptr, ("more", .string("depth"))]) }
        if nodesLeft <= 0 { return .object([ptr, ("more", .string("nodes"))]) }
        guard off + size <= memory.size else { return .object([ptr, ("outside", .bool(true))]) }
        if let c = container(of: resolved, btf: btf), off >= c.offset, off - c.offset + c.size <= memory.size,
           c.offset + size <= c.size,
           case .bytes(let bytes) = memory.read(offset: off - c.offset, count: Int(c.size)) {
            nodesLeft -= 1
            markShown(off - c.offset, off - c.offset + c.size)
            return .object([ptr, ("container", .string(c.name)), ("member", .string(c.member)),
                            ("target", try decode(c.type, bytes[...], level))])
        }
        switch memory.read(offset: off, count: Int(size)) {
        case .absent:
            return .object([ptr, ("absent", .bool(true))])
        case .unknown(let why):
            return .object([ptr, ("unknown", .string(why))])
        case .bytes(let bytes):
            nodesLeft -= 1
            markShown(off, off + size)
            return .object([ptr, ("target", try decode(target, bytes[...], level))])
        }
    }
}

/// No arena: every pointer is outside it.
public struct NoArena: ArenaMemory {
    public init() {}
    public var start: UInt64 { 0 }
    public var size: UInt64 { 0 }
    public func read(offset: UInt64, count: Int) -> ArenaRead { .unknown("the object has no arena") }
}

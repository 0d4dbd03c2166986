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
/// and the addresses already shown (a second visit, a cycle included, is not followed again).
///
/// Pointers render as `{"ptr": "0x…", "target": …}` when followed; without a target and with
/// `"seen": true` (shown already on this read), `"absent": true` (its page was never allocated),
/// `"outside": true` (not an address in the arena), `"more": "depth"` or `"more": "nodes"`
/// (the depth or node budget ran out), `"unknown": "<why>"` (whether its page exists could not
/// be found out). A null pointer is `null`; a pointer to void or a function is `{"ptr": …}`.
public final class PointerFollowing {
    public let memory: any ArenaMemory
    public let maxDepth: Int
    public private(set) var nodesLeft: Int
    private var seen: Set<UInt64> = []

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

    /// Renders the pointer `raw` of pointee type `target` at nesting `level` (1 for a pointer in
    /// the variable itself).
    func pointer(_ raw: UInt64, target: UInt32, level: Int, btf: BTF,
                 decode: (UInt32, ArraySlice<UInt8>, Int) throws(BTFValueDecoder.DecodeError) -> JSONValue)
        throws(BTFValueDecoder.DecodeError) -> JSONValue {
        if raw == 0 { return .null }
        let ptr = ("ptr", Self.hex(raw))
        guard let off = offset(of: raw) else { return .object([ptr, ("outside", .bool(true))]) }
        let address = memory.start &+ off
        guard let resolved = try? btf.skipModifiersAndTypedefs(target), let t = btf.type(resolved) else { return .object([ptr]) }
        switch t.kind {
        case .void, .function, .functionProto, .forward: return .object([ptr])
        default: break
        }
        guard let size = try? btf.resolveSize(resolved), size > 0 else { return .object([ptr]) }
        if seen.contains(address) { return .object([ptr, ("seen", .bool(true))]) }
        if level > maxDepth { return .object([ptr, ("more", .string("depth"))]) }
        if nodesLeft <= 0 { return .object([ptr, ("more", .string("nodes"))]) }
        guard off + UInt64(size) <= memory.size else { return .object([ptr, ("outside", .bool(true))]) }
        switch memory.read(offset: off, count: Int(size)) {
        case .absent:
            return .object([ptr, ("absent", .bool(true))])
        case .unknown(let why):
            return .object([ptr, ("unknown", .string(why))])
        case .bytes(let bytes):
            nodesLeft -= 1
            seen.insert(address)
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

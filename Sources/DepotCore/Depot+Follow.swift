import BPFKernel
import BPFObject

/// A live read with arena pointers followed: decoded at once (the pointed-to memory is read
/// now), tagged from the rendered text (a change anywhere it reached changes the tag).
public struct FollowedRead: Sendable {
    public let views: [VariableView]
    /// Page-copy runs this read made (each copies up to 7 arena pages from the kernel's mapping).
    public let probeRuns: Int

    /// `{"variables": [...]}`.
    public var body: [UInt8] {
        var out: [UInt8] = []
        JSONValue.appendRaw(#"{"variables":["#, to: &out)
        for (i, v) in views.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            v.appendJSON(to: &out)
        }
        JSONValue.appendRaw("]}", to: &out)
        return out
    }

    /// FNV-1a of a body.
    public static func hash(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for x in bytes { h = (h ^ UInt64(x)) &* 0x100_0000_01b3 }
        return h
    }
}

extension Depot {
    public static let maxFollowDepth = 100
    public static let maxFollowNodes = 10_000
    public static let defaultFollowNodes = 1000

    /// `readLive`, decoding pointers into the load's arena up to `depth` levels and `nodes`
    /// pointed-to values in all. Arena memory is copied from the kernel's mapping of the arena
    /// (`LiveArenaMemory`), never read through the user mapping: a follow never makes the kernel
    /// allocate an arena page.
    public func readLive(loadID: Int64, names: [String]?, follow depth: Int, nodes: Int) throws(DepotError) -> FollowedRead {
        let live = try readLive(loadID: loadID, names: names)
        let obj = live.object
        guard let btf = obj.spec.btf else { return FollowedRead(views: [], probeRuns: 0) }
        let arena = LiveArenaMemory(object: obj)
        let following = PointerFollowing(memory: arena ?? NoArena(), depth: depth, nodes: nodes)
        let decoder = BTFValueDecoder(btf: btf)
        var views: [VariableView] = []
        views.reserveCapacity(live.indices.count)
        for (i, b) in zip(live.indices, live.bytes) {
            let v = obj.spec.variables[i]
            views.append(VariableView(spec: v, value: (try? decoder.decode(v.btfTypeID, b[...], following: following)) ?? .null))
        }
        return FollowedRead(views: views, probeRuns: arena?.probeRuns ?? 0)
    }

    /// Which pages of a live load's arena exist now, by the kernel's account (nil: no arena).
    public func arenaPages(loadID: Int64) throws(DepotError) -> [Bool]? {
        let obj = try loaded(loadID)
        guard let arena = LiveArenaMemory(object: obj) else { return nil }
        do { return try arena.presentPages() } catch { throw .liveValue(name: "(arena)", reason: error.description) }
    }
}

/// Answers "which type has this id": a whole BTF blob, or a split one over its base.
public protocol BTFTypeLookup {
    func type(_ id: UInt32) -> BTFType?
}

extension BTF: BTFTypeLookup {}

/// Split BTF, as the kernel gives it for a module: types and strings that continue a base BTF
/// (vmlinux). The blob's own type ids start at the base's type count (its last id + 1) and its
/// own string offsets at the base's string-section length; its types may name base types and
/// base strings. The base is shared, not copied (arrays are copy-on-write).
public struct SplitBTF: Sendable, BTFTypeLookup {
    public let base: BTF
    /// Own types: `ownTypes[i]` is id `firstID + i`.
    public let ownTypes: [BTFType]
    /// Own string section: byte `i` is at offset `stringBase + i`.
    public let ownStrings: [UInt8]

    /// Parses `bytes` (header, types, strings, as `BTF(parsing:)`) as split BTF over `base`.
    /// Every offset, count and type reference is checked against base plus own; anything wrong
    /// is a `BTFError`, never a trap.
    public init(parsing bytes: [UInt8], base: BTF) throws(BTFError) {
        let (types, strings) = try BTF.decode(
            bytes, base: BTF.SplitBase(typeCount: base.types.count, stringLength: base.strings.count))
        try BTF.validateReferences(types, firstID: base.types.count)
        self.base = base
        ownTypes = types
        ownStrings = strings
    }

    /// The first own type id (the base's last id + 1).
    public var firstID: UInt32 { UInt32(clamping: base.types.count) }

    /// Where own string offsets start (the base's string-section length).
    public var stringBase: UInt32 { UInt32(clamping: base.strings.count) }

    /// One past the last type id.
    public var endID: UInt32 { UInt32(clamping: base.types.count + ownTypes.count) }

    public func type(_ id: UInt32) -> BTFType? {
        if id < firstID { return base.type(id) }
        let i = Int(id - firstID)
        return i < ownTypes.count ? ownTypes[i] : nil
    }

    /// The name behind a string offset, base or own ("" for 0 or an offset outside both).
    public func string(at offset: UInt32) -> String {
        if offset < stringBase { return base.string(at: offset) }
        let o = Int(offset - stringBase)
        guard o < ownStrings.count else { return "" }
        var end = o
        while end < ownStrings.count, ownStrings[end] != 0 { end += 1 }
        return String(decoding: ownStrings[o..<end], as: UTF8.self)
    }

    public func name(of id: UInt32) -> String {
        guard let t = type(id) else { return "" }
        return string(at: t.nameOffset)
    }

    /// Does the string at `offset` (base or own) equal `target`?
    public func stringEquals(_ offset: UInt32, _ target: [UInt8]) -> Bool {
        if offset < stringBase { return base.stringEquals(offset, target) }
        let o = Int(offset - stringBase)
        guard o + target.count < ownStrings.count else { return false }
        for (k, b) in target.enumerated() where ownStrings[o + k] != b { return false }
        return ownStrings[o + target.count] == 0
    }

    /// The first of the blob's own types with this name (and kind): libbpf looks kfuncs and
    /// ksyms up in a module's own types only, as the base was searched first.
    public func findOwn(named name: String, kind: BTFKindTag? = nil) -> UInt32? {
        let target = Array(name.utf8)
        guard !target.isEmpty else { return nil }
        return ownTypes.withUnsafeBufferPointer { types -> UInt32? in
            // Name first: comparing a few bytes is cheaper than looking into the kind's payload.
            for i in types.indices where stringEquals(types[i].nameOffset, target) {
                if kind == nil || types[i].kind.tag == kind { return firstID + UInt32(i) }
            }
            return nil
        }
    }
}

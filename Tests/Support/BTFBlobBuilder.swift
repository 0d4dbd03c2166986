/// Writes raw BTF blobs byte by byte, as the kernel's format defines them (a 24-byte header,
/// then types, then strings), without the parser's own encoder: base blobs, and split blobs
/// whose ids and string offsets continue a base (a kernel module's BTF over vmlinux).
public struct BTFBlobBuilder {
    /// Id the next type gets: 1 for a base blob, the base's type count for a split one.
    public private(set) var nextID: UInt32
    /// Offset of `strings[0]`: 0 for a base blob, the base's string length for a split one.
    public let stringBase: UInt32
    public private(set) var typeBytes: [UInt8] = []
    public private(set) var strings: [UInt8]

    /// A base blob (string section starting with the empty name).
    public init() {
        nextID = 1
        stringBase = 0
        strings = [0]
    }

    /// A split blob over a base with `baseTypeCount` ids (void included) and `baseStringLength`
    /// bytes of strings. `leadingNUL`: whether its own string section starts with an empty
    /// string (the kernel and libbpf accept both for split BTF).
    public init(baseTypeCount: UInt32, baseStringLength: UInt32, leadingNUL: Bool = true) {
        nextID = baseTypeCount
        stringBase = baseStringLength
        strings = leadingNUL ? [0] : []
    }

    /// Adds a string and returns its offset in the combined (base + own) string space.
    public mutating func string(_ s: String) -> UInt32 {
        let off = stringBase + UInt32(strings.count)
        strings.append(contentsOf: Array(s.utf8))
        strings.append(0)
        return off
    }

    private mutating func word(_ v: UInt32) {
        for k in 0..<4 { typeBytes.append(UInt8((v >> (8 * UInt32(k))) & 0xff)) }
    }

    private mutating func head(name: UInt32, kind: UInt32, vlen: Int = 0, kflag: Bool = false, sizeOrType: UInt32) -> UInt32 {
        word(name)
        word(kind << 24 | UInt32(vlen) | (kflag ? 0x8000_0000 : 0))
        word(sizeOrType)
        defer { nextID += 1 }
        return nextID
    }

    /// Appends a raw type record (for malformed blobs).
    public mutating func raw(_ words: [UInt32]) -> UInt32 {
        for w in words { word(w) }
        defer { nextID += 1 }
        return nextID
    }

    public mutating func int(_ name: String, size: UInt32, signed: Bool = true) -> UInt32 {
        let id = head(name: string(name), kind: 1, sizeOrType: size)
        word((signed ? 1 : 0) << 24 | size * 8)
        return id
    }

    public mutating func pointer(to type: UInt32) -> UInt32 {
        head(name: 0, kind: 2, sizeOrType: type)
    }

    public mutating func structure(_ name: String, size: UInt32, members: [(String, UInt32, bitOffset: UInt32)]) -> UInt32 {
        let n = string(name)
        let names = members.map { string($0.0) }
        let id = head(name: n, kind: 4, vlen: members.count, sizeOrType: size)
        for (m, mn) in zip(members, names) { word(mn); word(m.1); word(m.bitOffset) }
        return id
    }

    public mutating func const(_ type: UInt32) -> UInt32 {
        head(name: 0, kind: 10, sizeOrType: type)
    }

    public mutating func typedef(_ name: String, _ type: UInt32) -> UInt32 {
        head(name: string(name), kind: 8, sizeOrType: type)
    }

    /// FUNC: `linkage` 0 static, 1 global, 2 extern.
    public mutating func function(_ name: String, proto: UInt32, linkage: Int = 1) -> UInt32 {
        head(name: string(name), kind: 12, vlen: linkage, sizeOrType: proto)
    }

    public mutating func functionProto(returns: UInt32, params: [(String, UInt32)]) -> UInt32 {
        let names = params.map { $0.0.isEmpty ? 0 : string($0.0) }
        let id = head(name: 0, kind: 13, vlen: params.count, sizeOrType: returns)
        for (p, pn) in zip(params, names) { word(pn); word(p.1) }
        return id
    }

    /// VAR: `linkage` 0 static, 1 global.
    public mutating func variable(_ name: String, type: UInt32, linkage: UInt32 = 1) -> UInt32 {
        let id = head(name: string(name), kind: 14, sizeOrType: type)
        word(linkage)
        return id
    }

    /// Header + types + strings.
    public func blob() -> [UInt8] {
        var out: [UInt8] = [0x9f, 0xeb, 1, 0]
        func put(_ v: UInt32) { for k in 0..<4 { out.append(UInt8((v >> (8 * UInt32(k))) & 0xff)) } }
        put(24)
        put(0); put(UInt32(typeBytes.count))
        put(UInt32(typeBytes.count)); put(UInt32(strings.count))
        out.append(contentsOf: typeBytes)
        out.append(contentsOf: strings)
        return out
    }
}

/// BTF type information as the object carries it in `.BTF`: every kind up to ENUM64, with the
/// string table. Type ids index `types`; id 0 is `void`.
public struct BTF: Sendable, Equatable {
    public static let magic: UInt16 = 0xEB9F

    public var types: [BTFType]
    public var strings: [UInt8]

    public init(types: [BTFType], strings: [UInt8]) {
        self.types = types
        self.strings = strings
    }

    /// The name behind a string offset ("" for 0 or an offset outside the table).
    public func string(at offset: UInt32) -> String {
        Self.string(in: strings[...], at: offset)
    }

    public func name(of id: UInt32) -> String {
        guard let t = type(id) else { return "" }
        return string(at: t.nameOffset)
    }

    public func type(_ id: UInt32) -> BTFType? {
        let i = Int(id)
        guard i > 0, i < types.count else { return nil }
        return types[i]
    }

    /// Appends a string and returns its offset (reusing an equal string already present is not
    /// attempted: the table stays append-only, as in libbpf's dedup-free paths).
    public mutating func addString(_ s: String) -> UInt32 {
        let off = UInt32(strings.count)
        strings.append(contentsOf: Array(s.utf8))
        strings.append(0)
        return off
    }

    /// First type id with this name and (optionally) kind.
    public func find(named name: String, kind: BTFKindTag? = nil) -> UInt32? {
        let target = Array(name.utf8)
        for i in 1..<max(types.count, 1) where kind == nil || types[i].kind.tag == kind {
            if stringEquals(types[i].nameOffset, target) { return UInt32(i) }
        }
        return nil
    }

    /// Whether the string at `offset` is `target` (as `string(in:at:equals:)`), compared in place
    /// without making a slice of the table.
    public func stringEquals(_ offset: UInt32, _ target: [UInt8]) -> Bool {
        let o = Int(offset)
        return strings.withUnsafeBufferPointer { table in
            // o + target.count < table.count bounds every index read below.
            guard o > 0, o + target.count < table.count else { return target.isEmpty && o == 0 }
            return target.withUnsafeBufferPointer { t in
                for k in 0..<t.count where table[o + k] != t[k] { return false }
                return table[o + t.count] == 0
            }
        }
    }

    /// The NUL-terminated string at `offset` of a string section ("" for 0 or outside it).
    static func string(in table: ArraySlice<UInt8>, at offset: UInt32) -> String {
        let o = Int(offset)
        guard o > 0, o < table.count else { return "" }
        let start = table.startIndex + o
        var end = start
        while end < table.endIndex, table[end] != 0 { end += 1 }
        return String(decoding: table[start..<end], as: UTF8.self)
    }

    /// Whether the string at `offset` of a string section is `target`, compared in place.
    static func string(in table: ArraySlice<UInt8>, at offset: UInt32, equals target: [UInt8]) -> Bool {
        let o = Int(offset)
        guard o > 0, o + target.count < table.count else { return target.isEmpty && o == 0 }
        let start = table.startIndex + o
        for (k, b) in target.enumerated() where table[start + k] != b { return false }
        return table[start + target.count] == 0
    }
}

/// Kinds as numbered in the kernel's BTF format.
public enum BTFKindTag: UInt8, Sendable {
    case void = 0, int, pointer, array, structure, union, enumeration, forward, typedef
    case volatile, const, restrict, function, functionProto, variable, dataSection
    case float, declTag, typeTag, enum64
}

public struct BTFMember: Sendable, Equatable {
    public var nameOffset: UInt32
    public var type: UInt32
    /// Raw `offset` word: with the struct's kind flag set, bits 0–23 are the bit offset and
    /// 24–31 the bitfield size; without it, the whole word is the bit offset.
    public var offset: UInt32
}

public struct BTFParam: Sendable, Equatable {
    public var nameOffset: UInt32
    public var type: UInt32
}

public struct BTFEnumValue: Sendable, Equatable {
    public var nameOffset: UInt32
    public var value: Int64
}

public struct BTFVarSecInfo: Sendable, Equatable {
    public var type: UInt32
    public var offset: UInt32
    public var size: UInt32
}

public enum BTFVarLinkage: UInt32, Sendable {
    case staticLinkage = 0, globalAllocated = 1, external = 2
}

public enum BTFKind: Sendable, Equatable {
    case void
    /// `encoding`: 1 signed, 2 char, 4 bool.
    case int(size: UInt32, encoding: UInt8, bitOffset: UInt8, bits: UInt8)
    case pointer(UInt32)
    case array(element: UInt32, index: UInt32, count: UInt32)
    case structure(size: UInt32, members: [BTFMember], bitfieldOffsets: Bool)
    case union(size: UInt32, members: [BTFMember], bitfieldOffsets: Bool)
    case enumeration(size: UInt32, signed: Bool, values: [BTFEnumValue])
    case forward(isUnion: Bool)
    case typedef(UInt32)
    case volatile(UInt32)
    case const(UInt32)
    case restrict(UInt32)
    case function(proto: UInt32, linkage: UInt32)
    case functionProto(returns: UInt32, params: [BTFParam])
    case variable(type: UInt32, linkage: UInt32)
    case dataSection(size: UInt32, vars: [BTFVarSecInfo])
    case float(size: UInt32)
    case declTag(type: UInt32, componentIndex: Int32)
    case typeTag(UInt32)
    case enum64(size: UInt32, signed: Bool, values: [BTFEnumValue])

    public var tag: BTFKindTag {
        switch self {
        case .void: .void
        case .int: .int
        case .pointer: .pointer
        case .array: .array
        case .structure: .structure
        case .union: .union
        case .enumeration: .enumeration
        case .forward: .forward
        case .typedef: .typedef
        case .volatile: .volatile
        case .const: .const
        case .restrict: .restrict
        case .function: .function
        case .functionProto: .functionProto
        case .variable: .variable
        case .dataSection: .dataSection
        case .float: .float
        case .declTag: .declTag
        case .typeTag: .typeTag
        case .enum64: .enum64
        }
    }

    /// The type this one refers to, for the kinds that refer to exactly one.
    public var referencedType: UInt32? {
        switch self {
        case .pointer(let t), .typedef(let t), .volatile(let t), .const(let t), .restrict(let t), .typeTag(let t):
            return t
        case .variable(let t, _): return t
        case .function(let p, _): return p
        case .declTag(let t, _): return t
        case .array(let e, _, _): return e
        default: return nil
        }
    }
}

public struct BTFType: Sendable, Equatable {
    public var nameOffset: UInt32
    public var kind: BTFKind

    public init(nameOffset: UInt32, kind: BTFKind) {
        self.nameOffset = nameOffset
        self.kind = kind
    }
}

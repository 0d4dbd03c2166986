/// A BTF blob read lazily: one pass records where each type starts, its name offset and its
/// kind; a type is decoded only when asked for. This is how the loader reads the kernel's
/// vmlinux BTF (~150,000 types, of which a load looks at a few dozen): building every type
/// first cost more than libbpf's whole read of it.
///
/// The pass checks the header, every record's kind, name offset and length against the blob; a
/// type that does not decode (a bad member name, an impossible int) is reported missing by
/// `type(_:)`, as is an id past the end, so chains that reach one stop there.
public struct BTFIndex: Sendable, BTFTypeLookup {
    /// The blob, kept whole: types are decoded from it.
    private let bytes: [UInt8]
    private let typeEnd: Int
    private let stringRange: Range<Int>
    /// Start of each type's record in `bytes`; index 0 (void) is unused.
    private let recordOffsets: [UInt32]
    /// Name offset and kind tag of each type (index 0: void), side by side for name lookups.
    public let nameOffsets: [UInt32]
    public let kindTags: [UInt8]

    /// Types including void: ids run from 0 to `typeCount - 1`.
    public var typeCount: Int { kindTags.count }
    /// Length of the string section (where a split blob's own string offsets begin).
    public var stringLength: Int { stringRange.count }

    public init(parsing bytes: [UInt8]) throws(BTFError) {
        let layout = try BTF.Layout(bytes, split: false)
        guard layout.typeEnd <= Int(UInt32.max) else { throw .badHeader(reason: "type section beyond 4 GiB") }
        var offsets: [UInt32] = [0]
        var names: [UInt32] = [0]
        var kinds: [UInt8] = [BTFKindTag.void.rawValue]
        // The smallest record is 12 bytes.
        let estimate = (layout.typeEnd - layout.typeStart) / 12 + 1
        offsets.reserveCapacity(estimate)
        names.reserveCapacity(estimate)
        kinds.reserveCapacity(estimate)
        var o = layout.typeStart
        while o < layout.typeEnd {
            let id = UInt32(clamping: offsets.count)
            guard o + 12 <= layout.typeEnd else {
                throw .truncated(what: "type [\(id)]", offset: o, needed: 12, available: layout.typeEnd - o)
            }
            let nameOff = BTF.word(bytes, o)
            let info = BTF.word(bytes, o + 4)
            guard Int(nameOff) < layout.strings.count else { throw .badString(offset: nameOff) }
            let kindRaw = UInt8((info >> 24) & 0x1f)
            guard let tag = BTFKindTag(rawValue: kindRaw), tag != .void else {
                throw .unknownKind(id: id, kind: kindRaw)
            }
            let length = 12 + Self.trailerLength(tag, vlen: Int(info & 0xffff))
            guard length <= layout.typeEnd - o else {
                throw .truncated(what: "type [\(id)]", offset: o, needed: length, available: layout.typeEnd - o)
            }
            offsets.append(UInt32(o))
            names.append(nameOff)
            kinds.append(kindRaw)
            o += length
        }
        self.bytes = bytes
        typeEnd = layout.typeEnd
        stringRange = layout.strings
        recordOffsets = offsets
        nameOffsets = names
        kindTags = kinds
    }

    /// Bytes after a record's 12-byte head, as the kernel lays each kind out.
    static func trailerLength(_ tag: BTFKindTag, vlen: Int) -> Int {
        switch tag {
        case .int, .variable, .declTag: 4
        case .array: 12
        case .structure, .union, .enum64, .dataSection: vlen * 12
        case .enumeration, .functionProto: vlen * 8
        case .void, .pointer, .forward, .typedef, .volatile, .const, .restrict, .function, .float, .typeTag: 0
        }
    }

    public func type(_ id: UInt32) -> BTFType? {
        let i = Int(id)
        guard i > 0, i < recordOffsets.count else { return nil }
        var o = Int(recordOffsets[i])
        return try? BTF.decodeRecord(bytes, at: &o, end: typeEnd, id: id, stringLimit: stringRange.count)
    }

    /// The name behind a string offset ("" for 0 or an offset outside the table).
    public func string(at offset: UInt32) -> String {
        BTF.string(in: bytes[stringRange], at: offset)
    }

    public func name(of id: UInt32) -> String {
        Int(id) < nameOffsets.count ? string(at: nameOffsets[Int(id)]) : ""
    }

    /// Whether the string at `offset` is `target` (compared in place, no String made).
    public func stringEquals(_ offset: UInt32, _ target: [UInt8]) -> Bool {
        BTF.string(in: bytes[stringRange], at: offset, equals: target)
    }

    /// Every type decoded: the `BTF` value `BTF(parsing:)` gives for the same bytes.
    public func decodedAll() throws(BTFError) -> BTF {
        try BTF(parsing: bytes)
    }
}

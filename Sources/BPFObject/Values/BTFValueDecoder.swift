/// Renders bytes as a typed value through BTF: integers with their sign, bools, enums by name,
/// NUL-padded `char[N]` as strings, arrays, structs and unions as objects, bitfields, floats.
public struct BTFValueDecoder: Sendable {
    public let btf: BTF

    public init(btf: BTF) { self.btf = btf }

    public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
        case outOfBounds(typeName: String, needed: Int, available: Int)
        case unsupported(typeName: String)
        case tooDeep
        /// Rendering would take more than `limit` JSON values (see `maxValues`).
        case tooLarge(typeName: String, limit: Int)

        public var description: String {
            switch self {
            case .outOfBounds(let t, let n, let a): return "a \(t) needs \(n) bytes, \(a) available"
            case .unsupported(let t): return "cannot render a value of type \(t)"
            case .tooDeep: return "type nesting too deep"
            case .tooLarge(let t, let limit): return "a \(t) has more than \(limit) values to render"
            }
        }
    }

    /// At most this many JSON values (numbers, strings, and each array and object) per decoded
    /// value, and at most 8 per byte decoded plus 256. Overlapping members (unions, or hostile BTF
    /// whose struct members all sit at offset 0) make the rendered tree grow faster than the bytes,
    /// up to 2^32 values from 8 bytes; 8 per byte is already the densest C layout without unions
    /// (one-bit bitfields).
    public static let maxValues = 1 << 20

    public func decode(_ typeID: UInt32, _ bytes: ArraySlice<UInt8>) throws(DecodeError) -> JSONValue {
        try decode(typeID, bytes, following: nil)
    }

    /// `decode`, following pointers into an arena as `following` allows (see `PointerFollowing`).
    /// The value budget grows with the bytes read through pointers.
    public func decode(_ typeID: UInt32, _ bytes: ArraySlice<UInt8>, following: PointerFollowing?) throws(DecodeError) -> JSONValue {
        var budget = min(BTFValueDecoder.maxValues, min(bytes.count, BTFValueDecoder.maxValues) * 8 + 256)
        if following != nil { budget = BTFValueDecoder.maxValues }
        let limit = budget
        do {
            return try value(typeID, bytes, depth: 0, budget: &budget, following: following, level: 0)
        } catch .tooLarge(_, _) {
            throw .tooLarge(typeName: btf.typeName(typeID), limit: limit)
        }
    }

    private func value(_ typeID: UInt32, _ bytes: ArraySlice<UInt8>, depth: Int, budget: inout Int,
                       following: PointerFollowing? = nil, level: Int = 0) throws(DecodeError) -> JSONValue {
        guard depth < BTF.maxResolveDepth else { throw .tooDeep }
        budget -= 1
        guard budget >= 0 else { throw .tooLarge(typeName: "", limit: 0) }
        guard let resolved = try? btf.skipModifiersAndTypedefs(typeID), let t = btf.type(resolved) else {
            throw .unsupported(typeName: btf.typeName(typeID))
        }
        // A type whose size cannot be resolved (loops, overflow) cannot be rendered: treating it
        // as size 0 would let a huge array count through to the allocation below.
        guard let resolvedSize = try? btf.resolveSize(resolved) else { throw .unsupported(typeName: btf.typeName(typeID)) }
        let size = Int(resolvedSize)
        guard size <= bytes.count else {
            throw .outOfBounds(typeName: btf.typeName(typeID), needed: size, available: bytes.count)
        }
        let b = bytes.prefix(size)
        switch t.kind {
        case .int(let sz, let enc, _, _):
            if enc & 4 != 0 { return .bool(loadUnsigned(b, Int(sz)) != 0) }
            if sz > 8 { return .string("0x" + b.reversed().map { hex2($0) }.joined()) }
            let raw = loadUnsigned(b, Int(sz))
            return enc & 1 != 0 ? .int(signExtend(raw, bits: Int(sz) * 8)) : .uint(raw)
        case .enumeration(let sz, let signed, let values), .enum64(let sz, let signed, let values):
            let raw = loadUnsigned(b, Int(sz))
            let v = signed ? signExtend(raw, bits: Int(sz) * 8) : Int64(bitPattern: raw)
            let width = UInt64(sz) >= 8 ? ~UInt64(0) : (UInt64(1) << (UInt64(sz) * 8)) - 1
            if let m = values.first(where: { UInt64(bitPattern: $0.value) & width == raw }) {
                return .string(btf.string(at: m.nameOffset))
            }
            return signed ? .int(v) : .uint(raw)
        case .pointer(let target):
            let raw = loadUnsigned(b, 8)
            guard let following else { return .uint(raw) }
            var inner = budget
            defer { budget = inner }
            return try following.pointer(raw, target: target, level: level + 1, btf: btf) { (id, bytes, lvl) throws(DecodeError) in
                // A fresh value: the type-nesting guard starts over (following is bounded by its own depth).
                try value(id, bytes, depth: 0, budget: &inner, following: following, level: lvl)
            }
        case .float(let sz):
            if sz == 4 { return .double(Double(Float(bitPattern: UInt32(loadUnsigned(b, 4))))) }
            if sz == 8 { return .double(Double(bitPattern: loadUnsigned(b, 8))) }
            return .string("0x" + b.reversed().map { hex2($0) }.joined())
        case .array(let elem, _, let count):
            // A string only when it says every byte: text, a NUL, then only NULs (what the encoder
            // writes for a string). Anything after the NUL, or no NUL at all, shows as numbers, so
            // writing back what was read never changes the bytes.
            if isCharType(elem) {
                let text = b.prefix { $0 != 0 }
                if text.count < b.count, b[text.endIndex...].allSatisfy({ $0 == 0 }),
                   let s = String(validating: text, as: UTF8.self),
                   s.unicodeScalars.allSatisfy({ $0.value >= 0x20 || $0 == "\n" || $0 == "\t" }) {
                    return .string(s)
                }
            }
            let elemSize = (try? btf.resolveSize(elem)).map(Int.init) ?? 0
            guard elemSize > 0 else { return .array([]) }
            guard Int(count) <= b.count / elemSize else {
                throw .outOfBounds(typeName: btf.typeName(typeID), needed: Int(count) * elemSize, available: b.count)
            }
            // Checked before reserving room for them.
            guard Int(count) <= budget else { throw .tooLarge(typeName: "", limit: 0) }
            var items: [JSONValue] = []
            items.reserveCapacity(Int(count))
            for i in 0..<Int(count) {
                let start = b.startIndex + i * elemSize
                items.append(try value(elem, b[start..<(start + elemSize)], depth: depth + 1, budget: &budget, following: following, level: level))
            }
            return .array(items)
        case .structure(_, let members, let kf), .union(_, let members, let kf):
            var out: [(String, JSONValue)] = []
            for m in members {
                let bitOffset = Int(kf ? m.offset & 0xff_ffff : m.offset)
                let bitSize = Int(kf ? m.offset >> 24 : 0)
                let name = btf.string(at: m.nameOffset)
                let v: JSONValue
                if bitSize > 0 || bitOffset % 8 != 0 {
                    budget -= 1
                    guard budget >= 0 else { throw .tooLarge(typeName: "", limit: 0) }
                    v = try bitfield(m.type, b, bitOffset: bitOffset, bitSize: bitSize)
                } else {
                    let start = b.startIndex + bitOffset / 8
                    guard start <= b.endIndex else {
                        throw .outOfBounds(typeName: btf.typeName(typeID), needed: bitOffset / 8, available: b.count)
                    }
                    v = try value(m.type, b[start...], depth: depth + 1, budget: &budget, following: following, level: level)
                }
                if name.isEmpty, case .object(let inner) = v {
                    out.append(contentsOf: inner)  // anonymous struct/union members read as the parent's
                } else {
                    out.append((name, v))
                }
            }
            return .object(out)
        case .dataSection(_, let vars):
            // A global-data map's value: its variables by name, at their section offsets.
            var out: [(String, JSONValue)] = []
            for v in vars {
                guard let vt = btf.type(v.type), case .variable(let type, _) = vt.kind else { continue }
                let start = b.startIndex + Int(v.offset)
                guard Int(v.offset) + Int(v.size) <= b.count else {
                    throw .outOfBounds(typeName: btf.typeName(typeID), needed: Int(v.offset) + Int(v.size), available: b.count)
                }
                out.append((btf.string(at: vt.nameOffset), try value(type, b[start..<(start + Int(v.size))], depth: depth + 1, budget: &budget, following: following, level: level)))
            }
            return .object(out)
        default:
            throw .unsupported(typeName: btf.typeName(typeID))
        }
    }

    private func bitfield(_ typeID: UInt32, _ b: ArraySlice<UInt8>, bitOffset: Int, bitSize: Int) throws(DecodeError) -> JSONValue {
        guard let r = try? btf.skipModifiersAndTypedefs(typeID), let t = btf.type(r) else {
            throw .unsupported(typeName: btf.typeName(typeID))
        }
        var signed = false
        var bits = bitSize
        switch t.kind {
        case .int(let sz, let enc, _, let nbits):
            signed = enc & 1 != 0
            if bits == 0 { bits = nbits == 0 ? Int(sz) * 8 : Int(nbits) }
        case .enumeration(let sz, let s, _), .enum64(let sz, let s, _):
            signed = s
            if bits == 0 { bits = Int(sz) * 8 }
        default:
            throw .unsupported(typeName: btf.typeName(typeID))
        }
        guard bits > 0, bits <= 64 else { throw .unsupported(typeName: btf.typeName(typeID)) }
        let raw = BTFBits.read(b, bitOffset: bitOffset, bitSize: bits)
        guard let raw else { throw .outOfBounds(typeName: btf.typeName(typeID), needed: (bitOffset + bits + 7) / 8, available: b.count) }
        if case .int(_, let enc, _, _) = t.kind, enc & 4 != 0 { return .bool(raw != 0) }
        return signed ? .int(signExtend(raw, bits: bits)) : .uint(raw)
    }

    func isCharType(_ id: UInt32) -> Bool {
        guard let r = try? btf.skipModifiersAndTypedefs(id), case .int(1, let enc, _, _)? = btf.type(r)?.kind else { return false }
        return enc & 4 == 0
    }
}

/// Little-endian bitfield access shared by the decoder and encoder.
enum BTFBits {
    static func read(_ b: ArraySlice<UInt8>, bitOffset: Int, bitSize: Int) -> UInt64? {
        let first = bitOffset / 8, last = (bitOffset + bitSize - 1) / 8
        guard last < b.count else { return nil }
        var acc: UInt64 = 0
        var shiftIn = 0
        var result: UInt64 = 0
        // Gather up to 9 bytes into a wide value, then extract.
        var wide: [UInt8] = []
        for i in first...last { wide.append(b[b.startIndex + i]) }
        for (k, byte) in wide.enumerated() where k < 8 { acc |= UInt64(byte) << (8 * UInt64(k)) }
        let startBit = bitOffset % 8
        result = acc >> UInt64(startBit)
        shiftIn = 64 - startBit
        if wide.count == 9, shiftIn < 64 { result |= UInt64(wide[8]) << UInt64(shiftIn) }
        if bitSize < 64 { result &= (UInt64(1) << UInt64(bitSize)) - 1 }
        return result
    }
}

func loadUnsigned(_ b: ArraySlice<UInt8>, _ size: Int) -> UInt64 {
    var v: UInt64 = 0
    for (k, byte) in b.prefix(min(size, 8)).enumerated() { v |= UInt64(byte) << (8 * UInt64(k)) }
    return v
}

func signExtend(_ raw: UInt64, bits: Int) -> Int64 {
    guard bits > 0, bits < 64 else { return Int64(bitPattern: raw) }
    let shift = UInt64(64 - bits)
    return Int64(bitPattern: raw << shift) >> Int64(shift)
}

/// A byte as two lowercase hex digits.
public func hex2(_ b: UInt8) -> String {
    let d = Array("0123456789abcdef".utf8)
    return String(decoding: [d[Int(b >> 4)], d[Int(b & 0xf)]], as: UTF8.self)
}

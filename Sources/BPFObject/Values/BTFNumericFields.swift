/// The numeric leaves of a typed value, each under a dotted path: what a metrics system can graph.
///
/// `stats` of type `struct { __u64 hits; struct { int lo, hi; } range; short grid[2][2]; bool on;
/// enum color c; char tag[8]; }` gives `stats.hits`, `stats.range.lo`, `stats.range.hi`,
/// `stats.grid[0][0]` … `stats.grid[1][1]`, `stats.on` (0/1) and `stats.c` (the enumerator's
/// value). Left out, because a number would mislead: `char[N]` (text; `__u8[N]` is numbers),
/// pointers (addresses), integers wider than 64 bits, and floats other than `float`/`double`.
/// Union members all appear (each is a valid reading of the same bytes). Anonymous members read
/// as the parent's. Values are doubles, as Prometheus keeps them: integers past 2^53 round.
public struct BTFNumericFields: Sendable {
    public let btf: BTF

    public init(btf: BTF) { self.btf = btf }

    public enum FieldError: Error, Equatable, Sendable, CustomStringConvertible {
        /// More leaves than the caller allows.
        case tooMany(limit: Int)
        case outOfBounds(typeName: String, needed: Int, available: Int)
        case unsupported(typeName: String)
        case tooDeep

        public var description: String {
            switch self {
            case .tooMany(let limit): return "more than \(limit) numeric fields"
            case .outOfBounds(let t, let n, let a): return "a \(t) needs \(n) bytes, \(a) available"
            case .unsupported(let t): return "cannot read numbers from a value of type \(t)"
            case .tooDeep: return "type nesting too deep"
            }
        }
    }

    /// How many leaves a value of `typeID` has, without reading one (arrays are counted, not
    /// walked). Throws `.tooMany` as soon as the count passes `limit`.
    public func count(_ typeID: UInt32, limit: Int) throws(FieldError) -> Int {
        try count(typeID, limit: limit, depth: 0)
    }

    /// Appends `(path, value)` for every leaf of the value of `typeID` held in `bytes`, paths
    /// starting with `name`. Throws `.tooMany` rather than let `out` grow past `limit` entries.
    public func append(_ typeID: UInt32, _ bytes: ArraySlice<UInt8>, name: String, limit: Int,
                       into out: inout [(name: String, value: Double)]) throws(FieldError) {
        try walk(typeID, bytes, path: name, limit: limit, depth: 0, into: &out)
    }

    // MARK: counting

    private func count(_ typeID: UInt32, limit: Int, depth: Int) throws(FieldError) -> Int {
        guard depth < BTF.maxResolveDepth else { throw .tooDeep }
        let t = try resolved(typeID)
        switch t.kind {
        case .int(let size, _, _, _):
            return size <= 8 ? 1 : 0
        case .enumeration, .enum64:
            return 1
        case .float(let size):
            return size == 4 || size == 8 ? 1 : 0
        case .array(let element, _, let n):
            if isChar(element) || n == 0 { return 0 }
            let each = try count(element, limit: limit, depth: depth + 1)
            guard each > 0 else { return 0 }
            guard Int(n) <= limit / each else { throw .tooMany(limit: limit) }
            return Int(n) * each
        case .structure(_, let members, let kf), .union(_, let members, let kf):
            var total = 0
            for m in members {
                let bitSize = kf ? Int(m.offset >> 24) : 0
                total += bitSize > 0 ? 1 : try count(m.type, limit: limit, depth: depth + 1)
                guard total <= limit else { throw .tooMany(limit: limit) }
            }
            return total
        default:
            return 0
        }
    }

    // MARK: reading

    private func walk(_ typeID: UInt32, _ bytes: ArraySlice<UInt8>, path: String, limit: Int, depth: Int,
                      into out: inout [(name: String, value: Double)]) throws(FieldError) {
        guard depth < BTF.maxResolveDepth else { throw .tooDeep }
        let t = try resolved(typeID)
        let size: Int
        do { size = Int(try btf.resolveSize(typeID)) } catch { throw .unsupported(typeName: btf.typeName(typeID)) }
        guard size <= bytes.count else {
            throw .outOfBounds(typeName: btf.typeName(typeID), needed: size, available: bytes.count)
        }
        let b = bytes.prefix(size)
        switch t.kind {
        case .int(let sz, let encoding, _, _):
            guard sz <= 8 else { return }
            let raw = loadUnsigned(b, Int(sz))
            let value: Double = encoding & 4 != 0 ? (raw != 0 ? 1 : 0)
                : encoding & 1 != 0 ? Double(signExtend(raw, bits: Int(sz) * 8)) : Double(raw)
            try emit(path, value, limit: limit, into: &out)
        case .enumeration(let sz, let signed, _), .enum64(let sz, let signed, _):
            let raw = loadUnsigned(b, Int(sz))
            try emit(path, signed ? Double(signExtend(raw, bits: Int(sz) * 8)) : Double(raw), limit: limit, into: &out)
        case .float(let sz):
            if sz == 4 { try emit(path, Double(Float(bitPattern: UInt32(loadUnsigned(b, 4)))), limit: limit, into: &out) }
            if sz == 8 { try emit(path, Double(bitPattern: loadUnsigned(b, 8)), limit: limit, into: &out) }
        case .array(let element, _, let n):
            guard !isChar(element), n > 0 else { return }
            let elementSize: Int
            do { elementSize = Int(try btf.resolveSize(element)) } catch { throw .unsupported(typeName: btf.typeName(element)) }
            guard elementSize > 0 else { return }
            guard Int(n) <= b.count / elementSize else {
                throw .outOfBounds(typeName: btf.typeName(typeID), needed: Int(n) * elementSize, available: b.count)
            }
            for i in 0..<Int(n) {
                let start = b.startIndex + i * elementSize
                try walk(element, b[start..<(start + elementSize)], path: path + "[\(i)]", limit: limit, depth: depth + 1, into: &out)
            }
        case .structure(_, let members, let kf), .union(_, let members, let kf):
            for m in members {
                let bitOffset = Int(kf ? m.offset & 0xff_ffff : m.offset)
                let bitSize = Int(kf ? m.offset >> 24 : 0)
                let name = btf.string(at: m.nameOffset)
                let memberPath = name.isEmpty ? path : path + "." + name
                if bitSize > 0 || bitOffset % 8 != 0 {
                    try emit(memberPath, try bitfield(m.type, b, bitOffset: bitOffset, bitSize: bitSize), limit: limit, into: &out)
                    continue
                }
                let start = b.startIndex + bitOffset / 8
                guard start <= b.endIndex else {
                    throw .outOfBounds(typeName: btf.typeName(typeID), needed: bitOffset / 8, available: b.count)
                }
                try walk(m.type, b[start...], path: memberPath, limit: limit, depth: depth + 1, into: &out)
            }
        default:
            return  // pointers, void, functions: no number worth graphing
        }
    }

    private func bitfield(_ typeID: UInt32, _ b: ArraySlice<UInt8>, bitOffset: Int, bitSize: Int) throws(FieldError) -> Double {
        let t = try resolved(typeID)
        var signed = false
        var isBool = false
        var bits = bitSize
        switch t.kind {
        case .int(let sz, let encoding, _, let nbits):
            signed = encoding & 1 != 0
            isBool = encoding & 4 != 0
            if bits == 0 { bits = nbits == 0 ? Int(sz) * 8 : Int(nbits) }
        case .enumeration(let sz, let s, _), .enum64(let sz, let s, _):
            signed = s
            if bits == 0 { bits = Int(sz) * 8 }
        default:
            throw .unsupported(typeName: btf.typeName(typeID))
        }
        guard bits > 0, bits <= 64, let raw = BTFBits.read(b, bitOffset: bitOffset, bitSize: bits) else {
            throw .outOfBounds(typeName: btf.typeName(typeID), needed: (bitOffset + bits + 7) / 8, available: b.count)
        }
        if isBool { return raw != 0 ? 1 : 0 }
        return signed ? Double(signExtend(raw, bits: bits)) : Double(raw)
    }

    private func emit(_ path: String, _ value: Double, limit: Int, into out: inout [(name: String, value: Double)]) throws(FieldError) {
        guard out.count < limit else { throw .tooMany(limit: limit) }
        out.append((path, value))
    }

    private func resolved(_ typeID: UInt32) throws(FieldError) -> BTFType {
        guard let id = try? btf.skipModifiersAndTypedefs(typeID), let t = btf.type(id) else {
            throw .unsupported(typeName: btf.typeName(typeID))
        }
        return t
    }

    /// An array of these is text: a one-byte integer spelled `char`, `signed char` or
    /// `unsigned char`. A typedef such as `__u8` or `uint8_t` on the way makes it numbers.
    private func isChar(_ id: UInt32) -> Bool {
        guard let m = try? btf.skipModifiers(id), let t = btf.type(m) else { return false }
        switch t.kind {
        case .int(1, let encoding, _, _):
            return encoding & 4 == 0 && btf.string(at: t.nameOffset).contains("char")
        case .typedef:
            return btf.string(at: t.nameOffset).contains("char") && isChar(t.kind.referencedType ?? 0)
        default:
            return false
        }
    }
}

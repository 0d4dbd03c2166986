/// Writes a typed JSON value into bytes through BTF: the inverse of `BTFValueDecoder`.
///
/// The value is written into an existing image, so whatever the JSON does not name keeps its
/// bytes. The rules, per BTF kind (after typedefs and CV/restrict/type-tag modifiers):
///
/// - **int**: a JSON integer, range-checked against the size and sign (`300` into `__u8` is an
///   error, so is any negative number into an unsigned type). An integral `.double` that
///   converts exactly (e.g. `1e3`) counts as an integer; `1.5` does not. Ints wider than 8
///   bytes (`__int128`) also take the decoder's `"0x…"` hex string (bit pattern, most
///   significant digit first, at most 2·size digits).
/// - **bool** (`_Bool`): `true`/`false`, or the integers 0 and 1. `true` is written as 1.
/// - **enum / enum64**: an enumerator name, or a number that fits the enum's size and sign. An
///   unknown name is an error listing the valid ones.
/// - **pointer**: a non-negative integer that fits 64 bits (an address, as decoded).
/// - **float**: any JSON number; `float` must stay finite after rounding. Floats of other sizes
///   take the decoder's hex string.
/// - **`char[N]`** (element a 1-byte non-bool int): a string, written as its UTF-8 bytes and
///   then NULs up to N (so the old tail is cleared). It may hold at most N−1 bytes, so a NUL
///   always fits, and may not contain NUL itself. A JSON array of integers is also accepted
///   (like any other array).
/// - **other arrays**: a JSON array of at most N elements. A shorter array changes only the
///   prefix it gives, and a `null` element leaves that element as it is (so `[null, 5]` sets
///   only index 1). `null` is accepted nowhere else.
/// - **struct / union**: an object naming some members; only those are written, in the order
///   given (for a union, later members overwrite earlier ones where they overlap). Members of
///   anonymous struct/union members are named directly, as the decoder flattens them. An
///   unknown name is an error listing the valid ones; naming a member twice is an error.
/// - **bitfields**: integers (enumerator names for enum bitfields, true/false for bool ones)
///   range-checked against the bit width, written without touching the neighbouring bits.
/// - anything else (void, functions, forward declarations, …): unsupported.
///
/// Errors carry the path (`cfg.limits[2].max`), the expected type and what was found. On error
/// the bytes may already hold the members written before the failing one; callers patch a copy.
public struct BTFValueEncoder: Sendable {
    public let btf: BTF

    public init(btf: BTF) { self.btf = btf }

    public struct EncodeError: Error, Equatable, Sendable, CustomStringConvertible {
        public enum Reason: Equatable, Sendable {
            /// The JSON kind does not fit the type; `expected` says what would.
            case typeMismatch(expected: String)
            /// A number outside the type's range; `range` is e.g. `0...255`.
            case outOfRange(value: String, range: String)
            case unknownEnumerator(String, valid: [String])
            case unknownMember(String, valid: [String])
            case duplicateMember(String)
            /// A string of `bytes` UTF-8 bytes for a `char[capacity]`.
            case stringTooLong(bytes: Int, capacity: Int)
            case stringContainsNUL
            case arrayTooLong(count: Int, capacity: Int)
            /// The type does not fit the bytes: `needed` bytes at `offset`, `available` there.
            case outOfBounds(offset: Int, needed: Int, available: Int)
            case unsupported
            case tooDeep
            /// A struct or union with more than `limit` members, counting those of its anonymous
            /// members (see `maxMembers`).
            case tooManyMembers(limit: Int)
        }

        /// Variable and member path, e.g. `cfg.limits[2].max` ("" when the caller gave none).
        public var path: String
        /// C spelling of the type being written (bitfields as `unsigned int:5`).
        public var typeName: String
        /// Short rendering of the JSON found: `300`, `"abc"`, `an object`, `an array of 3 elements`.
        public var found: String
        public var reason: Reason

        public init(path: String, typeName: String, found: String, reason: Reason) {
            self.path = path
            self.typeName = typeName
            self.found = found
            self.reason = reason
        }

        /// The message without the path.
        public var message: String {
            switch reason {
            case .typeMismatch(let expected):
                return "expected \(expected) for \(typeName), found \(found)"
            case .outOfRange(let value, let range):
                return "value \(value) is out of range for \(typeName) (\(range))"
            case .unknownEnumerator(let name, let valid):
                return "\(quoted(name)) is not an enumerator of \(typeName) (valid: \(valid.joined(separator: ", ")))"
            case .unknownMember(let name, let valid):
                return "\(typeName) has no member \(quoted(name)) (members: \(valid.joined(separator: ", ")))"
            case .duplicateMember(let name):
                return "member \(quoted(name)) of \(typeName) is given more than once"
            case .stringTooLong(let n, let capacity):
                return "a string of \(n) bytes does not fit \(typeName) (at most \(max(capacity - 1, 0)) bytes and a NUL)"
            case .stringContainsNUL:
                return "a string for \(typeName) cannot contain a NUL byte"
            case .arrayTooLong(let n, let capacity):
                return "an array of \(n) elements does not fit \(typeName) (at most \(capacity))"
            case .outOfBounds(let offset, let needed, let available):
                return "a \(typeName) needs \(needed) bytes at offset \(offset), \(available) available"
            case .unsupported:
                return "cannot write a value of type \(typeName)"
            case .tooDeep:
                return "type nesting too deep at \(typeName)"
            case .tooManyMembers(let limit):
                return "\(typeName) has more than \(limit) members (anonymous members included)"
            }
        }

        public var description: String { path.isEmpty ? message : "\(path): \(message)" }

        private func quoted(_ s: String) -> String {
            var out = ""
            JSONValue.quote(s, into: &out)
            return out
        }
    }

    /// Writes `value` as a `typeID` at `offset` in `bytes`. `path` names the variable (and is
    /// extended with `.member` and `[index]` for errors).
    public func encode(_ value: JSONValue, as typeID: UInt32, into bytes: inout [UInt8], at offset: Int,
                       path: String) throws(EncodeError) {
        try write(value, typeID, &bytes, at: offset, limit: bytes.count, path: path, depth: 0)
    }

    // MARK: - values

    private func write(_ v: JSONValue, _ typeID: UInt32, _ bytes: inout [UInt8], at offset: Int, limit: Int,
                       path: String, depth: Int) throws(EncodeError) {
        let shown = displayName(typeID)
        func fail(_ reason: EncodeError.Reason) -> EncodeError {
            EncodeError(path: path, typeName: shown, found: describe(v), reason: reason)
        }
        guard depth < BTF.maxResolveDepth else { throw fail(.tooDeep) }
        guard let resolved = try? btf.skipModifiersAndTypedefs(typeID), let t = btf.type(resolved),
              let size64 = try? btf.resolveSize(resolved)
        else { throw fail(.unsupported) }
        let size = Int(size64)
        guard offset >= 0, offset <= limit, size <= limit - offset else {
            throw fail(.outOfBounds(offset: offset, needed: size, available: max(limit - max(offset, 0), 0)))
        }
        switch t.kind {
        case .int(let sz, let enc, _, _):
            guard sz > 0 else { throw fail(.unsupported) }
            if enc & 4 != 0 {
                store(try boolean(v, fail), Int(sz), &bytes, at: offset)
            } else if sz > 8 {
                try wideInteger(v, size: Int(sz), signed: enc & 1 != 0, &bytes, at: offset, fail)
            } else {
                let raw = try integer(v, bits: Int(sz) * 8, signed: enc & 1 != 0, fail)
                store(raw, Int(sz), &bytes, at: offset)
            }
        case .enumeration(let sz, let signed, let values), .enum64(let sz, let signed, let values):
            guard sz > 0, sz <= 8 else { throw fail(.unsupported) }
            let raw = try enumerator(v, bits: Int(sz) * 8, signed: signed, values: values, fail)
            store(raw, Int(sz), &bytes, at: offset)
        case .pointer:
            store(try integer(v, bits: 64, signed: false, fail, expected: "an integer address"), 8, &bytes, at: offset)
        case .float(let sz):
            switch sz {
            case 4:
                let d = try number(v, fail)
                let f = Float(d)
                guard f.isFinite || !d.isFinite else {
                    throw fail(.outOfRange(value: v.text, range: "\(-Float.greatestFiniteMagnitude)...\(Float.greatestFiniteMagnitude)"))
                }
                store(UInt64(f.bitPattern), 4, &bytes, at: offset)
            case 8:
                store(try number(v, fail).bitPattern, 8, &bytes, at: offset)
            default:
                guard sz > 0, case .string(let s) = v, let raw = hexBytes(s, size: Int(sz)) else {
                    throw fail(.typeMismatch(expected: "a \"0x…\" hex string of at most \(Int(sz) * 2) digits"))
                }
                replace(&bytes, at: offset, with: raw)
            }
        case .array(let elem, _, let count):
            try array(v, elem: elem, count: Int(count), size: size, &bytes, at: offset, path: path, depth: depth, fail)
        case .structure(_, _, _), .union(_, _, _):
            guard case .object(let pairs) = v else { throw fail(.typeMismatch(expected: "an object")) }
            var entries: [Member] = []
            var seen = 0
            try flatten(resolved, base: offset, end: offset + size, into: &entries, seen: &seen, depth: depth, fail)
            // Name -> indexes not yet written (unnamed padding bitfields share the name "").
            var unused: [String: ArraySlice<Int>] = [:]
            for (k, e) in entries.enumerated() { unused[e.name, default: []].append(k) }
            for (key, item) in pairs {
                guard let k = unused[key]?.popFirst() else {
                    if unused[key] != nil { throw fail(.duplicateMember(key)) }
                    throw fail(.unknownMember(key, valid: entries.map(\.name).filter { !$0.isEmpty }))
                }
                let m = entries[k]
                let memberPath = key.isEmpty ? path : (path.isEmpty ? key : "\(path).\(key)")
                if m.bitSize > 0 || m.bitOffset % 8 != 0 {
                    try bitfield(item, m, &bytes, path: memberPath)
                } else {
                    try write(item, m.type, &bytes, at: m.base + m.bitOffset / 8, limit: m.end, path: memberPath,
                              depth: depth + 1)
                }
            }
        case .dataSection(_, let vars):
            // A global-data map's value, as the decoder shows it: its variables by name at their
            // section offsets (variables left out are zero, as struct members are).
            guard case .object(let pairs) = v else { throw fail(.typeMismatch(expected: "an object")) }
            var slots: [String: (info: BTFVarSecInfo, type: UInt32)] = [:]
            for info in vars {
                guard let vt = btf.type(info.type), case .variable(let type, _) = vt.kind else { continue }
                slots[btf.string(at: vt.nameOffset)] = (info, type)
            }
            var written = Set<String>()
            for (key, item) in pairs {
                guard let slot = slots[key] else { throw fail(.unknownMember(key, valid: slots.keys.sorted())) }
                guard written.insert(key).inserted else { throw fail(.duplicateMember(key)) }
                let start = offset + Int(slot.info.offset)
                try write(item, slot.type, &bytes, at: start, limit: min(offset + size, start + Int(slot.info.size)),
                          path: path.isEmpty ? key : "\(path).\(key)", depth: depth + 1)
            }
        default:
            throw fail(.unsupported)
        }
    }

    private func array(_ v: JSONValue, elem: UInt32, count: Int, size: Int, _ bytes: inout [UInt8], at offset: Int,
                       path: String, depth: Int, _ fail: (EncodeError.Reason) -> EncodeError) throws(EncodeError) {
        let isChar = BTFValueDecoder(btf: btf).isCharType(elem)
        if case .string(let s) = v {
            guard isChar else { throw fail(.typeMismatch(expected: "an array")) }
            let utf8 = Array(s.utf8)
            guard !utf8.contains(0) else { throw fail(.stringContainsNUL) }
            guard utf8.count < count else { throw fail(.stringTooLong(bytes: utf8.count, capacity: count)) }
            // A char is one byte, so `count` bytes were bounds-checked as the array's size.
            replace(&bytes, at: offset, with: utf8 + [UInt8](repeating: 0, count: count - utf8.count))
            return
        }
        guard case .array(let items) = v else {
            throw fail(.typeMismatch(expected: isChar ? "a string or an array" : "an array"))
        }
        guard items.count <= count else { throw fail(.arrayTooLong(count: items.count, capacity: count)) }
        guard let elemSize64 = try? btf.resolveSize(elem) else { throw fail(.unsupported) }
        let elemSize = Int(elemSize64)
        for (k, item) in items.enumerated() {
            if case .null = item { continue }
            // k < count and count * elemSize == size <= the checked span: no overflow.
            try write(item, elem, &bytes, at: offset + k * elemSize, limit: offset + size, path: "\(path)[\(k)]",
                      depth: depth + 1)
        }
    }

    // MARK: - struct members

    /// The most members a struct or union may have, counting those of its anonymous members and
    /// the anonymous members themselves (BTF allows 65,535 per struct). Hostile BTF can nest 30
    /// anonymous structs of two members each, all at offset 0, for 2^30 members from a few
    /// hundred bytes.
    public static let maxMembers = 1 << 16

    /// A member as the decoder shows it: anonymous struct/union members replaced by theirs.
    private struct Member {
        var name: String
        var type: UInt32
        /// Byte offset of the (possibly anonymous) aggregate holding the member, and its end.
        var base: Int
        var end: Int
        /// Bit offset from `base`, and the bitfield width (0 when not a bitfield).
        var bitOffset: Int
        var bitSize: Int
    }

    /// `seen` counts the members looked at, anonymous ones included, against `maxMembers`.
    private func flatten(_ aggregate: UInt32, base: Int, end: Int, into entries: inout [Member], seen: inout Int,
                         depth: Int, _ fail: (EncodeError.Reason) -> EncodeError) throws(EncodeError) {
        guard depth < BTF.maxResolveDepth else { throw fail(.tooDeep) }
        let members: [BTFMember], kf: Bool
        switch btf.type(aggregate)?.kind {
        case .structure(_, let ms, let k)?, .union(_, let ms, let k)?: members = ms; kf = k
        default: return
        }
        for m in members {
            seen += 1
            guard seen <= BTFValueEncoder.maxMembers else { throw fail(.tooManyMembers(limit: BTFValueEncoder.maxMembers)) }
            let bitOffset = Int(kf ? m.offset & 0xff_ffff : m.offset)
            let bitSize = Int(kf ? m.offset >> 24 : 0)
            let name = btf.string(at: m.nameOffset)
            if name.isEmpty, bitSize == 0, bitOffset % 8 == 0, let r = try? btf.skipModifiersAndTypedefs(m.type) {
                switch btf.type(r)?.kind {
                case .structure(let sz, _, _)?, .union(let sz, _, _)?:
                    let innerBase = base + bitOffset / 8
                    try flatten(r, base: innerBase, end: min(end, innerBase + Int(sz)), into: &entries, seen: &seen,
                                depth: depth + 1, fail)
                    continue
                default: break
                }
            }
            entries.append(Member(name: name, type: m.type, base: base, end: end, bitOffset: bitOffset, bitSize: bitSize))
        }
    }

    private func bitfield(_ v: JSONValue, _ m: Member, _ bytes: inout [UInt8], path: String) throws(EncodeError) {
        var shown = displayName(m.type)
        func fail(_ reason: EncodeError.Reason) -> EncodeError {
            EncodeError(path: path, typeName: shown, found: describe(v), reason: reason)
        }
        guard let r = try? btf.skipModifiersAndTypedefs(m.type), let t = btf.type(r) else { throw fail(.unsupported) }
        var bits = m.bitSize
        let raw: UInt64
        switch t.kind {
        case .int(let sz, let enc, _, let nbits):
            if bits == 0 { bits = nbits == 0 ? Int(sz) * 8 : Int(nbits) }
            shown += ":\(bits)"
            guard bits > 0, bits <= 64 else { throw fail(.unsupported) }
            raw = enc & 4 != 0 ? try boolean(v, fail) : try integer(v, bits: bits, signed: enc & 1 != 0, fail)
        case .enumeration(let sz, let signed, let values), .enum64(let sz, let signed, let values):
            if bits == 0 { bits = Int(sz) * 8 }
            shown += ":\(bits)"
            guard bits > 0, bits <= 64 else { throw fail(.unsupported) }
            raw = try enumerator(v, bits: bits, signed: signed, values: values, fail)
        default:
            throw fail(.unsupported)
        }
        guard BTFBits.write(raw, into: &bytes, base: m.base, limit: m.end, bitOffset: m.bitOffset, bitSize: bits) else {
            let needed = (m.bitOffset + bits + 7) / 8
            throw fail(.outOfBounds(offset: m.base, needed: needed, available: max(m.end - m.base, 0)))
        }
    }

    // MARK: - scalars

    /// The two's-complement bits of an integer that fits `bits` bits with that sign (masked to
    /// the width).
    private func integer(_ v: JSONValue, bits: Int, signed: Bool, _ fail: (EncodeError.Reason) -> EncodeError,
                         expected: String = "an integer") throws(EncodeError) -> UInt64 {
        let maxU: UInt64 = bits >= 64 ? .max : (UInt64(1) << UInt64(bits)) - 1
        let maxS = Int64(maxU >> 1)
        let minS = bits >= 64 ? Int64.min : -maxS - 1
        let range = signed ? "\(minS)...\(maxS)" : "0...\(maxU)"
        let outOfRange = fail(.outOfRange(value: v.text, range: range))
        switch v {
        case .int(let x) where x < 0:
            guard signed, x >= minS else { throw outOfRange }
            return UInt64(bitPattern: x) & maxU
        case .int(let x):
            guard UInt64(x) <= (signed ? UInt64(maxS) : maxU) else { throw outOfRange }
            return UInt64(x)
        case .uint(let x):
            guard x <= (signed ? UInt64(maxS) : maxU) else { throw outOfRange }
            return x
        case .double(let d) where d.isFinite && d.rounded(.towardZero) == d:
            if let x = Int64(exactly: d) { return try integer(.int(x), bits: bits, signed: signed, fail) }
            if let x = UInt64(exactly: d) { return try integer(.uint(x), bits: bits, signed: signed, fail) }
            throw outOfRange
        default:
            throw fail(.typeMismatch(expected: expected))
        }
    }

    private func boolean(_ v: JSONValue, _ fail: (EncodeError.Reason) -> EncodeError) throws(EncodeError) -> UInt64 {
        switch v {
        case .bool(let b): return b ? 1 : 0
        case .int, .uint, .double:
            // 0 and 1 only; anything else reports the range 0...1.
            return try integer(v, bits: 1, signed: false, fail)
        default: throw fail(.typeMismatch(expected: "true or false"))
        }
    }

    private func enumerator(_ v: JSONValue, bits: Int, signed: Bool, values: [BTFEnumValue],
                            _ fail: (EncodeError.Reason) -> EncodeError) throws(EncodeError) -> UInt64 {
        if case .string(let name) = v {
            guard let e = values.first(where: { btf.string(at: $0.nameOffset) == name }) else {
                throw fail(.unknownEnumerator(name, valid: values.map { btf.string(at: $0.nameOffset) }))
            }
            let mask: UInt64 = bits >= 64 ? .max : (UInt64(1) << UInt64(bits)) - 1
            return UInt64(bitPattern: e.value) & mask
        }
        return try integer(v, bits: bits, signed: signed, fail, expected: "an enumerator name or an integer")
    }

    private func number(_ v: JSONValue, _ fail: (EncodeError.Reason) -> EncodeError) throws(EncodeError) -> Double {
        switch v {
        case .int(let x): return Double(x)
        case .uint(let x): return Double(x)
        case .double(let d): return d
        default: throw fail(.typeMismatch(expected: "a number"))
        }
    }

    /// Ints wider than 8 bytes: a JSON integer (sign-extended for signed types) or a hex string.
    private func wideInteger(_ v: JSONValue, size: Int, signed: Bool, _ bytes: inout [UInt8], at offset: Int,
                             _ fail: (EncodeError.Reason) -> EncodeError) throws(EncodeError) {
        if case .string(let s) = v {
            guard let raw = hexBytes(s, size: size) else {
                throw fail(.typeMismatch(expected: "an integer or a \"0x…\" hex string of at most \(size * 2) digits"))
            }
            replace(&bytes, at: offset, with: raw)
            return
        }
        let expected = "an integer or a \"0x…\" hex string of at most \(size * 2) digits"
        let raw: UInt64, negative: Bool
        switch v {
        case .int(let x):
            guard signed || x >= 0 else { throw fail(.outOfRange(value: v.text, range: "0...2^\(size * 8)-1")) }
            raw = UInt64(bitPattern: x)
            negative = x < 0
        case .uint(let x):
            raw = x
            negative = false
        case .double(let d) where d.isFinite && d.rounded(.towardZero) == d:
            if let x = Int64(exactly: d) { return try wideInteger(.int(x), size: size, signed: signed, &bytes, at: offset, fail) }
            if let x = UInt64(exactly: d) { return try wideInteger(.uint(x), size: size, signed: signed, &bytes, at: offset, fail) }
            throw fail(.typeMismatch(expected: expected))
        default:
            throw fail(.typeMismatch(expected: expected))
        }
        store(raw, 8, &bytes, at: offset)
        for k in 8..<size { bytes[offset + k] = negative ? 0xFF : 0 }
    }

    /// `"0x…"` (most significant digit first) as `size` little-endian bytes.
    private func hexBytes(_ s: String, size: Int) -> [UInt8]? {
        var digits = Array(s.utf8)
        guard digits.count > 2, digits[0] == 0x30, digits[1] == 0x78 || digits[1] == 0x58 else { return nil }
        digits.removeFirst(2)
        guard digits.count <= size * 2 else { return nil }
        var out = [UInt8](repeating: 0, count: size)
        for (k, c) in digits.reversed().enumerated() {
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: return nil
            }
            out[k / 2] |= k % 2 == 0 ? d : d << 4
        }
        return out
    }

    // MARK: - helpers

    /// Little-endian store of the low `size` (≤ 8) bytes; the span was bounds-checked.
    private func store(_ raw: UInt64, _ size: Int, _ bytes: inout [UInt8], at offset: Int) {
        for k in 0..<min(size, 8) {
            bytes[offset + k] = UInt8(truncatingIfNeeded: raw >> UInt64(8 * k))
        }
    }

    private func replace(_ bytes: inout [UInt8], at offset: Int, with new: [UInt8]) {
        for (k, byte) in new.enumerated() { bytes[offset + k] = byte }
    }

    /// The type as people wrote it, without const/volatile (`__u8`, `struct gl_point`).
    private func displayName(_ id: UInt32) -> String {
        btf.typeName((try? btf.skipModifiers(id)) ?? id)
    }

    private func describe(_ v: JSONValue) -> String {
        switch v {
        case .null, .bool, .int, .uint, .double: return v.text
        case .string(let s):
            var out = ""
            JSONValue.quote(s.count > 40 ? String(s.prefix(40)) + "…" : s, into: &out)
            return out
        case .array(let items): return "an array of \(items.count) element\(items.count == 1 ? "" : "s")"
        case .object: return "an object"
        }
    }
}

extension BTFBits {
    /// Writes the low `bitSize` bits of `value` at `bitOffset` bits past `base`, little-endian
    /// like `read`, leaving every other bit as it was. False (and nothing written) when the bits
    /// would reach `limit` or beyond.
    static func write(_ value: UInt64, into bytes: inout [UInt8], base: Int, limit: Int, bitOffset: Int,
                      bitSize: Int) -> Bool {
        guard base >= 0, bitOffset >= 0, bitSize > 0, bitSize <= 64, limit <= bytes.count, base <= limit else {
            return false
        }
        let lastByte = (bitOffset + bitSize - 1) / 8
        guard lastByte < limit - base else { return false }
        for k in 0..<bitSize {
            let bit = bitOffset + k
            let mask = UInt8(1) << UInt8(bit % 8)
            if (value >> UInt64(k)) & 1 != 0 {
                bytes[base + bit / 8] |= mask
            } else {
                bytes[base + bit / 8] &= ~mask
            }
        }
        return true
    }
}

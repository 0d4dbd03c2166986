extension BTF {
    /// Parses a `.BTF` blob. Every offset, count and type reference is checked; anything wrong
    /// is a `BTFError`, never a trap.
    public init(parsing bytes: [UInt8]) throws(BTFError) {
        let (types, strings) = try BTF.decode(bytes, base: nil)
        self.init(types: types, strings: strings)
        try validateReferences()
    }

    /// The sizes a split blob continues from: its first type id is `typeCount` and its string
    /// offsets start at `stringLength` (both of the base BTF).
    struct SplitBase {
        let typeCount: Int
        let stringLength: Int
    }

    /// Decodes header, string section and types. Without `base`, `types[0]` is `void` and ids
    /// index `types`; with `base` (split BTF), `types` holds only the blob's own types, the first
    /// being id `base.typeCount`, and name offsets below `base.stringLength` name base strings.
    static func decode(_ bytes: [UInt8], base: SplitBase?) throws(BTFError) -> (types: [BTFType], strings: [UInt8]) {
        let layout = try Layout(bytes, split: base != nil)
        let strings = Array(bytes[layout.strings])
        // Name offsets are valid below this (base strings, then the blob's own).
        let stringLimit = (base?.stringLength ?? 0) + strings.count
        // Id of types[0]: void for a base blob, the first own type for a split one.
        let firstID = base?.typeCount ?? 0
        var types: [BTFType] = base == nil ? [BTFType(nameOffset: 0, kind: .void)] : []
        var o = layout.typeStart
        while o < layout.typeEnd {
            guard firstID + types.count <= Int(UInt32.max) else { throw .badHeader(reason: "more than 2^32 types") }
            let id = UInt32(firstID + types.count)
            types.append(try decodeRecord(bytes, at: &o, end: layout.typeEnd, id: id, stringLimit: stringLimit))
        }
        return (types, strings)
    }

    /// Where a blob's type and string sections lie, its header checked.
    struct Layout {
        let typeStart: Int
        let typeEnd: Int
        let strings: Range<Int>

        init(_ bytes: [UInt8], split: Bool) throws(BTFError) {
            let r = ByteReader(bytes)
            func need(_ what: String, _ off: Int, _ len: Int) throws(BTFError) {
                do { try r.check(off, len) } catch {
                    throw .truncated(what: what, offset: off, needed: len, available: bytes.count)
                }
            }
            try need("header", 0, 24)
            let magic = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
            guard magic == BTF.magic else {
                throw .badHeader(reason: "magic 0x\(String(magic, radix: 16)), expected 0xeb9f (or a big-endian blob)")
            }
            guard bytes[2] == 1 else { throw .badHeader(reason: "version \(bytes[2]), expected 1") }
            let hdrLen = Int(BTF.word(bytes, 4))
            guard hdrLen >= 24, hdrLen <= bytes.count else {
                throw .badHeader(reason: "header length \(hdrLen) outside 24...\(bytes.count)")
            }
            let typeOff = Int(BTF.word(bytes, 8)), typeLen = Int(BTF.word(bytes, 12))
            let strOff = Int(BTF.word(bytes, 16)), strLen = Int(BTF.word(bytes, 20))
            try need("type section", hdrLen + typeOff, typeLen)
            try need("string section", hdrLen + strOff, strLen)
            // A split blob may have no strings of its own; a base one starts with the empty name.
            if !split {
                guard strLen > 0, bytes[hdrLen + strOff] == 0 else {
                    throw .badHeader(reason: "string section must start with an empty string")
                }
            }
            guard strLen == 0 || bytes[hdrLen + strOff + strLen - 1] == 0 else {
                throw .badHeader(reason: "string section is not NUL-terminated")
            }
            typeStart = hdrLen + typeOff
            typeEnd = typeStart + typeLen
            strings = (hdrLen + strOff)..<(hdrLen + strOff + strLen)
        }
    }

    /// The little-endian word at `at`; the caller has checked `at + 4 <= bytes.count`.
    static func word(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }

    /// The type record at `o` (moved past it), `end` being the end of the type section.
    static func decodeRecord(_ bytes: [UInt8], at o: inout Int, end: Int, id: UInt32,
                             stringLimit: Int) throws(BTFError) -> BTFType {
        func word(_ at: Int) throws(BTFError) -> UInt32 {
            guard at + 4 <= end else {
                throw .truncated(what: "type [\(id)]", offset: at, needed: 4, available: end - at)
            }
            return BTF.word(bytes, at)
        }
        let nameOff = try word(o)
        let info = try word(o + 4)
        let sizeOrType = try word(o + 8)
        o += 12
        guard Int(nameOff) < stringLimit else { throw .badString(offset: nameOff) }
        let vlen = Int(info & 0xffff)
        let kindRaw = UInt8((info >> 24) & 0x1f)
        let kflag = info & 0x8000_0000 != 0
        guard let tag = BTFKindTag(rawValue: kindRaw) else { throw .unknownKind(id: id, kind: kindRaw) }
        let kind: BTFKind
        switch tag {
        case .void:
            throw .badType(id: id, reason: "kind 0 (void) cannot be defined")
        case .int:
            let v = try word(o); o += 4
            let bits = UInt8(v & 0xff)
            let bitOff = UInt8((v >> 16) & 0xff)
            guard sizeOrType <= 16, UInt32(bits) + UInt32(bitOff) <= sizeOrType * 8 else {
                throw .badType(id: id, reason: "int of \(sizeOrType) bytes with \(bits) bits at bit \(bitOff)")
            }
            kind = .int(size: sizeOrType, encoding: UInt8((v >> 24) & 0x0f), bitOffset: bitOff, bits: bits)
        case .pointer: kind = .pointer(sizeOrType)
        case .array:
            let e = try word(o), ix = try word(o + 4), n = try word(o + 8); o += 12
            kind = .array(element: e, index: ix, count: n)
        case .structure, .union:
            var members: [BTFMember] = []
            members.reserveCapacity(min(vlen, (end - o) / 12 + 1))
            for _ in 0..<vlen {
                let n = try word(o), t = try word(o + 4), off = try word(o + 8); o += 12
                guard Int(n) < stringLimit else { throw .badString(offset: n) }
                members.append(BTFMember(nameOffset: n, type: t, offset: off))
            }
            kind = tag == .structure
                ? .structure(size: sizeOrType, members: members, bitfieldOffsets: kflag)
                : .union(size: sizeOrType, members: members, bitfieldOffsets: kflag)
        case .enumeration:
            var values: [BTFEnumValue] = []
            values.reserveCapacity(min(vlen, (end - o) / 8 + 1))
            for _ in 0..<vlen {
                let n = try word(o), v = try word(o + 4); o += 8
                guard Int(n) < stringLimit else { throw .badString(offset: n) }
                values.append(BTFEnumValue(nameOffset: n, value: kflag ? Int64(Int32(bitPattern: v)) : Int64(v)))
            }
            kind = .enumeration(size: sizeOrType, signed: kflag, values: values)
        case .enum64:
            var values: [BTFEnumValue] = []
            values.reserveCapacity(min(vlen, (end - o) / 12 + 1))
            for _ in 0..<vlen {
                let n = try word(o), lo = try word(o + 4), hi = try word(o + 8); o += 12
                guard Int(n) < stringLimit else { throw .badString(offset: n) }
                values.append(BTFEnumValue(nameOffset: n, value: Int64(bitPattern: UInt64(hi) << 32 | UInt64(lo))))
            }
            kind = .enum64(size: sizeOrType, signed: kflag, values: values)
        case .forward: kind = .forward(isUnion: kflag)
        case .typedef: kind = .typedef(sizeOrType)
        case .volatile: kind = .volatile(sizeOrType)
        case .const: kind = .const(sizeOrType)
        case .restrict: kind = .restrict(sizeOrType)
        case .typeTag: kind = .typeTag(sizeOrType)
        case .function: kind = .function(proto: sizeOrType, linkage: UInt32(vlen))
        case .functionProto:
            var params: [BTFParam] = []
            params.reserveCapacity(min(vlen, (end - o) / 8 + 1))
            for _ in 0..<vlen {
                let n = try word(o), t = try word(o + 4); o += 8
                guard Int(n) < stringLimit else { throw .badString(offset: n) }
                params.append(BTFParam(nameOffset: n, type: t))
            }
            kind = .functionProto(returns: sizeOrType, params: params)
        case .variable:
            let l = try word(o); o += 4
            kind = .variable(type: sizeOrType, linkage: l)
        case .dataSection:
            var vars: [BTFVarSecInfo] = []
            vars.reserveCapacity(min(vlen, (end - o) / 12 + 1))
            for _ in 0..<vlen {
                let t = try word(o), off = try word(o + 4), sz = try word(o + 8); o += 12
                vars.append(BTFVarSecInfo(type: t, offset: off, size: sz))
            }
            kind = .dataSection(size: sizeOrType, vars: vars)
        case .float: kind = .float(size: sizeOrType)
        case .declTag:
            let c = try word(o); o += 4
            kind = .declTag(type: sizeOrType, componentIndex: Int32(bitPattern: c))
        }
        return BTFType(nameOffset: nameOff, kind: kind)
    }

    /// Every type id a type names must exist. (Cycles are caught where chains are walked.)
    func validateReferences() throws(BTFError) {
        try BTF.validateReferences(types, firstID: 0)
    }

    /// `types[i]` is id `firstID + i`; every id named must be below `firstID + types.count`.
    static func validateReferences(_ types: [BTFType], firstID: Int) throws(BTFError) {
        let count = UInt32(clamping: firstID + types.count)
        func ok(_ t: UInt32, _ index: Int) throws(BTFError) {
            guard t < count else {
                throw .badType(id: UInt32(clamping: firstID + index), reason: "refers to type [\(t)], only \(count - 1) exist")
            }
        }
        for (id, t) in types.enumerated() {
            switch t.kind {
            case .structure(_, let ms, _), .union(_, let ms, _):
                for m in ms { try ok(m.type, id) }
            case .functionProto(let r, let ps):
                try ok(r, id)
                for p in ps { try ok(p.type, id) }
            case .dataSection(_, let vs):
                for v in vs { try ok(v.type, id) }
            case .array(let e, let ix, _):
                try ok(e, id); try ok(ix, id)
            case .pointer(let x), .typedef(let x), .volatile(let x), .const(let x), .restrict(let x), .typeTag(let x),
                 .variable(let x, _), .function(let x, _), .declTag(let x, _):
                try ok(x, id)
            default: break
            }
        }
    }

    /// Serialises back to the kernel's format (the blob `BPF_BTF_LOAD` takes).
    public func encoded() -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(types.count * 16)
        for t in types.dropFirst() {
            func head(_ vlen: Int, _ kflag: Bool, _ sizeOrType: UInt32) {
                body.appendLE(t.nameOffset)
                body.appendLE(UInt32(t.kind.tag.rawValue) << 24 | UInt32(vlen & 0xffff) | (kflag ? 0x8000_0000 : 0))
                body.appendLE(sizeOrType)
            }
            switch t.kind {
            case .void: break
            case .int(let size, let enc, let bitOff, let bits):
                head(0, false, size)
                body.appendLE(UInt32(enc) << 24 | UInt32(bitOff) << 16 | UInt32(bits))
            case .pointer(let x), .typedef(let x), .volatile(let x), .const(let x), .restrict(let x), .typeTag(let x):
                head(0, false, x)
            case .array(let e, let ix, let n):
                head(0, false, 0)
                body.appendLE(e); body.appendLE(ix); body.appendLE(n)
            case .structure(let size, let ms, let kf), .union(let size, let ms, let kf):
                head(ms.count, kf, size)
                for m in ms { body.appendLE(m.nameOffset); body.appendLE(m.type); body.appendLE(m.offset) }
            case .enumeration(let size, let signed, let vs):
                head(vs.count, signed, size)
                for v in vs { body.appendLE(v.nameOffset); body.appendLE(UInt32(truncatingIfNeeded: v.value)) }
            case .enum64(let size, let signed, let vs):
                head(vs.count, signed, size)
                for v in vs {
                    body.appendLE(v.nameOffset)
                    body.appendLE(UInt32(truncatingIfNeeded: v.value))
                    body.appendLE(UInt32(truncatingIfNeeded: UInt64(bitPattern: v.value) >> 32))
                }
            case .forward(let isUnion): head(0, isUnion, 0)
            case .function(let proto, let linkage): head(Int(linkage), false, proto)
            case .functionProto(let ret, let ps):
                head(ps.count, false, ret)
                for p in ps { body.appendLE(p.nameOffset); body.appendLE(p.type) }
            case .variable(let type, let linkage):
                head(0, false, type)
                body.appendLE(linkage)
            case .dataSection(let size, let vs):
                head(vs.count, false, size)
                for v in vs { body.appendLE(v.type); body.appendLE(v.offset); body.appendLE(v.size) }
            case .float(let size): head(0, false, size)
            case .declTag(let type, let c):
                head(0, false, type)
                body.appendLE(c)
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(24 + body.count + strings.count)
        out.appendLE(BTF.magic)
        out.append(1); out.append(0)
        out.appendLE(UInt32(24))
        out.appendLE(UInt32(0)); out.appendLE(UInt32(body.count))
        out.appendLE(UInt32(body.count)); out.appendLE(UInt32(strings.count))
        out.append(contentsOf: body)
        out.append(contentsOf: strings)
        return out
    }
}

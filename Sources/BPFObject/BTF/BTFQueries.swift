extension BTF {
    /// libbpf's limit on how many typedef/modifier/array links a size or name walk follows.
    static let maxResolveDepth = 32
}

extension BTFTypeLookup {

    /// Follows typedefs and CV/restrict/type-tag modifiers to the underlying type id.
    public func skipModifiersAndTypedefs(_ id: UInt32) throws(BTFError) -> UInt32 {
        var cur = id
        for _ in 0..<BTF.maxResolveDepth {
            guard let t = type(cur) else { return cur }
            switch t.kind {
            case .typedef(let x), .volatile(let x), .const(let x), .restrict(let x), .typeTag(let x):
                cur = x
            default:
                return cur
            }
        }
        throw .typeLoop(id: id)
    }

    /// Follows only CV/restrict/type-tag modifiers (keeps typedef names).
    public func skipModifiers(_ id: UInt32) throws(BTFError) -> UInt32 {
        var cur = id
        for _ in 0..<BTF.maxResolveDepth {
            guard let t = type(cur) else { return cur }
            switch t.kind {
            case .volatile(let x), .const(let x), .restrict(let x), .typeTag(let x): cur = x
            default: return cur
            }
        }
        throw .typeLoop(id: id)
    }
}

extension BTF {
    /// Size in bytes of a type, as `btf__resolve_size` computes it.
    public func resolveSize(_ id: UInt32) throws(BTFError) -> UInt64 {
        var cur = id
        var multiplier: UInt64 = 1
        for _ in 0..<BTF.maxResolveDepth {
            guard let t = type(cur) else {
                throw .badType(id: id, reason: cur == 0 ? "void has no size" : "refers to missing type [\(cur)]")
            }
            switch t.kind {
            case .int(let s, _, _, _), .structure(let s, _, _), .union(let s, _, _), .enumeration(let s, _, _),
                 .enum64(let s, _, _), .dataSection(let s, _), .float(let s):
                let (r, o) = multiplier.multipliedReportingOverflow(by: UInt64(s))
                guard !o, r <= UInt64(UInt32.max) else { throw .badType(id: id, reason: "size overflows 32 bits") }
                return r
            case .pointer:
                return multiplier * 8
            case .typedef(let x), .volatile(let x), .const(let x), .restrict(let x), .typeTag(let x), .variable(let x, _):
                cur = x
            case .array(let e, _, let n):
                let (r, o) = multiplier.multipliedReportingOverflow(by: UInt64(n))
                guard !o, r <= UInt64(UInt32.max) else { throw .badType(id: id, reason: "array size overflows 32 bits") }
                multiplier = r
                cur = e
            default:
                throw .badType(id: id, reason: "a \(t.kind.tag) has no size")
            }
        }
        throw .typeLoop(id: id)
    }

    /// Natural alignment of a type (libbpf's `btf__align_of`), used for `.kconfig` layout.
    public func alignment(_ id: UInt32) throws(BTFError) -> UInt64 {
        var known: [UInt32: UInt64] = [:]
        return try alignment(id, depth: 0, known: &known)
    }

    /// `depth` counts every link followed, members included, so a struct that contains itself ends
    /// in `typeLoop` instead of overflowing the stack; `known` holds each struct or union worked
    /// out so far, so member types shared many times over (hostile BTF can nest 30 structs of two
    /// members each) are walked once.
    private func alignment(_ id: UInt32, depth: Int, known: inout [UInt32: UInt64]) throws(BTFError) -> UInt64 {
        var cur = id
        for level in depth..<BTF.maxResolveDepth {
            guard let t = type(cur) else { throw .badType(id: id, reason: "no alignment for [\(cur)]") }
            switch t.kind {
            case .int(let s, _, _, _), .enumeration(let s, _, _), .enum64(let s, _, _), .float(let s):
                return UInt64(min(max(s, 1), 8))
            case .pointer: return 8
            case .typedef(let x), .volatile(let x), .const(let x), .restrict(let x), .typeTag(let x):
                cur = x
            case .array(let e, _, _): cur = e
            case .structure(_, let ms, _), .union(_, let ms, _):
                if let a = known[cur] { return a }
                var a: UInt64 = 1
                for m in ms { a = max(a, try alignment(m.type, depth: level + 1, known: &known)) }
                known[cur] = a
                return a
            default:
                throw .badType(id: id, reason: "a \(t.kind.tag) has no alignment")
            }
        }
        throw .typeLoop(id: id)
    }

    /// C spelling of a type for people: `int`, `const volatile __u32`, `struct point`,
    /// `char[16]`, `int *`, `enum mode`.
    public func typeName(_ id: UInt32) -> String {
        render(id, depth: 0)
    }

    private func render(_ id: UInt32, depth: Int) -> String {
        guard depth < BTF.maxResolveDepth else { return "<loop>" }
        if id == 0 { return "void" }
        guard let t = type(id) else { return "<bad type \(id)>" }
        let n = string(at: t.nameOffset)
        switch t.kind {
        case .void: return "void"
        case .int, .float, .typedef: return n
        case .structure: return n.isEmpty ? "struct {...}" : "struct " + n
        case .union: return n.isEmpty ? "union {...}" : "union " + n
        case .enumeration, .enum64: return n.isEmpty ? "enum {...}" : "enum " + n
        case .forward(let u): return (u ? "union " : "struct ") + n
        case .pointer(let x):
            let inner = render(x, depth: depth + 1)
            return inner.hasSuffix("*") ? inner + "*" : inner + " *"
        case .volatile(let x): return "volatile " + render(x, depth: depth + 1)
        case .const(let x): return "const " + render(x, depth: depth + 1)
        case .restrict(let x): return render(x, depth: depth + 1) + " restrict"
        case .typeTag(let x): return render(x, depth: depth + 1)
        case .array(let e, _, let count):
            // `char[4][2]`: the outer dimension comes first.
            let inner = render(e, depth: depth + 1)
            // A Character equal to "[" is that one scalar, so without the byte there is none to
            // find (the search by Character is the slow part of rendering an array).
            if inner.utf8.contains(UInt8(ascii: "[")), let bracket = inner.firstIndex(of: "[") {
                return String(inner[..<bracket]) + "[\(count)]" + String(inner[bracket...])
            }
            return inner + "[\(count)]"
        case .function: return n
        case .functionProto: return "function"
        case .variable(let x, _): return render(x, depth: depth + 1)
        case .dataSection: return n
        case .declTag(let x, _): return render(x, depth: depth + 1)
        }
    }
}

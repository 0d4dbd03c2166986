extension ObjectSpec {
    /// The summary `bpfdepot inspect --json` prints: maps, entry programs, variables, externs.
    public var summaryJSON: JSONValue {
        .object([
            ("name", .string(name)),
            ("license", .string(license)),
            ("maps", .array(maps.map { m in
                .object([
                    ("name", .string(m.libbpfName)),
                    ("kernelName", .string(m.name)),
                    ("type", .string(m.type.name)),
                    ("keySize", .uint(UInt64(m.keySize))),
                    ("valueSize", .uint(UInt64(m.valueSize))),
                    ("maxEntries", .uint(UInt64(m.maxEntries))),
                    ("flags", .uint(UInt64(m.flags))),
                    ("mapExtra", .uint(m.mapExtra)),
                    ("section", .string(m.section)),
                    ("initialValueSize", .uint(UInt64(m.initialValueSize))),
                ])
            })),
            ("programs", .array(entryPrograms.map { p in
                .object([
                    ("name", .string(p.name)),
                    ("section", .string(p.sectionName)),
                    ("type", .string(p.type.name)),
                    ("attachType", p.shownAttachType.map { .string($0.name) } ?? .null),
                    ("instructions", .uint(UInt64(p.instructions.count))),
                    ("autoload", .bool(p.autoload)),
                ])
            })),
            ("variables", .array(variables.map { v in
                .object([
                    ("name", .string(v.name)),
                    ("section", .string(v.section)),
                    ("offset", .uint(UInt64(v.offset))),
                    ("size", .uint(UInt64(v.size))),
                    ("type", .string(v.typeName)),
                ])
            })),
            ("externs", .array(externs.map { e in
                .object([("name", .string(e.name)), ("kind", .string(e.kindName)), ("weak", .bool(e.weak))])
            })),
        ])
    }

    /// A variable's initial value decoded through BTF from its section image.
    public func initialValue(of variable: VariableSpec) throws(BTFValueDecoder.DecodeError) -> JSONValue {
        guard let btf, let ds = dataSection(named: variable.section) else {
            throw .unsupported(typeName: variable.typeName)
        }
        let start = Int(variable.offset)
        let end = start + Int(variable.size)
        guard end <= ds.image.count else {
            throw .outOfBounds(typeName: variable.typeName, needed: end, available: ds.image.count)
        }
        return try BTFValueDecoder(btf: btf).decode(variable.btfTypeID, ds.image[start..<end])
    }

    /// A readable summary in the spirit of `bpftool`: maps, programs, variables with their
    /// initial values, externs.
    public var summaryText: String {
        var out = "object \(name)  license \"\(license)\""
        if let v = kernelVersion { out += "  version \(v)" }
        out += "\n"
        if !maps.isEmpty {
            out += "maps:\n"
            for (i, m) in maps.enumerated() {
                out += "  \(i): \(m.type.name)  name \(m.libbpfName)  key \(m.keySize)B  value \(m.valueSize)B  max_entries \(m.maxEntries)"
                out += "  flags 0x\(String(m.flags, radix: 16))"
                if m.mapExtra != 0 { out += "  map_extra 0x\(String(m.mapExtra, radix: 16))" }
                if m.pinning == .byName { out += "  pinned by name" }
                out += "  section \(m.section)"
                if m.initialValueSize > 0 { out += "  initial value \(m.initialValueSize)B" }
                if let inner = m.innerMap { out += "  inner \(inner.type.name)(\(inner.keySize)B→\(inner.valueSize)B)" }
                if !m.initialSlots.isEmpty {
                    let slots = m.initialSlots.sorted { $0.key < $1.key }.map { k, v -> String in
                        switch v {
                        case .map(let idx): return "[\(k)]=\(maps[idx].name)"
                        case .program(let p): return "[\(k)]=\(p)"
                        }
                    }
                    out += "  slots " + slots.joined(separator: " ")
                }
                out += "\n"
            }
        }
        if !programs.isEmpty {
            out += "programs:\n"
            for p in programs {
                if p.isSubprogram {
                    out += "  \(p.name)  subprogram (.text)  insns \(p.instructions.count)\n"
                    continue
                }
                out += "  \(p.name)  \(p.type.name)"
                if let a = p.shownAttachType { out += "  attach \(a.name)" }
                out += "  section \(p.sectionName)  insns \(p.instructions.count)"
                if !p.autoload { out += "  autoload off" }
                if !p.hasKnownSection { out += "  (unknown section: will not load)" }
                out += "\n"
            }
        }
        if !variables.isEmpty {
            out += "variables:\n"
            for v in variables {
                let value: String
                do { value = try initialValue(of: v).text } catch { value = "<\(error)>" }
                out += "  \(v.section)+0x\(String(v.offset, radix: 16))  \(v.typeName) \(v.name)\(v.isStatic ? " (static)" : "") = \(value)\n"
            }
        }
        if !externs.isEmpty {
            out += "externs:\n"
            for e in externs { out += "  \(e.name)  \(e.kindName)\(e.weak ? "  weak" : "")\n" }
        }
        for w in warnings { out += "warning: \(w)\n" }
        return out
    }
}

extension ObjectSpec {
    /// Writes a typed JSON value into a variable's initial image (on a copy: the spec changes only
    /// if the whole value encodes).
    public mutating func patch(variable name: String, with value: JSONValue) throws(PatchError) {
        guard let v = variable(named: name) else { throw .unknownVariable(name) }
        guard let btf, let i = dataSections.firstIndex(where: { $0.name == v.section }) else {
            throw .unknownVariable(name)
        }
        var image = dataSections[i].image
        do {
            try BTFValueEncoder(btf: btf).encode(value, as: v.btfTypeID, into: &image, at: Int(v.offset), path: name)
        } catch {
            throw .encode(error)
        }
        dataSections[i].image = image
    }
}

public enum PatchError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownVariable(String)
    case encode(BTFValueEncoder.EncodeError)

    public var description: String {
        switch self {
        case .unknownVariable(let n): return "no variable named '\(n)'"
        case .encode(let e): return e.description
        }
    }
}

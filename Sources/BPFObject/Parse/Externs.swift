extension ObjectParser {
    /// libbpf's `collect_externs`: every undefined GLOBAL/WEAK NOTYPE symbol must have a BTF VAR or
    /// FUNC with extern linkage in `.kconfig` or `.ksyms`. Afterwards the `.ksyms` and `.kconfig`
    /// DATASECs are laid out as the kernel will be shown them.
    mutating func collectExterns() throws(ObjectError) {
        let candidates = elf.symbols.dropFirst().filter { $0.isUndefined && $0.isGlobalOrWeak && $0.isNoType }
        guard !candidates.isEmpty else { return }
        var btf = try requireBTF("extern '\(candidates[candidates.startIndex].name)' needs BTF")
        struct Found { var spec: ExternSpec; var kcfgAlign: UInt64; var kcfgSize: UInt64 }
        var found: [Found] = []
        var ksymsSec: UInt32?
        var kconfigSec: UInt32?
        for sym in candidates {
            guard let id = findExternBTF(btf, sym.name) else {
                throw .externSymbol(name: sym.name, reason: "no BTF VAR or FUNC with extern linkage")
            }
            guard let secID = datasec(in: btf, containing: id) else {
                throw .externSymbol(name: sym.name, reason: "its BTF is in no DATASEC")
            }
            let secName = btf.name(of: secID)
            let essential = ObjectParser.essentialName(sym.name)
            guard let t = btf.type(id) else { throw .externSymbol(name: sym.name, reason: "bad BTF id \(id)") }
            let isFunc = t.kind.tag == .function
            let typeID = t.kind.referencedType ?? 0
            switch secName {
            case ".kconfig":
                guard !isFunc else { throw .externSymbol(name: sym.name, reason: "extern function in .kconfig is unsupported") }
                let size: UInt64, align: UInt64
                do {
                    size = try btf.resolveSize(typeID)
                    align = try btf.alignment(typeID)
                } catch { throw .externSymbol(name: sym.name, reason: "kconfig type: \(error)") }
                guard size > 0, align > 0 else { throw .externSymbol(name: sym.name, reason: "kconfig type has no size") }
                guard KconfigType(btf: btf, typeID: typeID) != nil else {
                    throw .externSymbol(name: sym.name, reason: "kconfig type '\(btf.typeName(typeID))' is unsupported")
                }
                kconfigSec = secID
                found.append(Found(spec: ExternSpec(
                    name: sym.name, essentialName: essential, kind: .kconfig(offset: 0, size: UInt32(size)),
                    weak: sym.isWeak, symbolIndex: sym.index, btfID: id, btfTypeID: typeID),
                    kcfgAlign: align, kcfgSize: size))
            case ".ksyms":
                ksymsSec = secID
                let kind: ExternSpec.Kind
                var resolved = typeID
                if isFunc {
                    kind = .kfunc
                } else {
                    resolved = (try? btf.skipModifiersAndTypedefs(typeID)) ?? 0
                    kind = .ksym(typed: resolved != 0)
                }
                found.append(Found(spec: ExternSpec(
                    name: sym.name, essentialName: essential, kind: kind, weak: sym.isWeak,
                    symbolIndex: sym.index, btfID: id, btfTypeID: resolved), kcfgAlign: 0, kcfgSize: 0))
            default:
                throw .externSymbol(name: sym.name, reason: "unrecognized extern section '\(secName)'")
            }
        }
        // libbpf's order: kconfig before ksyms; kconfig by alignment (descending), then size
        // (ascending); ties by name.
        found.sort { a, b in
            let ak = a.spec.isKconfig, bk = b.spec.isKconfig
            if ak != bk { return ak }
            if ak {
                if a.kcfgAlign != b.kcfgAlign { return a.kcfgAlign > b.kcfgAlign }
                if a.kcfgSize != b.kcfgSize { return a.kcfgSize < b.kcfgSize }
            }
            return a.spec.name.utf8.lexicographicallyPrecedes(b.spec.name.utf8)
        }
        var kconfigSize: UInt64 = 0
        for i in found.indices where found[i].spec.isKconfig {
            let off = (kconfigSize + found[i].kcfgAlign - 1) / found[i].kcfgAlign * found[i].kcfgAlign
            // The area becomes a zeroed image, so it is held to the limit on data sections (one
            // `char CONFIG_X[0xfffffff0]` would otherwise allocate 4 GiB).
            guard off + found[i].kcfgSize <= ELFFile.maxNobitsSize else {
                throw .externSymbol(name: found[i].spec.name,
                                    reason: ".kconfig area grows past \(ELFFile.maxNobitsSize) bytes")
            }
            found[i].spec.kind = .kconfig(offset: UInt32(off), size: UInt32(found[i].kcfgSize))
            kconfigSize = off + found[i].kcfgSize
        }
        externs = found.map(\.spec)
        if let ksymsSec { try layoutKsyms(&btf, ksymsSec) }
        if let kconfigSec { try layoutKconfig(&btf, kconfigSec, size: kconfigSize) }
        self.btf = btf
        if kconfigSec != nil { kconfigImageSize = Int(kconfigSize) }
    }

    /// The name without a `___flavor` suffix.
    static func essentialName(_ name: String) -> String {
        let b = Array(name.utf8)
        guard b.count >= 3 else { return name }
        for i in 0...(b.count - 3) where b[i] == 0x5f && b[i + 1] == 0x5f && b[i + 2] == 0x5f {
            return String(decoding: b[..<i], as: UTF8.self)
        }
        return name
    }

    private func findExternBTF(_ btf: BTF, _ name: String) -> UInt32? {
        let target = Array(name.utf8)
        for (i, t) in btf.types.enumerated() where i > 0 {
            switch t.kind {
            case .variable(_, let linkage) where linkage == BTFVarLinkage.external.rawValue:
                if btf.stringEquals(t.nameOffset, target) { return UInt32(i) }
            case .function(_, let linkage) where linkage == 2:
                if btf.stringEquals(t.nameOffset, target) { return UInt32(i) }
            default: continue
            }
        }
        return nil
    }

    private func datasec(in btf: BTF, containing id: UInt32) -> UInt32? {
        for (i, t) in btf.types.enumerated() {
            if case .dataSection(_, let vars) = t.kind, vars.contains(where: { $0.type == id }) { return UInt32(i) }
        }
        return nil
    }

    /// `.ksyms`: each entry becomes a 4-byte slot; VARs become allocated `int`s; FUNCs keep their
    /// type but the DATASEC points at a `dummy_ksym` VAR, and unnamed parameters take its name.
    private func layoutKsyms(_ btf: inout BTF, _ secID: UInt32) throws(ObjectError) {
        guard case .dataSection(_, var vars) = btf.types[Int(secID)].kind else { return }
        let intID = btf.types.indices.first { i in
            if case .int(4, _, _, 32) = btf.types[i].kind { return true }
            return false
        }.map { UInt32($0) }
        let hasFunc = vars.contains { btf.type($0.type)?.kind.tag == .function }
        var dummyID: UInt32 = 0
        var dummyName: UInt32 = 0
        if hasFunc {
            guard let intID else {
                throw .externSymbol(name: "dummy_ksym", reason: "no 4-byte int in BTF for the .ksyms layout")
            }
            dummyName = btf.addString("dummy_ksym")
            btf.types.append(BTFType(nameOffset: dummyName, kind: .variable(type: intID, linkage: BTFVarLinkage.globalAllocated.rawValue)))
            dummyID = UInt32(btf.types.count - 1)
        }
        for i in vars.indices {
            let vid = Int(vars[i].type)
            guard vid > 0, vid < btf.types.count else { continue }
            let nameOff = btf.types[vid].nameOffset
            guard externs.contains(where: { $0.btfID == UInt32(vid) }) else {
                throw .externSymbol(name: btf.string(at: nameOff), reason: "in .ksyms BTF but not an extern symbol")
            }
            switch btf.types[vid].kind {
            case .function(let proto, _):
                if case .functionProto(let ret, var params)? = btf.type(proto).map(\.kind) {
                    for j in params.indices where params[j].type != 0 && params[j].nameOffset == 0 {
                        params[j].nameOffset = dummyName
                    }
                    btf.types[Int(proto)].kind = .functionProto(returns: ret, params: params)
                }
                btf.types[vid].kind = .function(proto: proto, linkage: 1)
                vars[i].type = dummyID
            case .variable:
                btf.types[vid].kind = .variable(type: intID ?? 0, linkage: BTFVarLinkage.globalAllocated.rawValue)
            default: break
            }
            vars[i].offset = UInt32(i * 4)
            vars[i].size = 4
        }
        btf.types[Int(secID)].kind = .dataSection(size: UInt32(vars.count * 4), vars: vars)
    }

    private func layoutKconfig(_ btf: inout BTF, _ secID: UInt32, size: UInt64) throws(ObjectError) {
        guard case .dataSection(_, var vars) = btf.types[Int(secID)].kind else { return }
        for i in vars.indices {
            let vid = Int(vars[i].type)
            guard let ext = externs.first(where: { $0.btfID == UInt32(vid) }),
                  case .kconfig(let off, _) = ext.kind,
                  case .variable(let t, _) = btf.types[vid].kind else {
                throw .externSymbol(name: btf.name(of: UInt32(vid)), reason: "in .kconfig BTF but not an extern symbol")
            }
            btf.types[vid].kind = .variable(type: t, linkage: BTFVarLinkage.globalAllocated.rawValue)
            vars[i].offset = off
        }
        btf.types[Int(secID)].kind = .dataSection(size: UInt32(size), vars: vars)
    }
}

extension ExternSpec {
    var isKconfig: Bool {
        if case .kconfig = kind { return true }
        return false
    }
}

/// The value shapes libbpf accepts for a `__kconfig` extern.
public enum KconfigType: Sendable, Equatable {
    case bool, char, tristate, charArray(count: UInt32)
    case int(size: UInt32, signed: Bool)

    public init?(btf: BTF, typeID: UInt32) {
        guard let id = try? btf.skipModifiersAndTypedefs(typeID), let t = btf.type(id) else { return nil }
        switch t.kind {
        case .int(let size, let enc, _, _):
            if enc & 4 != 0 { if size == 1 { self = .bool; return } else { return nil } }
            if size == 1 { self = .char; return }
            guard [2, 4, 8].contains(size) else { return nil }
            self = .int(size: size, signed: enc & 1 != 0)
        case .enumeration(let size, _, _):
            guard size == 4, btf.string(at: t.nameOffset) == "libbpf_tristate" else { return nil }
            self = .tristate
        case .enum64:
            guard btf.string(at: t.nameOffset) == "libbpf_tristate" else { return nil }
            self = .tristate
        case .array(let e, _, let n):
            guard n > 0, KconfigType(btf: btf, typeID: e) == .char else { return nil }
            self = .charArray(count: n)
        default:
            return nil
        }
    }
}

extension ObjectParser {
    /// libbpf's `btf_fixup_datasec`: the compiler leaves DATASEC sizes and global VAR offsets at 0;
    /// they come from the ELF section size and the symbols. Hidden globals become static. Entries
    /// are then sorted by offset.
    mutating func fixupDatasecs() throws(ObjectError) {
        guard var btf else { return }
        // Moved out, so that the fixups below mutate the only reference to the types instead of
        // copying all of them on the first write (the parser is discarded if this throws).
        self.btf = nil
        defer { self.btf = btf }
        for i in btf.types.indices {
            guard case .dataSection(var size, var vars) = btf.types[i].kind else { continue }
            datasecList.append(UInt32(i))
            let secName = btf.string(at: btf.types[i].nameOffset)
            if secName == ".kconfig" || secName == ".ksyms" {
                vars.sort { $0.offset < $1.offset }
                btf.types[i].kind = .dataSection(size: size, vars: vars)
                continue
            }
            let fixOffsets = size == 0
            if fixOffsets {
                guard let idx = sectionIndex(named: secName) else {
                    throw .datasecFixup(datasec: secName, reason: "no ELF section of that name to take the size from")
                }
                size = UInt32(clamping: elf.sections[idx].size)
            }
            for k in vars.indices {
                let vid = Int(vars[k].type)
                guard vid > 0, vid < btf.types.count, case .variable(let vt, let linkage) = btf.types[vid].kind else {
                    throw .datasecFixup(datasec: secName, reason: "entry \(k) is not a VAR")
                }
                if linkage == BTFVarLinkage.staticLinkage.rawValue || linkage == BTFVarLinkage.external.rawValue { continue }
                let varName = btf.string(at: btf.types[vid].nameOffset)
                guard let sym = elf.symbols.first(where: { $0.isObject && $0.isGlobalOrWeak && $0.name == varName }) else {
                    throw .datasecFixup(datasec: secName, reason: "no symbol for variable '\(varName)'")
                }
                if fixOffsets { vars[k].offset = UInt32(clamping: sym.value) }
                if sym.isHidden {
                    btf.types[vid].kind = .variable(type: vt, linkage: BTFVarLinkage.staticLinkage.rawValue)
                }
            }
            vars.sort { $0.offset < $1.offset }
            btf.types[i].kind = .dataSection(size: size, vars: vars)
        }
    }
}

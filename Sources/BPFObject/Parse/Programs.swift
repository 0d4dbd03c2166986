extension ObjectParser {
    /// libbpf's `bpf_object__add_programs` + `init_progs`: every FUNC symbol of every executable
    /// section is a program; those in `.text` are subprograms. Sorted by (section, offset).
    mutating func collectPrograms() throws(ObjectError) {
        var found: [ProgramSpec] = []
        // The FUNC symbols, once, in symbol order (each code section takes its own from them).
        let functions = elf.symbols.filter { $0.isFunction }
        for s in elf.sections where roles[s.index] == .program || roles[s.index] == .text {
            let isText = roles[s.index] == .text
            let rawSection = s.name
            let autoload = !rawSection.hasPrefix("?")
            let secName = autoload ? rawSection : String(rawSection.dropFirst())
            let def = isText ? nil : SectionDefinitions.match(secName)
            for sym in functions where Int(sym.sectionIndex) == s.index {
                guard !sym.name.isEmpty else { throw .program(section: rawSection, reason: "function at offset \(sym.value) has no name") }
                let (end, overflow) = sym.value.addingReportingOverflow(sym.size)
                guard sym.size > 0, !overflow, end <= UInt64(s.data.count) else {
                    throw .program(section: rawSection, reason: "program '\(sym.name)' [\(sym.value), +\(sym.size)) crosses the section boundary (\(s.data.count) bytes)")
                }
                guard sym.value % 8 == 0, sym.size % 8 == 0 else {
                    throw .program(section: rawSection, reason: "program '\(sym.name)' is not 8-byte aligned (offset \(sym.value), size \(sym.size))")
                }
                if !isText && sym.isLocal {
                    throw .program(section: rawSection, reason: "static program '\(sym.name)' is not supported outside .text")
                }
                let insns = ObjectParser.decodeInstructions(s.data, from: Int(sym.value), count: Int(sym.size / 8))
                var flags: UInt32 = 0
                if let def {
                    if def.flags.contains(.sleepable) { flags |= BPFProgramFlags.sleepable.rawValue }
                    if def.flags.contains(.xdpFrags) { flags |= BPFProgramFlags.xdpHasFrags.rawValue }
                }
                let needsBTF = def?.flags.contains(.attachBTF) ?? false
                var attachTarget: String?
                if needsBTF, let slash = secName.firstIndex(of: "/") {
                    attachTarget = String(secName[secName.index(after: slash)...])
                }
                found.append(ProgramSpec(
                    name: sym.name, sectionName: secName, sectionIndex: s.index,
                    sectionInstructionOffset: Int(sym.value / 8), instructions: insns,
                    type: isText ? .unspec : (def?.programType ?? .unspec),
                    expectedAttachType: def?.expectedAttachType ?? BPFAttachType(rawValue: 0),
                    shownAttachType: def?.shownAttachType, flags: flags, attachTarget: attachTarget,
                    needsAttachBTF: needsBTF, autoload: autoload, isSubprogram: isText,
                    isGlobalFunction: sym.isGlobalOrWeak && !sym.isHidden, hasKnownSection: isText || def != nil,
                    relocations: [], coreRelocations: coreRelocations(section: rawSection, start: sym.value, size: sym.size)))
            }
        }
        found.sort { ($0.sectionIndex, $0.sectionInstructionOffset) < ($1.sectionIndex, $1.sectionInstructionOffset) }
        programs = found
        // Hidden global subprograms are verified as static ones: mark their BTF FUNC static, as
        // libbpf's mark_btf_static does.
        if var btf {
            self.btf = nil  // moved out: a write below then does not copy every type
            for sym in elf.symbols where sym.isFunction && sym.isGlobalOrWeak && sym.isHidden {
                if let id = btf.find(named: sym.name, kind: .function),
                   case .function(let proto, _) = btf.types[Int(id)].kind {
                    btf.types[Int(id)].kind = .function(proto: proto, linkage: 0)
                }
            }
            self.btf = btf
        }
    }

    static func decodeInstructions(_ data: [UInt8], from offset: Int, count: Int) -> [BPFInstruction] {
        var out: [BPFInstruction] = []
        out.reserveCapacity(count)
        data.withUnsafeBytes { raw in
            for i in 0..<count {
                let o = offset + i * 8
                out.append(BPFInstruction(
                    opcode: raw[o], registers: raw[o + 1],
                    offset: Int16(bitPattern: UInt16(raw[o + 2]) | UInt16(raw[o + 3]) << 8),
                    immediate: Int32(bitPattern: raw.loadUnaligned(fromByteOffset: o + 4, as: UInt32.self).littleEndian)))
            }
        }
        return out
    }

    private func coreRelocations(section: String, start: UInt64, size: UInt64) -> [BTFExt.CoreRelocation] {
        guard let recs = btfExt?.coreRelocations[section] else { return [] }
        return recs.compactMap { r in
            let off = UInt64(r.instructionOffset)
            guard off >= start, off < start + size else { return nil }
            var local = r
            local.instructionOffset = UInt32(off - start)
            return local
        }
    }
}

extension BPFInstruction {
    init(opcode: UInt8, registers: UInt8, offset: Int16, immediate: Int32) {
        self.init(opcode: opcode, dst: registers & 0xf, src: registers >> 4, offset: offset, immediate: immediate)
    }
}

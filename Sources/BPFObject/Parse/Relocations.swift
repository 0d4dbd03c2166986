import CLibELF
import CELFShim

struct RelocationEntry {
    var offset: UInt64
    var symbol: Int
    var type: UInt32
}

extension ObjectParser {
    /// Elf64_Rel entries of a REL section, read from the copied bytes.
    func relocationEntries(_ relIndex: Int) throws(ObjectError) -> [RelocationEntry] {
        let s = elf.sections[relIndex]
        guard s.data.count % 16 == 0 else {
            throw .malformedELF(reason: "relocation section '\(s.name)' size \(s.data.count) is not a multiple of 16")
        }
        var out: [RelocationEntry] = []
        out.reserveCapacity(s.data.count / 16)
        s.data.withUnsafeBytes { raw in
            for i in 0..<(s.data.count / 16) {
                let off = raw.loadUnaligned(fromByteOffset: i * 16, as: UInt64.self).littleEndian
                let info = raw.loadUnaligned(fromByteOffset: i * 16 + 8, as: UInt64.self).littleEndian
                out.append(RelocationEntry(offset: off, symbol: Int(celf_r_sym(UInt(info))), type: UInt32(celf_r_type(UInt(info)))))
            }
        }
        return out
    }

    /// libbpf's `collect_prog_relos` + `record_reloc`, for every REL section that applies to code.
    mutating func collectRelocations() throws(ObjectError) {
        let found = try programRelocations()
        for i in programs.indices {
            // Taken over whole when the program has none yet (always, today): no second copy.
            if programs[i].relocations.isEmpty {
                programs[i].relocations = found[i]
            } else {
                programs[i].relocations.append(contentsOf: found[i])
            }
            programs[i].relocations.sort { $0.instruction < $1.instruction }
        }
    }

    /// The relocations of each program, in `programs` order. Non-mutating, so that classifying a
    /// relocation copies neither the parser nor a ProgramSpec.
    private func programRelocations() throws(ObjectError) -> [[Relocation]] {
        // Programs by section, for the lookup of the program holding an instruction.
        var bySection: [Int: [Int]] = [:]
        for (i, p) in programs.enumerated() { bySection[p.sectionIndex, default: []].append(i) }
        // Each program's instructions within its section, read once rather than per relocation.
        let spans = programs.map { (start: $0.sectionInstructionOffset, end: $0.sectionInstructionOffset + $0.instructions.count) }
        var found = [[Relocation]](repeating: [], count: programs.count)
        for (target, relIndex) in relocationSections {
            guard roles[target] == .program || roles[target] == .text else { continue }
            let sec = elf.sections[target]
            let secName = sec.name
            let candidates = bySection[target] ?? []
            for e in try relocationEntries(relIndex) {
                guard e.symbol > 0, e.symbol < elf.symbols.count else {
                    throw .malformedELF(reason: "relocation in '\(secName)' at \(e.offset) names symbol \(e.symbol) of \(elf.symbols.count)")
                }
                guard e.offset % 8 == 0, e.offset < UInt64(sec.data.count) else {
                    throw .malformedELF(reason: "relocation in '\(secName)' at offset \(e.offset): misaligned or outside the section")
                }
                let insnIndex = Int(e.offset / 8)
                guard let pi = candidates.first(where: { i in insnIndex >= spans[i].start && insnIndex < spans[i].end }) else {
                    // Not inside any function (e.g. an overridden weak function): libbpf skips it.
                    continue
                }
                let local = insnIndex - spans[pi].start
                found[pi].append(try classify(e, program: pi, at: local, sectionName: secName))
            }
        }
        return found
    }

    private func classify(_ e: RelocationEntry, program pi: Int, at idx: Int, sectionName: String) throws(ObjectError) -> Relocation {
        let sym = elf.symbols[e.symbol]
        let insn = programs[pi].instructions[idx]
        func fail(_ reason: String) -> ObjectError {
            .relocation(section: sectionName, offset: e.offset, reason: "program '\(programs[pi].name)': \(reason)")
        }
        let symName = sym.isSection ? (section(Int(sym.sectionIndex))?.name ?? "") : sym.name
        guard insn.isCall || insn.isLoadImm64 else {
            throw fail("instruction \(idx) (opcode 0x\(String(insn.opcode, radix: 16))) is neither a call nor ld_imm64")
        }
        if insn.isLoadImm64 && idx + 1 >= programs[pi].instructions.count {
            throw fail("ld_imm64 at instruction \(idx) has no second half")
        }
        // Extern: an undefined GLOBAL/WEAK NOTYPE symbol.
        if sym.isUndefined && sym.isGlobalOrWeak && sym.isNoType {
            guard let ext = externs.firstIndex(where: { $0.symbolIndex == e.symbol }) else {
                throw fail("extern relocation to '\(sym.name)' names no known extern")
            }
            return Relocation(instruction: idx, kind: insn.isCall ? .externCall(extern: ext) : .externLoad(extern: ext), symbol: sym.name)
        }
        if insn.isCall {
            guard insn.src == 1 else { throw fail("call to '\(symName)' is not a BPF_PSEUDO_CALL (src_reg \(insn.src))") }
            guard let textIndex, Int(sym.sectionIndex) == textIndex else {
                throw fail("call to '\(symName)' targets a section other than .text")
            }
            guard sym.value % 8 == 0 else { throw fail("call target '\(symName)' at \(sym.value) is misaligned") }
            guard sym.value < elf.sections[textIndex].size else {
                throw fail("call target '\(symName)' at \(sym.value) is outside .text")
            }
            let target = Int(sym.value / 8) + Int(insn.immediate) + 1
            return Relocation(instruction: idx, kind: .call(target: target), symbol: symName)
        }
        let shndx = Int(sym.sectionIndex)
        guard shndx != 0, shndx < Int(SHN_LORESERVE) else {
            throw fail("relocation against '\(symName)' in section \(shndx) (forgot to initialize a global variable?)")
        }
        guard shndx < elf.sections.count else {
            throw fail("relocation against '\(symName)' names section \(shndx), which does not exist")
        }
        // Symbol values index sections; anything beyond 32 bits cannot be a valid offset here.
        guard sym.value <= UInt64(UInt32.max) else {
            throw fail("symbol '\(symName)' has value \(sym.value), beyond any section")
        }
        // Address of a .text function (a callback for bpf_loop and friends).
        if let textIndex, shndx == textIndex,
           (sym.isLocal && sym.isSection) || (sym.binding == 1 && sym.isFunction) {
            guard sym.value % 8 == 0, insn.immediate % 8 == 0 else {
                throw fail("bad subprogram address relocation: offset \(sym.value) + \(insn.immediate)")
            }
            let target = Int((Int64(sym.value) + Int64(insn.immediate)) / 8)
            return Relocation(instruction: idx, kind: .subprogramAddress(target: target), symbol: symName)
        }
        let addend = Int64(insn.immediate) + Int64(sym.value)
        guard addend >= 0, addend <= Int64(UInt32.max) else { throw fail("data offset \(addend) out of range") }
        switch roles[shndx] {
        case .arena:
            guard let arenaMapIndex else { throw fail("arena data relocation but no ARENA map") }
            return Relocation(instruction: idx, kind: .arenaValue(map: arenaMapIndex, offset: UInt32(addend)), symbol: symName)
        case .jumpTables:
            return Relocation(instruction: idx, kind: .jumpTable(offset: UInt32(addend)), symbol: symName)
        case .maps:
            guard let m = maps.firstIndex(where: { if case .user(let off) = $0.role { return UInt64(off) == sym.value } else { return false } }) else {
                throw fail("bad map relocation against '\(symName)' at .maps offset \(sym.value)")
            }
            return Relocation(instruction: idx, kind: .mapFD(map: m), symbol: symName)
        case .data:
            guard let m = maps.firstIndex(where: { if case .globalData(let name, _) = $0.role { return name == elf.sections[shndx].name } else { return false } }) else {
                throw fail("data relocation against '\(symName)': no map for section \(elf.sections[shndx].name)")
            }
            return Relocation(instruction: idx, kind: .mapValue(map: m, offset: UInt32(addend)), symbol: symName)
        default:
            throw fail("relocation against '\(symName)' in section '\(elf.sections[shndx].name)', which holds no maps or data")
        }
    }
}

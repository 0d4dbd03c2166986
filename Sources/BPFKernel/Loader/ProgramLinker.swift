import BPFObject

/// A main program with every subprogram it uses appended and every relocation applied: what
/// `BPF_PROG_LOAD` receives. Mirrors libbpf's `bpf_object__reloc_code` + `bpf_object__relocate_data`
/// + `adjust_prog_btf_ext_info`.
struct LinkedProgram {
    var instructions: [BPFInstruction]
    /// `bpf_func_info` records (insn_off in instructions, type id), sorted.
    var funcInfo: [(UInt32, UInt32)]
    /// `bpf_line_info` records with insn_off in instructions, sorted.
    var lineInfo: [BTFExt.LineInfo]
    /// CO-RE records with insn_off in bytes of the final program, for the kernel to resolve.
    var coreRelocations: [BTFExt.CoreRelocation]

    var instructionBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(instructions.count * 8)
        for i in instructions {
            out.append(i.opcode)
            out.append(i.registers)
            out.appendLE(UInt16(bitPattern: i.offset))
            out.appendLE(UInt32(bitPattern: i.immediate))
        }
        return out
    }
}

/// Kernel-side facts the linker needs to patch instructions.
struct LinkContext {
    var mapFDs: [Int32]
    var externs: [ExternResolution]
    var kconfigMapFD: Int32?
    /// libbpf's `arena_data_off`: where the arena image starts inside the arena.
    var arenaDataOffset: UInt64
}

enum ProgramLinker {
    static let poisonedWeakKfunc: Int32 = 2_002_000_000

    static func link(_ mainIndex: Int, spec: ObjectSpec, context: LinkContext) throws(LoaderError) -> LinkedProgram {
        let main = spec.programs[mainIndex]
        var out = LinkedProgram(instructions: main.instructions, funcInfo: [], lineInfo: [], coreRelocations: [])
        // Start of each function inside the combined program.
        var placed: [Int: Int] = [mainIndex: 0]
        var order: [Int] = [mainIndex]
        let subprograms = spec.programs.indices.filter { spec.programs[$0].isSubprogram }

        func subprogram(atTextInstruction t: Int) -> Int? {
            subprograms.first { spec.programs[$0].sectionInstructionOffset == t }
        }

        // Breadth of appended functions grows while we scan: process each placed function once.
        var cursor = 0
        while cursor < order.count {
            let fi = order[cursor]
            cursor += 1
            let f = spec.programs[fi]
            guard let base = placed[fi] else { continue }
            let relocByInsn = Dictionary(f.relocations.map { ($0.instruction, $0) }, uniquingKeysWith: { a, _ in a })
            for j in f.instructions.indices {
                let insn = f.instructions[j]
                var target: Int?
                if let r = relocByInsn[j] {
                    switch r.kind {
                    case .call(let t), .subprogramAddress(let t): target = t
                    default: break
                    }
                } else if insn.isCall && insn.src == 1 {
                    // A call without a relocation stays inside the function's own section.
                    guard f.isSubprogram else {
                        throw .relocation(program: main.name, reason: "call at instruction \(j) of '\(f.name)' to code outside .text")
                    }
                    target = f.sectionInstructionOffset + j + Int(insn.immediate) + 1
                }
                guard let target else { continue }
                guard let callee = subprogram(atTextInstruction: target) else {
                    throw .relocation(program: main.name, reason: "'\(f.name)' instruction \(j): no .text subprogram starts at instruction \(target)")
                }
                if placed[callee] == nil {
                    placed[callee] = out.instructions.count
                    out.instructions.append(contentsOf: spec.programs[callee].instructions)
                    order.append(callee)
                }
                guard let calleeStart = placed[callee] else { continue }
                let at = base + j
                out.instructions[at].immediate = Int32(calleeStart - at - 1)
                if insn.isLoadImm64 { out.instructions[at].src = 4 }  // BPF_PSEUDO_FUNC
            }
        }

        // Data, map and extern relocations of every placed function.
        for fi in order {
            guard let base = placed[fi] else { continue }
            let f = spec.programs[fi]
            for r in f.relocations {
                try apply(r, at: base + r.instruction, in: &out.instructions, spec: spec, context: context, program: main.name)
            }
            for var c in f.coreRelocations {
                c.instructionOffset += UInt32(base * 8)
                out.coreRelocations.append(c)
            }
        }
        attachBTFExt(&out, spec: spec, order: order, placed: placed)
        return out
    }

    private static func apply(_ r: Relocation, at i: Int, in insns: inout [BPFInstruction], spec: ObjectSpec,
                              context: LinkContext, program: String) throws(LoaderError) {
        func mapFD(_ m: Int) throws(LoaderError) -> Int32 {
            guard m >= 0, m < context.mapFDs.count, context.mapFDs[m] >= 0 else {
                throw .relocation(program: program, reason: "map #\(m) was not created")
            }
            return context.mapFDs[m]
        }
        func needsSecondHalf() throws(LoaderError) {
            guard i + 1 < insns.count, insns[i].isLoadImm64 else {
                throw .relocation(program: program, reason: "instruction \(i) is not a ld_imm64")
            }
        }
        switch r.kind {
        case .call, .subprogramAddress:
            return
        case .mapFD(let m):
            try needsSecondHalf()
            insns[i].src = 1
            insns[i].immediate = try mapFD(m)
        case .mapValue(let m, let offset):
            try needsSecondHalf()
            insns[i].src = 2
            insns[i].immediate = try mapFD(m)
            insns[i + 1].immediate = Int32(bitPattern: offset)
        case .arenaValue(let m, let offset):
            try needsSecondHalf()
            insns[i].src = 2
            insns[i].immediate = try mapFD(m)
            insns[i + 1].immediate = Int32(truncatingIfNeeded: UInt64(offset) + context.arenaDataOffset)
        case .externCall(let e):
            guard e < context.externs.count else { throw .relocation(program: program, reason: "extern #\(e) unknown") }
            switch context.externs[e] {
            case .kfunc(let id, let fdArrayIndex, _):
                insns[i].src = 2  // BPF_PSEUDO_KFUNC_CALL
                insns[i].immediate = Int32(bitPattern: id)
                insns[i].offset = fdArrayIndex  // 0: vmlinux; else the module's fd_array slot
            case .unresolvedWeak:
                // libbpf's poison: the verifier only complains if the call is reachable.
                insns[i].src = 0
                insns[i].immediate = poisonedWeakKfunc + Int32(e)
                insns[i].offset = 0
            default:
                throw .relocation(program: program, reason: "call of extern '\(spec.externs[e].name)', which is not a function")
            }
        case .externLoad(let e):
            try needsSecondHalf()
            guard e < context.externs.count else { throw .relocation(program: program, reason: "extern #\(e) unknown") }
            switch context.externs[e] {
            case .kconfig:
                guard case .kconfig(let offset, _) = spec.externs[e].kind, let fd = context.kconfigMapFD else {
                    throw .relocation(program: program, reason: "kconfig extern without a .kconfig map")
                }
                insns[i].src = 2
                insns[i].immediate = fd
                insns[i + 1].immediate = Int32(bitPattern: offset)
            case .typedKsym(let id, let btfObjectFD), .kfunc(let id, _, let btfObjectFD):
                insns[i].src = 3  // BPF_PSEUDO_BTF_ID
                insns[i].immediate = Int32(bitPattern: id)
                insns[i + 1].immediate = btfObjectFD  // 0: vmlinux; else the module's BTF fd
            case .address(let addr):
                insns[i].src = 0
                insns[i].immediate = Int32(truncatingIfNeeded: addr)
                insns[i + 1].immediate = Int32(truncatingIfNeeded: addr >> 32)
            case .unresolvedWeak:
                insns[i].src = 0
                insns[i].immediate = 0
                insns[i + 1].immediate = 0
            }
        case .jumpTable:
            throw .relocation(program: program, reason: ".jumptables (instruction-array maps) are not supported yet")
        }
    }

    /// func_info/line_info for the combined program: each function's records, shifted to where it
    /// was placed. Without func_info for the main program, all of it is dropped (as libbpf does).
    private static func attachBTFExt(_ out: inout LinkedProgram, spec: ObjectSpec, order: [Int], placed: [Int: Int]) {
        guard let ext = spec.btfExt else { return }
        var funcs: [(UInt32, UInt32)] = []
        var lines: [BTFExt.LineInfo] = []
        for fi in order {
            guard let base = placed[fi] else { continue }
            let f = spec.programs[fi]
            let section = spec.elfSectionName(of: f)
            let lo = f.sectionInstructionOffset, hi = lo + f.instructions.count
            let fRecords = (ext.funcInfo[section] ?? []).filter { Int($0.instructionOffset / 8) >= lo && Int($0.instructionOffset / 8) < hi }
            if fRecords.isEmpty {
                if fi == order.first { return }
                continue
            }
            for r in fRecords { funcs.append((UInt32(Int(r.instructionOffset / 8) - lo + base), r.typeID)) }
            for var l in ext.lineInfo[section] ?? [] where Int(l.instructionOffset / 8) >= lo && Int(l.instructionOffset / 8) < hi {
                l.instructionOffset = UInt32(Int(l.instructionOffset / 8) - lo + base)
                lines.append(l)
            }
        }
        out.funcInfo = funcs.sorted { $0.0 < $1.0 }
        out.lineInfo = lines.sorted { $0.instructionOffset < $1.instructionOffset }
    }
}

extension ObjectSpec {
    /// The ELF section name a program came from (with its `?` if it had one).
    func elfSectionName(of p: ProgramSpec) -> String {
        p.isSubprogram ? ".text" : (p.autoload ? p.sectionName : "?" + p.sectionName)
    }
}

import CLibELF
import CELFShim

/// One section header plus its bytes, copied out of the file.
struct ELFSection: Sendable {
    let index: Int
    let name: String
    let type: UInt32
    let flags: UInt64
    /// `sh_size`: for NOBITS the size the section occupies in memory, for others the bytes held.
    let size: UInt64
    let link: UInt32
    let info: UInt32
    let entrySize: UInt64
    /// `sh_offset`: where the section's bytes start in the file (meaningless for NOBITS).
    let fileOffset: UInt64
    /// The section's bytes (empty for NOBITS).
    let data: [UInt8]

    var isExecutable: Bool { type == UInt32(SHT_PROGBITS) && flags & UInt64(SHF_EXECINSTR) != 0 }
    var isProgbits: Bool { type == UInt32(SHT_PROGBITS) }
    var isNobits: Bool { type == UInt32(SHT_NOBITS) }
}

struct ELFSymbol: Sendable {
    let index: Int
    let name: String
    let value: UInt64
    let size: UInt64
    let type: UInt8
    let binding: UInt8
    let visibility: UInt8
    let sectionIndex: UInt16

    var isFunction: Bool { type == UInt8(STT_FUNC) }
    var isSection: Bool { type == UInt8(STT_SECTION) }
    var isObject: Bool { type == UInt8(STT_OBJECT) }
    var isNoType: Bool { type == UInt8(STT_NOTYPE) }
    var isGlobalOrWeak: Bool { binding == UInt8(STB_GLOBAL) || binding == UInt8(STB_WEAK) }
    var isWeak: Bool { binding == UInt8(STB_WEAK) }
    var isLocal: Bool { binding == UInt8(STB_LOCAL) }
    var isHidden: Bool { visibility == UInt8(STV_HIDDEN) || visibility == UInt8(STV_INTERNAL) }
    var isUndefined: Bool { sectionIndex == UInt16(SHN_UNDEF) }
}

/// The parts of an ELF relocatable object that a BPF loader reads, copied out through libelf.
///
/// libelf is used for the container (headers, section table, string tables, symbols); the bytes
/// are copied into Swift arrays and the `Elf *` handle is released before this returns, as libbpf
/// releases its ELF handle at the end of open.
struct ELFFile: Sendable {
    /// DWARF sections and their relocations: the loader never reads them (libbpf neither), and
    /// with `-g` they are most of an object's bytes, so their bytes are not copied; the section
    /// stays in the table with empty data.
    static func isDebugInfo(_ name: String) -> Bool {
        // Decided on the bytes: the prefixes are ASCII, so String.hasPrefix can only hold where
        // the bytes start so. For an all-ASCII name the bytes are the answer; otherwise
        // String.hasPrefix (which compares characters: a combining mark after the prefix fails
        // it) confirms.
        var name = name
        let (bytesMatch, ascii) = name.withUTF8 { n in
            (startsWith(n, ".debug_") || startsWith(n, ".rel.debug_") || startsWith(n, ".rela.debug_"),
             n.allSatisfy { $0 < 0x80 })
        }
        guard bytesMatch else { return false }
        if ascii { return true }
        return name.hasPrefix(".debug_") || name.hasPrefix(".rel.debug_") || name.hasPrefix(".rela.debug_")
    }

    private static func startsWith(_ n: UnsafeBufferPointer<UInt8>, _ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard n.count >= count else { return false }
        let p = prefix.utf8Start
        for i in 0..<count where n[i] != p[i] { return false }
        return true
    }

    let sections: [ELFSection]
    let symbols: [ELFSymbol]
    let symbolTableIndex: Int

    /// A data section larger than this is refused instead of being allocated. The kernel caps an
    /// ARRAY map's value at KMALLOC_MAX_SIZE (a few MiB), so no loadable .bss comes near it. It
    /// bounds all NOBITS sections together, as each becomes a zeroed image: forty 60 MiB `.bss`
    /// headers cost 2.5 KB of file.
    static let maxNobitsSize: UInt64 = 64 << 20

    init(bytes: [UInt8]) throws(ObjectError) {
        guard bytes.count >= 64 else { throw .notELF(reason: "file is \(bytes.count) bytes, shorter than an ELF64 header") }
        guard bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else {
            throw .notELF(reason: "missing the \\x7fELF magic")
        }
        guard bytes[4] == UInt8(ELFCLASS64) else { throw .unsupportedELF(reason: "not ELFCLASS64 (class \(bytes[4]))") }
        guard bytes[5] == UInt8(ELFDATA2LSB) else {
            throw .unsupportedELF(reason: bytes[5] == UInt8(ELFDATA2MSB)
                ? "big-endian object; this host is little-endian" : "unknown byte order \(bytes[5])")
        }
        elf_version(UInt32(EV_CURRENT))
        // elf_memory does not copy and wants a mutable pointer: keep a private copy alive and
        // unmoved for as long as the Elf handle lives.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        defer { buffer.deallocate() }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        guard let base = buffer.baseAddress?.assumingMemoryBound(to: CChar.self),
              let elf = elf_memory(base, bytes.count) else {
            throw .notELF(reason: ELFFile.libelfMessage())
        }
        defer { elf_end(elf) }
        let parsed = try ELFFile.read(elf, fileSize: UInt64(bytes.count))
        sections = parsed.0
        symbols = parsed.1
        symbolTableIndex = parsed.2
    }

    static func libelfMessage() -> String {
        guard let msg = elf_errmsg(-1) else { return "libelf error" }
        return String(cString: msg)
    }

    private static func read(_ elf: OpaquePointer, fileSize: UInt64) throws(ObjectError) -> ([ELFSection], [ELFSymbol], Int) {
        guard elf_kind(elf) == ELF_K_ELF else { throw .notELF(reason: "libelf does not see an ELF file") }
        var ehdr = GElf_Ehdr()
        guard gelf_getehdr(elf, &ehdr) != nil else { throw .malformedELF(reason: "bad ELF header: \(libelfMessage())") }
        guard ehdr.e_type == UInt16(ET_REL) else {
            throw .unsupportedELF(reason: "not a relocatable object (e_type \(ehdr.e_type), expected ET_REL)")
        }
        guard ehdr.e_machine == 0 || ehdr.e_machine == UInt16(EM_BPF) else {
            throw .unsupportedELF(reason: "not a BPF object (e_machine \(ehdr.e_machine), expected EM_BPF 247)")
        }
        var shstrndx = 0
        guard elf_getshdrstrndx(elf, &shstrndx) == 0 else {
            throw .malformedELF(reason: "bad section-name string table index: \(libelfMessage())")
        }
        var sectionCount = 0
        guard elf_getshdrnum(elf, &sectionCount) == 0 else {
            throw .malformedELF(reason: "bad section count: \(libelfMessage())")
        }
        var sections: [ELFSection] = []
        sections.reserveCapacity(sectionCount)
        sections.append(ELFSection(index: 0, name: "", type: 0, flags: 0, size: 0, link: 0, info: 0, entrySize: 0,
                                   fileOffset: 0, data: []))
        var symtab: (index: Int, link: Int, entsize: UInt64)?
        var nobitsTotal: UInt64 = 0
        var scn = elf_nextscn(elf, nil)
        while let s = scn {
            let index = elf_ndxscn(s)
            var shdr = GElf_Shdr()
            guard gelf_getshdr(s, &shdr) != nil else {
                throw .malformedELF(reason: "section \(index): bad section header: \(libelfMessage())")
            }
            guard let namePtr = elf_strptr(elf, shstrndx, Int(shdr.sh_name)) else {
                throw .malformedELF(reason: "section \(index): bad section name offset \(shdr.sh_name)")
            }
            let name = String(cString: namePtr)
            var data: [UInt8] = []
            if shdr.sh_type == UInt32(SHT_NOBITS) {
                if shdr.sh_size > maxNobitsSize - nobitsTotal {
                    throw .sectionTooLarge(section: name, size: shdr.sh_size, limit: maxNobitsSize - nobitsTotal)
                }
                nobitsTotal += shdr.sh_size
            } else if shdr.sh_type != UInt32(SHT_NULL) && !Self.isDebugInfo(name) {
                // A section's bytes must lie inside the file; libelf checks this too, but the check
                // here gives a message that names the section.
                let (end, overflow) = shdr.sh_offset.addingReportingOverflow(shdr.sh_size)
                guard !overflow, end <= fileSize else {
                    throw .sectionTooLarge(section: name, size: shdr.sh_size, limit: fileSize)
                }
                if shdr.sh_size > 0 {
                    guard let d = elf_getdata(s, nil) else {
                        throw .malformedELF(reason: "section '\(name)': cannot read data: \(libelfMessage())")
                    }
                    let size = d.pointee.d_size
                    if size > 0 {
                        guard let buf = d.pointee.d_buf else {
                            throw .malformedELF(reason: "section '\(name)': no data buffer for \(size) bytes")
                        }
                        data = Array(UnsafeRawBufferPointer(start: buf, count: size))
                    }
                }
            }
            if shdr.sh_type == UInt32(SHT_SYMTAB) {
                if symtab != nil { throw .multipleSymbolTables }
                symtab = (index, Int(shdr.sh_link), shdr.sh_entsize)
            }
            sections.append(ELFSection(
                index: index, name: name, type: shdr.sh_type, flags: shdr.sh_flags,
                size: shdr.sh_type == UInt32(SHT_NOBITS) ? shdr.sh_size : UInt64(data.count),
                link: shdr.sh_link, info: shdr.sh_info, entrySize: shdr.sh_entsize,
                fileOffset: shdr.sh_offset, data: data))
            scn = elf_nextscn(elf, s)
        }
        guard sections.count == max(sectionCount, 1) else {
            throw .malformedELF(reason: "section table lists \(sectionCount) sections, \(sections.count) were read")
        }
        guard let symtab else { throw .noSymbolTable }
        let symbols = try readSymbols(sections: sections, symtab: symtab.index, strtab: symtab.link)
        return (sections, symbols, symtab.index)
    }

    /// Symbols are decoded from the copied bytes (Elf64_Sym, 24 bytes each) rather than through
    /// gelf_getsym, so every field is bounds-checked here.
    private static func readSymbols(sections: [ELFSection], symtab: Int, strtab: Int) throws(ObjectError) -> [ELFSymbol] {
        guard strtab > 0, strtab < sections.count, sections[strtab].type == UInt32(SHT_STRTAB) else {
            throw .malformedELF(reason: "symbol table's string table index \(strtab) is not a string table")
        }
        let data = sections[symtab].data
        guard data.count % 24 == 0 else {
            throw .malformedELF(reason: "symbol table size \(data.count) is not a multiple of 24")
        }
        let strings = ByteReader(sections[strtab].data)
        let r = ByteReader(data)
        var symbols: [ELFSymbol] = []
        symbols.reserveCapacity(data.count / 24)
        do {
            for i in 0..<(data.count / 24) {
                let o = i * 24
                let nameOff = try r.u32(o)
                let info = try r.u8(o + 4)
                let other = try r.u8(o + 5)
                let shndx = try r.u16(o + 6)
                guard let name = strings.cString(at: Int(nameOff)) else {
                    throw ObjectError.malformedELF(reason: "symbol \(i): bad name offset \(nameOff)")
                }
                symbols.append(ELFSymbol(
                    index: i, name: name, value: try r.u64(o + 8), size: try r.u64(o + 16),
                    type: celf_st_type(info), binding: celf_st_bind(info),
                    visibility: celf_st_visibility(other), sectionIndex: shndx))
            }
        } catch let e as ObjectError {
            throw e
        } catch {
            throw .malformedELF(reason: "symbol table truncated")
        }
        return symbols
    }
}

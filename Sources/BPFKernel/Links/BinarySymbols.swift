import CELFShim
import CLibELF
import Glibc

/// Where a function of a user-space ELF binary or library is in the file, for uprobes: the
/// kernel's uprobe takes an inode and a file offset, not a symbol.
///
/// As libbpf's `elf_find_func_offset`: `.symtab` first, `.dynsym` only when `.symtab` has no
/// match (stripped binaries); STT_FUNC and STT_GNU_IFUNC symbols with an address; a name matches
/// exactly, or up to a symbol version (`name@VER`, `name@@VER`) unless the name asked for has
/// one; a global symbol wins over weak ones, two different global ones are ambiguous. The
/// symbol's address becomes a file offset through the PT_LOAD segment that contains it.
enum BinarySymbols {
    /// libelf reads the file through an mmap of its own; these are the parts we keep.
    private struct Match {
        var address: UInt64
        var weak: Bool
    }

    static func fileOffset(of function: String, in path: String) throws(LinkError) -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw .unknownBinary(path: path, reason: "cannot open it: \(ErrnoName.describe(e))")
        }
        defer { close(fd) }
        elf_version(UInt32(EV_CURRENT))
        guard let elf = elf_begin(fd, ELF_C_READ_MMAP, nil) else {
            throw .unknownBinary(path: path, reason: "libelf cannot read it: \(String(cString: elf_errmsg(-1)))")
        }
        defer { elf_end(elf) }
        var header = GElf_Ehdr()
        guard elf_kind(elf) == ELF_K_ELF, gelf_getehdr(elf, &header) != nil else {
            throw .unknownBinary(path: path, reason: "not an ELF file")
        }
        guard header.e_type == UInt16(ET_EXEC) || header.e_type == UInt16(ET_DYN) else {
            throw .unknownBinary(path: path, reason: "ELF type \(header.e_type) is neither an executable nor a shared object")
        }
        var found = try lookup(function, in: elf, tableType: UInt32(SHT_SYMTAB), path: path)
        if found == nil { found = try lookup(function, in: elf, tableType: UInt32(SHT_DYNSYM), path: path) }
        guard let found else {
            throw .unknownFunction(name: function, reason: "no function symbol of that name in \(path) (.symtab or .dynsym)")
        }
        guard let offset = fileOffset(ofAddress: found.address, in: elf) else {
            throw .unknownFunction(name: function, reason: "its address 0x\(String(found.address, radix: 16)) is in no PT_LOAD segment of \(path)")
        }
        return offset
    }

    private static func lookup(_ function: String, in elf: OpaquePointer, tableType: UInt32,
                               path: String) throws(LinkError) -> Match? {
        let qualified = function.contains("@")
        let wanted = Array(function.utf8)
        var best: Match?
        var section: OpaquePointer?
        while let scn = elf_nextscn(elf, section) {
            section = scn
            var shdr = GElf_Shdr()
            guard gelf_getshdr(scn, &shdr) != nil, shdr.sh_type == tableType, shdr.sh_entsize > 0,
                  let data = elf_getdata(scn, nil) else { continue }
            let count = Int(shdr.sh_size / shdr.sh_entsize)
            for i in 0..<count {
                var sym = GElf_Sym()
                guard gelf_getsym(data, Int32(i), &sym) != nil else { break }
                let type = celf_st_type(sym.st_info)
                guard type == UInt8(STT_FUNC) || type == UInt8(STT_GNU_IFUNC), sym.st_value != 0,
                      let name = elf_strptr(elf, Int(shdr.sh_link), Int(sym.st_name)),
                      matches(name, wanted, qualified: qualified) else { continue }
                let weak = celf_st_bind(sym.st_info) == UInt8(STB_WEAK)
                let candidate = Match(address: sym.st_value, weak: weak)
                guard let current = best else { best = candidate; continue }
                if current.address == candidate.address { continue }
                switch (current.weak, candidate.weak) {
                case (true, false): best = candidate
                case (false, false):
                    throw .unknownFunction(name: function, reason: "ambiguous in \(path): global symbols at 0x\(String(current.address, radix: 16)) and 0x\(String(candidate.address, radix: 16))")
                default: continue
                }
            }
        }
        return best
    }

    /// `name` equals `wanted`, or (unless the request names a version) continues with '@'.
    private static func matches(_ name: UnsafePointer<CChar>, _ wanted: [UInt8], qualified: Bool) -> Bool {
        var i = 0
        while i < wanted.count {
            guard UInt8(bitPattern: name[i]) == wanted[i] else { return false }
            i += 1
        }
        let next = name[i]
        return next == 0 || (!qualified && next == CChar(UInt8(ascii: "@")))
    }

    /// The file offset of a virtual address: through the loadable segment that maps it.
    private static func fileOffset(ofAddress address: UInt64, in elf: OpaquePointer) -> UInt64? {
        var count = 0
        guard elf_getphdrnum(elf, &count) == 0 else { return nil }
        for i in 0..<count {
            var phdr = GElf_Phdr()
            guard gelf_getphdr(elf, Int32(i), &phdr) != nil, phdr.p_type == UInt32(PT_LOAD),
                  address >= phdr.p_vaddr, address - phdr.p_vaddr < phdr.p_memsz else { continue }
            return address - phdr.p_vaddr + phdr.p_offset
        }
        return nil
    }

    /// A binary named without a '/' is looked up as libbpf's `resolve_full_path` does: a shared
    /// library (".so" in the name) in the library directories, anything else on PATH. The result
    /// is canonical (symlinks resolved), as the kernel keys uprobes by inode anyway.
    static func resolve(_ name: String) throws(LinkError) -> String {
        var candidates: [String] = []
        if name.contains("/") {
            candidates = [name]
        } else if name.contains(".so") {
            let env = getenv("LD_LIBRARY_PATH").map { String(cString: $0) } ?? ""
            let dirs = env.split(separator: ":").map(String.init)
                + ["/lib64", "/usr/lib64", "/lib/\(multiarch)", "/usr/lib/\(multiarch)", "/lib", "/usr/lib"]
            candidates = dirs.map { "\($0)/\(name)" }
        } else {
            let env = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
            candidates = env.split(separator: ":").map { "\($0)/\(name)" }
        }
        for path in candidates where access(path, R_OK) == 0 {
            guard let real = realpath(path, nil) else { continue }
            defer { free(real) }
            return String(cString: real)
        }
        let e = errno
        throw .unknownBinary(path: name, reason: name.contains("/")
            ? "cannot read it: \(ErrnoName.describe(e))" : "not found on PATH or in the library directories")
    }

    private static var multiarch: String {
        #if arch(x86_64)
        "x86_64-linux-gnu"
        #elseif arch(arm64)
        "aarch64-linux-gnu"
        #else
        "unknown-linux-gnu"
        #endif
    }
}

import CLibELF

/// Options that change how an object is read. Defaults match libbpf's `bpf_object__open`.
public struct ParseOptions: Sendable {
    /// Host page size, used for arena sizing and ring-buffer rounding.
    public var pageSize: UInt64 = 4096
    /// libbpf's default is strict: an unknown field in a `.maps` definition is an error.
    public var strictMaps: Bool = true
    public init() {}
}

extension ObjectSpec {
    /// Parses a BPF ELF object. `name` is the object name libbpf would use (see
    /// `ObjectSpec.objectName(forPath:)`).
    public init(elf bytes: [UInt8], name: String, options: ParseOptions = ParseOptions()) throws(ObjectError) {
        var parser = try ObjectParser(bytes: bytes, name: name, options: options)
        self = try parser.parse()
    }

    /// libbpf's rule: the file's basename up to its first dot.
    public static func objectName(forPath path: String) -> String {
        let base = path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
        return String(base.prefix { $0 != "." })
    }
}

/// How libbpf's `elf_collect` classified a section.
enum SectionRole: Equatable {
    case program
    case text
    case maps
    case data(DataSectionKind)
    case arena
    case jumpTables
    case other
}

struct ObjectParser {
    let elf: ELFFile
    let name: String
    let options: ParseOptions

    var roles: [SectionRole]
    var license = ""
    var kernelVersion: UInt32?
    var btf: BTF?
    var btfError: BTFError?
    var btfExt: BTFExt?
    /// Every DATASEC's id, in id order, noted by `fixupDatasecs` (which looks at every type);
    /// nothing later changes which types are DATASECs or their names.
    var datasecList: [UInt32] = []
    var warnings: [String] = []
    var textIndex: Int?
    var mapsIndex: Int?
    var arenaIndex: Int?
    /// REL sections by the section they apply to.
    var relocationSections: [(target: Int, rel: Int)] = []

    var maps: [MapSpec] = []
    var externs: [ExternSpec] = []
    var programs: [ProgramSpec] = []
    var dataSections: [DataSectionSpec] = []
    var arenaMapIndex: Int?
    /// For each BTF-defined map (the first entries of `maps`), in the same order.
    var userMapLayouts: [UserMapLayout] = []
    /// Size of the `.kconfig` area once externs are laid out (nil: no kconfig externs).
    var kconfigImageSize: Int?

    init(bytes: [UInt8], name: String, options: ParseOptions) throws(ObjectError) {
        self.elf = try ELFFile(bytes: bytes)
        self.name = name
        self.options = options
        self.roles = Array(repeating: .other, count: elf.sections.count)
    }

    mutating func parse() throws(ObjectError) -> ObjectSpec {
        try collectSections()
        try collectExterns()
        try fixupDatasecs()
        try collectMaps()
        try collectPrograms()
        try collectRelocations()
        let variables = try collectVariables()
        return ObjectSpec(
            name: name, license: license, kernelVersion: kernelVersion, maps: maps, programs: programs,
            dataSections: dataSections, variables: variables, externs: externs, btf: btf, btfExt: btfExt,
            arenaMapIndex: arenaMapIndex, warnings: warnings)
    }

    /// The part of libbpf's `elf_collect` that sorts sections into roles.
    mutating func collectSections() throws(ObjectError) {
        var btfData: [UInt8]?
        var btfExtData: [UInt8]?
        for s in elf.sections.dropFirst() {
            switch s.name {
            case "license":
                guard !s.data.isEmpty else { throw .badLicense(reason: "section is empty") }
                // strlcpy into 64 bytes: at most 63 characters, up to the first NUL.
                let text = s.data.prefix { $0 != 0 }.prefix(63)
                license = String(decoding: text, as: UTF8.self)
                continue
            case "version":
                guard s.data.count == 4 else { throw .badVersion(size: s.data.count) }
                kernelVersion = UInt32(s.data[0]) | UInt32(s.data[1]) << 8 | UInt32(s.data[2]) << 16 | UInt32(s.data[3]) << 24
                continue
            case "maps":
                throw .legacyMapsSection
            case ".BTF":
                guard s.isProgbits else { throw .malformedELF(reason: ".BTF is not PROGBITS") }
                btfData = s.data
                continue
            case ".BTF.ext":
                guard s.isProgbits else { throw .malformedELF(reason: ".BTF.ext is not PROGBITS") }
                btfExtData = s.data
                continue
            default: break
            }
            if s.type == UInt32(SHT_REL) {
                guard s.entrySize == 16 || s.data.isEmpty else {
                    throw .malformedELF(reason: "relocation section '\(s.name)' has entry size \(s.entrySize), expected 16")
                }
                guard Int(s.info) > 0, Int(s.info) < elf.sections.count else {
                    throw .malformedELF(reason: "relocation section '\(s.name)' applies to section \(s.info), which does not exist")
                }
                relocationSections.append((Int(s.info), s.index))
                continue
            }
            if s.name == ".maps", s.isProgbits {
                roles[s.index] = .maps
                mapsIndex = s.index
            } else if s.name == ".addr_space.1" || s.name == ".arena.1" {
                // libbpf takes PROGBITS only; an all-zero arena section the compiler made NOBITS is
                // taken too (its image is zeros) rather than left dangling.
                guard (s.isProgbits && !s.isExecutable && !s.data.isEmpty) || (s.isNobits && s.size > 0) else { continue }
                if let prev = arenaIndex {
                    throw .malformedELF(reason: "two arena data sections: '\(elf.sections[prev].name)' and '\(s.name)'")
                }
                roles[s.index] = .arena
                arenaIndex = s.index
            } else if s.isExecutable {
                guard s.size > 0 else { continue }
                if s.name == ".text" {
                    roles[s.index] = .text
                    textIndex = s.index
                } else {
                    roles[s.index] = .program
                }
            } else if s.isProgbits, !s.data.isEmpty, s.name == ".data" || s.name.hasPrefix(".data.") {
                roles[s.index] = .data(.data)
            } else if s.isProgbits, !s.data.isEmpty, s.name == ".rodata" || s.name.hasPrefix(".rodata.") {
                roles[s.index] = .data(.rodata)
            } else if s.isNobits, s.size > 0, s.name == ".bss" || s.name.hasPrefix(".bss.") {
                roles[s.index] = .data(.bss)
            } else if s.name == ".jumptables" {
                roles[s.index] = .jumpTables
            }
        }
        if let btfData {
            do {
                btf = try BTF(parsing: btfData)
            } catch {
                btfError = error
                warnings.append("ignoring corrupt .BTF: \(error)")
            }
        }
        if let btfExtData, let btf {
            do {
                btfExt = try BTFExt(parsing: btfExtData, btf: btf)
            } catch {
                // libbpf only warns about a bad .BTF.ext: programs then load without func/line info.
                warnings.append("ignoring corrupt .BTF.ext: \(error)")
            }
        }
    }

    /// `btf.find(named: name, kind: .dataSection)` over the DATASECs only (`datasecList`, filled by
    /// `fixupDatasecs`): each data section, `.maps` and `.kconfig` is looked up two or three
    /// times, and `find` reads the kind of every type each time.
    func datasecID(named name: String, in btf: BTF) -> UInt32? {
        let target = Array(name.utf8)
        for id in datasecList where Int(id) < btf.types.count && btf.stringEquals(btf.types[Int(id)].nameOffset, target) {
            return id
        }
        return nil
    }

    /// BTF is only required for `.maps`, externs and struct_ops, as in libbpf.
    func requireBTF(_ why: String) throws(ObjectError) -> BTF {
        guard let btf else {
            if let btfError { throw .btfRequired(reason: "\(why); .BTF: \(btfError)") }
            throw .btfRequired(reason: "\(why), but the object has no .BTF section")
        }
        return btf
    }

    func section(_ index: Int) -> ELFSection? {
        index > 0 && index < elf.sections.count ? elf.sections[index] : nil
    }

    func sectionIndex(named name: String) -> Int? {
        elf.sections.first { $0.name == name && $0.index != 0 }?.index
    }
}

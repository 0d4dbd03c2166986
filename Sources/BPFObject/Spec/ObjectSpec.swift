/// Everything a BPF ELF object says, as libbpf's `bpf_object__open` would understand it: a value
/// that can be copied, compared and edited (patching edits `dataSections[i].image`). No kernel
/// state lives here.
public struct ObjectSpec: Sendable, Equatable {
    /// libbpf's object name: the file's basename up to its first dot.
    public var name: String
    /// Contents of the `license` section ("" when absent).
    public var license: String
    /// Contents of the `version` section, when present.
    public var kernelVersion: UInt32?
    /// Maps in libbpf's order: BTF `.maps` maps by offset, then one per global-data section in
    /// section order, then `.kconfig`.
    public var maps: [MapSpec]
    /// Entry programs and `.text` subprograms, ordered by (section index, offset).
    public var programs: [ProgramSpec]
    /// Global-data sections and the arena section, each with its initial image.
    public var dataSections: [DataSectionSpec]
    /// Every VAR of every data and arena DATASEC.
    public var variables: [VariableSpec]
    public var externs: [ExternSpec]
    /// The object's BTF after libbpf's DATASEC and extern fixups (what would be uploaded).
    public var btf: BTF?
    public var btfExt: BTFExt?
    /// Index into `maps` of the single ARENA map, if any.
    public var arenaMapIndex: Int?
    /// Non-fatal findings (e.g. a corrupt `.BTF.ext` that libbpf would only warn about).
    public var warnings: [String]

    public var entryPrograms: [ProgramSpec] { programs.filter { !$0.isSubprogram } }

    public func map(named name: String) -> MapSpec? {
        maps.first { $0.name == name || $0.realName == name }
    }

    public func program(named name: String) -> ProgramSpec? {
        programs.first { $0.name == name }
    }

    public func variable(named name: String) -> VariableSpec? {
        variables.first { $0.name == name }
    }

    public func dataSection(named name: String) -> DataSectionSpec? {
        dataSections.first { $0.name == name }
    }
}

public enum DataSectionKind: String, Sendable, Equatable {
    case data, rodata, bss, arena, kconfig
}

/// One global-data section (or the arena section) and its initial image.
public struct DataSectionSpec: Sendable, Equatable {
    /// ELF section name (`.data`, `.rodata.cfg`, `.addr_space.1`, `.kconfig` …).
    public var name: String
    public var kind: DataSectionKind
    /// ELF section index (0 for `.kconfig`, which has no ELF section).
    public var sectionIndex: Int
    /// The map that holds this section in the kernel (the ARENA map for arena data).
    public var mapIndex: Int
    /// Initial bytes: the section's bytes, zeros for `.bss`, the laid-out `.kconfig` area.
    public var image: [UInt8]
    /// Where `image` lies in the ELF file when it is the section's bytes verbatim (nil for
    /// NOBITS sections and `.kconfig`, whose images the ELF does not hold). A store can keep the
    /// reference instead of a second copy of the bytes.
    public var fileOffset: Int?

    public init(name: String, kind: DataSectionKind, sectionIndex: Int, mapIndex: Int, image: [UInt8],
                fileOffset: Int? = nil) {
        self.name = name
        self.kind = kind
        self.sectionIndex = sectionIndex
        self.mapIndex = mapIndex
        self.image = image
        self.fileOffset = fileOffset
    }
}

public struct VariableSpec: Sendable, Equatable {
    public var name: String
    /// ELF section name holding it.
    public var section: String
    public var offset: UInt32
    public var size: UInt32
    /// BTF id of the variable's type (not of the VAR).
    public var btfTypeID: UInt32
    /// C spelling of the type.
    public var typeName: String
    /// File-local (`static`) or hidden; libbpf's skeleton omits these.
    public var isStatic: Bool
    public var sectionKind: DataSectionKind
}

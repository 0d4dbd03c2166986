/// One BPF instruction, 8 bytes as in `struct bpf_insn`.
public struct BPFInstruction: Sendable, Equatable {
    public var opcode: UInt8
    /// dst in the low nibble, src in the high nibble.
    public var registers: UInt8
    public var offset: Int16
    public var immediate: Int32

    public init(opcode: UInt8, dst: UInt8 = 0, src: UInt8 = 0, offset: Int16 = 0, immediate: Int32 = 0) {
        self.opcode = opcode
        self.registers = (src & 0xf) << 4 | (dst & 0xf)
        self.offset = offset
        self.immediate = immediate
    }

    public var dst: UInt8 { registers & 0xf }
    public var src: UInt8 {
        get { registers >> 4 }
        set { registers = (newValue & 0xf) << 4 | (registers & 0xf) }
    }

    public static let call: UInt8 = 0x85
    public static let loadImm64: UInt8 = 0x18

    public var isCall: Bool { opcode == BPFInstruction.call }
    public var isLoadImm64: Bool { opcode == BPFInstruction.loadImm64 }
}

public struct ProgramSpec: Sendable, Equatable {
    /// Function symbol name.
    public var name: String
    /// SEC() name without a leading `?`.
    public var sectionName: String
    public var sectionIndex: Int
    /// Index of the first instruction within its section.
    public var sectionInstructionOffset: Int
    /// The function's own instructions (subprograms are appended only at load).
    public var instructions: [BPFInstruction]
    public var type: BPFProgramType
    public var expectedAttachType: BPFAttachType
    /// Attach type to show people (nil where libbpf's section definition has none).
    public var shownAttachType: BPFAttachType?
    /// `BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS` as implied by the section name.
    public var flags: UInt32
    /// For BTF-attached kinds (fentry, iter, lsm, tp_btf …): the text after the first `/`.
    public var attachTarget: String?
    public var needsAttachBTF: Bool
    /// False for `?`-prefixed sections.
    public var autoload: Bool
    /// True for functions in `.text`.
    public var isSubprogram: Bool
    /// Global subprograms are verified on their own; static ones inline-checked with the caller.
    public var isGlobalFunction: Bool
    /// No section definition matched; loading it fails as in libbpf.
    public var hasKnownSection: Bool
    public var relocations: [Relocation]
    /// CO-RE records of this function, offsets relative to its first instruction (in bytes).
    public var coreRelocations: [BTFExt.CoreRelocation]
}

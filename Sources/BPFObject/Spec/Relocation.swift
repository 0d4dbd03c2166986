/// A relocation recorded against one instruction of a program, classified as libbpf's
/// `record_reloc` classifies it.
public struct Relocation: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// ld_imm64 of a `.maps` map → `PSEUDO_MAP_FD`.
        case mapFD(map: Int)
        /// ld_imm64 into a global-data map → `PSEUDO_MAP_VALUE`, `offset` = addend + symbol value.
        case mapValue(map: Int, offset: UInt32)
        /// ld_imm64 into arena data; the loader adds libbpf's `arena_data_off` to `offset`.
        case arenaValue(map: Int, offset: UInt32)
        /// bpf-to-bpf call; `target` is the callee's instruction index within `.text`.
        case call(target: Int)
        /// ld_imm64 of a `.text` function's address (callbacks) → `PSEUDO_FUNC`.
        case subprogramAddress(target: Int)
        /// Call of an extern (kfunc); index into `ObjectSpec.externs`.
        case externCall(extern: Int)
        /// ld_imm64 of an extern (ksym variable or `.kconfig` value).
        case externLoad(extern: Int)
        /// ld_imm64 of a `.jumptables` entry (instruction-array maps).
        case jumpTable(offset: UInt32)
    }

    /// Instruction index relative to the program's first instruction.
    public var instruction: Int
    public var kind: Kind
    /// Name of the symbol the relocation names (the section name for section symbols).
    public var symbol: String
}

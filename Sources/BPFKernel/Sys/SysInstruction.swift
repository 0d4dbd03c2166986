/// The few eBPF instruction encodings the probes (and tests) hand-assemble, as 64-bit words
/// `code | dst<<8 | src<<12 | off<<16 | imm<<32` (`struct bpf_insn` on a little-endian host).
enum SysInstruction {
    static func encode(code: UInt8, dst: UInt8 = 0, src: UInt8 = 0, off: Int16 = 0, imm: Int32 = 0) -> UInt64 {
        UInt64(code)
            | UInt64(dst & 0xF) << 8
            | UInt64(src & 0xF) << 12
            | UInt64(UInt16(bitPattern: off)) << 16
            | UInt64(UInt32(bitPattern: imm)) << 32
    }

    /// `dst = imm` (BPF_ALU64 | BPF_MOV | BPF_K).
    static func mov64(dst: UInt8, imm: Int32) -> UInt64 {
        encode(code: 0xB7, dst: dst, imm: imm)
    }

    /// `dst = src` (BPF_ALU64 | BPF_MOV | BPF_X).
    static func mov64(dst: UInt8, src: UInt8) -> UInt64 {
        encode(code: 0xBF, dst: dst, src: src)
    }

    /// BPF_JMP | BPF_EXIT.
    static func exit() -> UInt64 {
        encode(code: 0x95)
    }

    /// ld_imm64 of the address `offset` bytes into value 0 of the map `mapFD` (two slots):
    /// src_reg PSEUDO_MAP_VALUE, first imm the fd, second imm the offset.
    static func loadMapValue(dst: UInt8, mapFD: Int32, offset: Int32) -> [UInt64] {
        [
            encode(code: 0x18, dst: dst, src: BPFConstants.PseudoLoad.mapValue, imm: mapFD),
            encode(code: 0x00, imm: offset),
        ]
    }

    /// ld_imm64 of the map `mapFD` itself (src_reg PSEUDO_MAP_FD).
    static func loadMapFD(dst: UInt8, mapFD: Int32) -> [UInt64] {
        [
            encode(code: 0x18, dst: dst, src: BPFConstants.PseudoLoad.mapFD, imm: mapFD),
            encode(code: 0x00),
        ]
    }
}

/// Raw uapi values this layer and its callers need, including those Debian 12's Linux 6.1
/// `<linux/bpf.h>` lacks. `BPFObject` owns the typed `BPFMapType`/`BPFProgramType`; this layer
/// speaks raw `UInt32` so the two modules do not clash.
public enum BPFConstants {
    /// `BPF_OBJ_NAME_LEN`: map and program names are at most 15 bytes plus NUL.
    public static let objectNameLength = 16

    /// `enum bpf_map_type` values used here and in tests.
    public enum MapType {
        public static let hash: UInt32 = 1
        public static let array: UInt32 = 2
        public static let progArray: UInt32 = 3
        public static let percpuArray: UInt32 = 6
        public static let arrayOfMaps: UInt32 = 12
        public static let hashOfMaps: UInt32 = 13
        public static let ringbuf: UInt32 = 27
        /// `BPF_MAP_TYPE_ARENA`, new in 6.9.
        public static let arena: UInt32 = 33
    }

    /// `enum bpf_prog_type` values used here and in tests.
    public enum ProgramType {
        public static let socketFilter: UInt32 = 1
        public static let kprobe: UInt32 = 2
        public static let schedCls: UInt32 = 3
        public static let xdp: UInt32 = 6
        public static let tracing: UInt32 = 26
        public static let syscall: UInt32 = 31
    }

    /// `BPF_MAP_CREATE` `map_flags`.
    public enum MapFlag {
        public static let noPrealloc: UInt32 = 1 << 0
        public static let numaNode: UInt32 = 1 << 2
        public static let rdonly: UInt32 = 1 << 3
        public static let wronly: UInt32 = 1 << 4
        /// Programs may only read: with a frozen map the verifier treats loads as constants.
        public static let rdonlyProg: UInt32 = 0x80
        public static let wronlyProg: UInt32 = 0x100
        /// Required for mmap of array maps, and for every arena.
        public static let mmapable: UInt32 = 0x400
        public static let innerMap: UInt32 = 1 << 12
        /// Arena: a user-space fault on an unallocated page raises SIGSEGV instead of allocating.
        public static let segvOnFault: UInt32 = 1 << 17
        /// Arena: do not translate kernel arena pointers to user addresses.
        public static let noUserConv: UInt32 = 1 << 18
    }

    /// `BPF_MAP_UPDATE_ELEM` flags.
    public enum UpdateFlag {
        public static let any: UInt64 = 0
        public static let noExist: UInt64 = 1
        public static let exist: UInt64 = 2
        public static let lock: UInt64 = 4
    }

    /// `BPF_PROG_LOAD` `prog_flags`.
    public enum ProgramFlag {
        public static let strictAlignment: UInt32 = 1 << 0
        public static let anyAlignment: UInt32 = 1 << 1
        public static let sleepable: UInt32 = 1 << 4
        public static let xdpHasFrags: UInt32 = 1 << 5
    }

    /// ld_imm64 `src_reg` values telling the kernel what `imm` names.
    public enum PseudoLoad {
        public static let mapFD: UInt8 = 1
        public static let mapValue: UInt8 = 2
        public static let btfID: UInt8 = 3
        public static let function: UInt8 = 4
        public static let mapIndex: UInt8 = 5
        public static let mapIndexValue: UInt8 = 6
    }

    /// call `src_reg` values.
    public enum PseudoCall {
        public static let call: UInt8 = 1
        public static let kfuncCall: UInt8 = 2
    }

    /// mmap flag glibc's Swift module may not export (Linux 4.17+). Unlike MAP_FIXED it fails
    /// with EEXIST instead of silently replacing whatever is mapped there.
    public static let mapFixedNoReplace: Int32 = 0x100000
}

extension BPFSys {
    /// A name the kernel accepts for a map or program: bytes outside `[A-Za-z0-9_.]` become `_`
    /// (the kernel's `bpf_obj_name_cpy` rejects them with EINVAL) and the result is cut to 15
    /// bytes, leaving room for the NUL.
    public static func objectName(_ name: String) -> String {
        var bytes: [UInt8] = []
        for byte in name.utf8.prefix(BPFConstants.objectNameLength - 1) {
            let allowed =
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A)
                || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte == 0x2E
            bytes.append(allowed ? byte : 0x5F)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

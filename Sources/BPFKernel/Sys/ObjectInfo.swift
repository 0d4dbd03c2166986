import Glibc

/// Offsets in `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD (`info`).
private enum InfoAttr {
    static let bpfFD = 0
    static let infoLen = 4
    static let info = 8  // u64 pointer
    static let size = 16
}

/// Offsets in `struct bpf_map_info` (stable prefix; the kernel copies min(ours, its) bytes).
private enum MapInfoLayout {
    static let type = 0
    static let id = 4
    static let keySize = 8
    static let valueSize = 12
    static let maxEntries = 16
    static let mapFlags = 20
    static let name = 24  // char[16]
    static let btfID = 64
    static let btfKeyTypeID = 68
    static let btfValueTypeID = 72
    static let mapExtra = 80  // u64
    static let size = 88
}

/// Offsets in `struct bpf_prog_info`. Pointer fields (insns, map_ids, ...) stay 0: the kernel
/// fills only counts then, never writes through them.
private enum ProgramInfoLayout {
    static let type = 0
    static let id = 4
    static let tag = 8  // u8[8]
    static let jitedProgramLength = 16
    static let xlatedProgramLength = 20
    static let mapIDCount = 52  // nr_map_ids
    static let name = 64  // char[16]
    static let btfID = 128
    /// The statistics BPF_ENABLE_STATS turns on (Linux 5.8; recursion_misses 5.12).
    static let runTimeNs = 192  // u64
    static let runCount = 200  // u64
    static let recursionMisses = 208  // u64
    static let verifiedInstructions = 216  // Linux 5.16
    /// Up to and including `attach_btf_id` (224): Linux 6.0's size, also 6.18's.
    static let size = 232
}

/// Offsets in `struct bpf_btf_info`.
private enum BTFInfoLayout {
    static let btf = 0  // u64 pointer (the raw blob, for `btfData`)
    static let btfSize = 8
    static let id = 12
    static let name = 16  // u64 pointer
    static let nameLength = 24
    static let kernelBTF = 28
    static let size = 32
}

/// What the kernel says about a map.
public struct MapInfo: Sendable, Equatable {
    public var type: UInt32
    public var id: UInt32
    public var keySize: UInt32
    public var valueSize: UInt32
    public var maxEntries: UInt32
    public var flags: UInt32
    /// As the kernel stores it: sanitised, at most 15 bytes.
    public var name: String
    public var mapExtra: UInt64
    public var btfID: UInt32
    public var btfKeyTypeID: UInt32
    public var btfValueTypeID: UInt32
}

/// What the kernel says about a program.
public struct ProgramInfo: Sendable, Equatable {
    public var type: UInt32
    public var id: UInt32
    public var name: String
    /// The kernel's SHA-1-based tag of the instructions, as bpftool prints it.
    public var tag: [UInt8]
    /// Maps the program uses or has bound (`BPF_PROG_BIND_MAP`).
    public var mapIDCount: UInt32
    public var btfID: UInt32
    /// Nanoseconds spent in the program, summed over its runs while statistics were on
    /// (`ProgramStatistics.enable()`; 0 while they never were).
    public var runTimeNs: UInt64 = 0
    /// Runs counted while statistics were on.
    public var runCount: UInt64 = 0
    /// Runs the kernel skipped because the program was already running on that CPU.
    public var recursionMisses: UInt64 = 0
    /// Instructions the verifier processed (0 before Linux 5.16).
    public var verifiedInstructions: UInt32 = 0
    /// Bytes of JITed machine code (0 when not JITed or the caller may not see it).
    public var jitedProgramLength: UInt32 = 0
    /// Bytes of the instructions after the verifier's rewrites.
    public var xlatedProgramLength: UInt32 = 0
}

/// What the kernel says about a BTF object.
public struct BTFInfo: Sendable, Equatable {
    public var id: UInt32
    /// "vmlinux" or a module name for kernel BTF; empty for BTF loaded by user space.
    public var name: String
    public var isKernelBTF: Bool
    public var size: UInt32
}

extension BPFSys {
    public static func objGetInfoByFD(mapFD fd: BPFFD) throws(BPFError) -> MapInfo {
        let memory = AttrMemory()
        defer { memory.release() }
        let info = memory.zeroed(count: MapInfoLayout.size)
        try getInfo(fd: fd, into: info, memory: memory, what: "map")
        return MapInfo(
            type: info.load(MapInfoLayout.type),
            id: info.load(MapInfoLayout.id),
            keySize: info.load(MapInfoLayout.keySize),
            valueSize: info.load(MapInfoLayout.valueSize),
            maxEntries: info.load(MapInfoLayout.maxEntries),
            flags: info.load(MapInfoLayout.mapFlags),
            name: info.string(at: MapInfoLayout.name, count: BPFConstants.objectNameLength),
            mapExtra: info.load(MapInfoLayout.mapExtra),
            btfID: info.load(MapInfoLayout.btfID),
            btfKeyTypeID: info.load(MapInfoLayout.btfKeyTypeID),
            btfValueTypeID: info.load(MapInfoLayout.btfValueTypeID))
    }

    public static func objGetInfoByFD(programFD fd: BPFFD) throws(BPFError) -> ProgramInfo {
        let memory = AttrMemory()
        defer { memory.release() }
        let info = memory.zeroed(count: ProgramInfoLayout.size)
        try getInfo(fd: fd, into: info, memory: memory, what: "program")
        return ProgramInfo(
            type: info.load(ProgramInfoLayout.type),
            id: info.load(ProgramInfoLayout.id),
            name: info.string(at: ProgramInfoLayout.name, count: BPFConstants.objectNameLength),
            tag: Array(info[ProgramInfoLayout.tag..<(ProgramInfoLayout.tag + 8)]),
            mapIDCount: info.load(ProgramInfoLayout.mapIDCount),
            btfID: info.load(ProgramInfoLayout.btfID),
            runTimeNs: info.load(ProgramInfoLayout.runTimeNs),
            runCount: info.load(ProgramInfoLayout.runCount),
            recursionMisses: info.load(ProgramInfoLayout.recursionMisses),
            verifiedInstructions: info.load(ProgramInfoLayout.verifiedInstructions),
            jitedProgramLength: info.load(ProgramInfoLayout.jitedProgramLength),
            xlatedProgramLength: info.load(ProgramInfoLayout.xlatedProgramLength))
    }

    public static func objGetInfoByFD(btfFD fd: BPFFD) throws(BPFError) -> BTFInfo {
        // Kernel BTF names are module names (< 64 bytes); the kernel answers ENOSPC if the
        // buffer is short, so one retry with its reported length covers any future growth.
        var nameLength = 64
        while true {
            let memory = AttrMemory()
            defer { memory.release() }
            let info = memory.zeroed(count: BTFInfoLayout.size)
            let name = memory.zeroed(count: nameLength)
            info.storeBytes(of: UInt64(UInt(bitPattern: name.baseAddress)), toByteOffset: BTFInfoLayout.name, as: UInt64.self)
            info.storeBytes(of: UInt32(nameLength), toByteOffset: BTFInfoLayout.nameLength, as: UInt32.self)
            do {
                try getInfo(fd: fd, into: info, memory: memory, what: "btf")
            } catch let error where error.errno == ENOSPC && nameLength < 4096 {
                nameLength = max(nameLength * 2, Int(info.load(BTFInfoLayout.nameLength) as UInt32) + 1)
                continue
            }
            return BTFInfo(
                id: info.load(BTFInfoLayout.id),
                name: name.cStringPrefix(),
                isKernelBTF: (info.load(BTFInfoLayout.kernelBTF) as UInt32) != 0,
                size: info.load(BTFInfoLayout.btfSize))
        }
    }

    /// The raw blob of a BTF object (header, types, strings): what user space loaded, or for
    /// kernel BTF vmlinux's blob or a module's split blob. The kernel copies at most `btf_size`
    /// bytes and reports the real size, so a short buffer is retried at that size.
    public static func btfData(fd: BPFFD) throws(BPFError) -> [UInt8] {
        var capacity = Int(try objGetInfoByFD(btfFD: fd).size)
        for _ in 0..<3 {
            let memory = AttrMemory()
            defer { memory.release() }
            let info = memory.zeroed(count: BTFInfoLayout.size)
            let data = memory.zeroed(count: capacity)
            info.storeBytes(of: UInt64(UInt(bitPattern: data.baseAddress)), toByteOffset: BTFInfoLayout.btf, as: UInt64.self)
            info.storeBytes(of: UInt32(capacity), toByteOffset: BTFInfoLayout.btfSize, as: UInt32.self)
            try getInfo(fd: fd, into: info, memory: memory, what: "btf data")
            let size = Int(info.load(BTFInfoLayout.btfSize) as UInt32)
            if size <= capacity { return Array(data[0..<size]) }
            capacity = size
        }
        throw .invalidArgument("btf object of fd \(fd.rawValue) kept changing size while being read")
    }

    static func getInfo(
        fd: BPFFD, into info: UnsafeMutableRawBufferPointer, memory: AttrMemory, what: String
    ) throws(BPFError) {
        var attr = BPFAttr(size: InfoAttr.size)
        attr.set(memory.fd(fd), at: InfoAttr.bpfFD)
        attr.set(UInt32(info.count), at: InfoAttr.infoLen)
        attr.set(pointer: info.baseAddress, at: InfoAttr.info)
        _ = try call(.objGetInfoByFD, &attr, context: "reading \(what) info of fd \(fd.rawValue)")
    }
}

extension UnsafeMutableRawBufferPointer {
    func load<T: FixedWidthInteger>(_ offset: Int) -> T {
        loadUnaligned(fromByteOffset: offset, as: T.self)
    }

    func string(at offset: Int, count: Int) -> String {
        let bytes = self[offset..<(offset + count)].prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}

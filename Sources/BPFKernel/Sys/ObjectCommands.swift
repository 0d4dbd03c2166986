import Glibc

/// Offsets in `union bpf_attr` for BPF_OBJ_PIN / BPF_OBJ_GET.
private enum ObjAttr {
    static let pathname = 0  // u64 pointer
    static let bpfFD = 8
    static let fileFlags = 12
    /// `path_fd` (16) is unused: paths are absolute or relative to the cwd.
    static let size = 16
}

/// Offsets for BPF_*_GET_NEXT_ID and BPF_*_GET_FD_BY_ID.
private enum IDAttr {
    static let startID = 0  // also prog_id / map_id / btf_id
    static let nextID = 4
    static let openFlags = 8
    /// Up to and including `open_flags`; `fd_by_id_token_fd` is unused.
    static let size = 12
}

extension BPFSys {
    /// BPF_OBJ_PIN: pins the object at `path` on a bpffs mount, so it outlives every fd.
    public static func objPin(fd: BPFFD, path: String) throws(BPFError) {
        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: ObjAttr.size)
        attr.set(pointer: memory.cString(path).baseAddress, at: ObjAttr.pathname)
        attr.set(memory.fd(fd), at: ObjAttr.bpfFD)
        _ = try call(.objPin, &attr, context: "pinning fd \(fd.rawValue) at \"\(path)\"")
    }

    /// BPF_OBJ_GET: opens the object pinned at `path`. `flags`: `rdonly`/`wronly` or 0.
    public static func objGet(path: String, flags: UInt32 = 0) throws(BPFError) -> BPFFD {
        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: ObjAttr.size)
        attr.set(pointer: memory.cString(path).baseAddress, at: ObjAttr.pathname)
        attr.set(flags, at: ObjAttr.fileFlags)
        return try callReturningFD(.objGet, &attr, context: "opening pinned object \"\(path)\"")
    }

    /// The next program ID after `id`, or nil past the last.
    public static func progGetNextID(after id: UInt32) throws(BPFError) -> UInt32? {
        try nextID(.progGetNextID, after: id)
    }

    /// The next map ID after `id`, or nil past the last.
    public static func mapGetNextID(after id: UInt32) throws(BPFError) -> UInt32? {
        try nextID(.mapGetNextID, after: id)
    }

    /// The next BTF object ID after `id` (vmlinux, modules, and loaded program BTF), or nil.
    public static func btfGetNextID(after id: UInt32) throws(BPFError) -> UInt32? {
        try nextID(.btfGetNextID, after: id)
    }

    public static func progGetFDByID(_ id: UInt32) throws(BPFError) -> BPFFD {
        try fdByID(.progGetFDByID, id: id, what: "program")
    }

    public static func mapGetFDByID(_ id: UInt32, flags: UInt32 = 0) throws(BPFError) -> BPFFD {
        try fdByID(.mapGetFDByID, id: id, what: "map", flags: flags)
    }

    public static func btfGetFDByID(_ id: UInt32) throws(BPFError) -> BPFFD {
        try fdByID(.btfGetFDByID, id: id, what: "btf")
    }

    static func nextID(_ command: BPFCommand, after id: UInt32) throws(BPFError) -> UInt32? {
        var attr = BPFAttr(size: IDAttr.size)
        attr.set(id, at: IDAttr.startID)
        switch invoke(command, &attr) {
        case .success:
            return attr.uint32(at: IDAttr.nextID)
        case .failure(let errno) where errno == ENOENT:
            return nil
        case .failure(let errno):
            throw .syscall(command: command, errno: errno, context: "listing ids after \(id)")
        }
    }

    static func fdByID(
        _ command: BPFCommand, id: UInt32, what: String, flags: UInt32 = 0
    ) throws(BPFError) -> BPFFD {
        var attr = BPFAttr(size: IDAttr.size)
        attr.set(id, at: IDAttr.startID)
        attr.set(flags, at: IDAttr.openFlags)
        return try callReturningFD(command, &attr, context: "opening \(what) id \(id)")
    }
}

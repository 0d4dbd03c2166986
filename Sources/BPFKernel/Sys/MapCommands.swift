import Glibc

/// Offsets in `union bpf_attr` for BPF_MAP_CREATE (include/uapi/linux/bpf.h, Linux 6.18).
private enum MapCreateAttr {
    static let mapType = 0
    static let keySize = 4
    static let valueSize = 8
    static let maxEntries = 12
    static let mapFlags = 16
    static let innerMapFD = 20
    static let numaNode = 24
    static let mapName = 28  // char[16]
    static let mapIfindex = 44
    static let btfFD = 48
    static let btfKeyTypeID = 52
    static let btfValueTypeID = 56
    static let btfVmlinuxValueTypeID = 60
    static let mapExtra = 64  // u64
    static let valueTypeBTFObjFD = 72
    static let mapTokenFD = 76
    /// Up to and including `map_token_fd`; later fields (exclusive-program hash) are unused.
    static let size = 80
}

/// Offsets for BPF_MAP_{LOOKUP,UPDATE,DELETE}_ELEM, BPF_MAP_GET_NEXT_KEY and BPF_MAP_FREEZE.
private enum MapElemAttr {
    static let mapFD = 0
    static let key = 8  // u64 pointer
    static let value = 16  // u64 pointer; `next_key` for GET_NEXT_KEY
    static let flags = 24  // u64
    static let size = 32
    /// BPF_MAP_FREEZE's last field is `map_fd`.
    static let freezeSize = 4
}

extension BPFSys {
    /// BPF_MAP_CREATE. Returns the new map's fd.
    ///
    /// Sizes and flags are passed through unchecked: the kernel's per-type rules (for an arena:
    /// key and value size 0, `mmapable` set, page-aligned `mapExtra`) produce EINVAL with the
    /// context below. `name` is sanitised with `objectName(_:)`.
    public static func mapCreate(
        type: UInt32,
        keySize: UInt32,
        valueSize: UInt32,
        maxEntries: UInt32,
        flags: UInt32 = 0,
        name: String = "",
        mapExtra: UInt64 = 0,
        btfFD: BPFFD? = nil,
        btfKeyTypeID: UInt32 = 0,
        btfValueTypeID: UInt32 = 0,
        btfVmlinuxValueTypeID: UInt32 = 0,
        innerMapFD: BPFFD? = nil,
        numaNode: UInt32 = 0
    ) throws(BPFError) -> BPFFD {
        let memory = AttrMemory()
        defer { memory.release() }
        let kernelName = objectName(name)

        var attr = BPFAttr(size: MapCreateAttr.size)
        attr.set(type, at: MapCreateAttr.mapType)
        attr.set(keySize, at: MapCreateAttr.keySize)
        attr.set(valueSize, at: MapCreateAttr.valueSize)
        attr.set(maxEntries, at: MapCreateAttr.maxEntries)
        attr.set(flags, at: MapCreateAttr.mapFlags)
        attr.set(memory.fd(innerMapFD), at: MapCreateAttr.innerMapFD)
        attr.set(numaNode, at: MapCreateAttr.numaNode)
        attr.set(bytes: Array(kernelName.utf8), at: MapCreateAttr.mapName)
        attr.set(memory.fd(btfFD), at: MapCreateAttr.btfFD)
        attr.set(btfKeyTypeID, at: MapCreateAttr.btfKeyTypeID)
        attr.set(btfValueTypeID, at: MapCreateAttr.btfValueTypeID)
        attr.set(btfVmlinuxValueTypeID, at: MapCreateAttr.btfVmlinuxValueTypeID)
        attr.set(mapExtra, at: MapCreateAttr.mapExtra)

        return try callReturningFD(
            .mapCreate, &attr,
            context: "creating map \"\(kernelName)\" (type \(type), key \(keySize), value "
                + "\(valueSize), max_entries \(maxEntries), flags \(BPFSys.hex(UInt64(flags))), "
                + "map_extra \(BPFSys.hex(mapExtra)))")
    }

    /// BPF_MAP_UPDATE_ELEM.
    ///
    /// The kernel reads exactly the map's key_size and value_size bytes from our buffers, so
    /// `key.count` must equal key_size and `value.count` value_size (for per-CPU maps:
    /// round_up(value_size, 8) × possible CPUs). The caller, who knows the map, guarantees that;
    /// this layer only refuses empty buffers, which would make the kernel read from NULL.
    public static func mapUpdate(
        fd: BPFFD, key: [UInt8], value: [UInt8], flags: UInt64 = BPFConstants.UpdateFlag.any
    ) throws(BPFError) {
        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: MapElemAttr.size)
        attr.set(memory.fd(fd), at: MapElemAttr.mapFD)
        attr.set(pointer: memory.copy(key)?.baseAddress, at: MapElemAttr.key)
        attr.set(pointer: memory.copy(value)?.baseAddress, at: MapElemAttr.value)
        attr.set(flags, at: MapElemAttr.flags)
        _ = try call(
            .mapUpdateElem, &attr,
            context: "updating a \(key.count)-byte key with a \(value.count)-byte value in map fd \(fd.rawValue)")
    }

    /// BPF_MAP_LOOKUP_ELEM. Returns nil when the key is absent (ENOENT).
    /// `key.count` must equal the map's key_size (see `mapUpdate`).
    public static func mapLookup(fd: BPFFD, key: [UInt8], valueSize: Int) throws(BPFError) -> [UInt8]? {
        let memory = AttrMemory()
        defer { memory.release() }
        let value = memory.zeroed(count: valueSize)
        var attr = BPFAttr(size: MapElemAttr.size)
        attr.set(memory.fd(fd), at: MapElemAttr.mapFD)
        attr.set(pointer: memory.copy(key)?.baseAddress, at: MapElemAttr.key)
        attr.set(pointer: value.baseAddress, at: MapElemAttr.value)
        switch invoke(.mapLookupElem, &attr) {
        case .success:
            return Array(value)
        case .failure(let errno) where errno == ENOENT:
            return nil
        case .failure(let errno):
            throw .syscall(
                command: .mapLookupElem, errno: errno,
                context: "looking up a \(key.count)-byte key in map fd \(fd.rawValue)")
        }
    }

    /// BPF_MAP_DELETE_ELEM. Returns false when the key was absent (ENOENT).
    @discardableResult
    public static func mapDelete(fd: BPFFD, key: [UInt8]) throws(BPFError) -> Bool {
        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: MapElemAttr.size)
        attr.set(memory.fd(fd), at: MapElemAttr.mapFD)
        attr.set(pointer: memory.copy(key)?.baseAddress, at: MapElemAttr.key)
        switch invoke(.mapDeleteElem, &attr) {
        case .success:
            return true
        case .failure(let errno) where errno == ENOENT:
            return false
        case .failure(let errno):
            throw .syscall(
                command: .mapDeleteElem, errno: errno,
                context: "deleting a \(key.count)-byte key from map fd \(fd.rawValue)")
        }
    }

    /// BPF_MAP_GET_NEXT_KEY. `key` nil (or a key not in the map) yields the first key; returns
    /// nil after the last key (ENOENT).
    public static func mapGetNextKey(fd: BPFFD, key: [UInt8]?, keySize: Int) throws(BPFError) -> [UInt8]? {
        let memory = AttrMemory()
        defer { memory.release() }
        let next = memory.zeroed(count: keySize)
        var attr = BPFAttr(size: MapElemAttr.size)
        attr.set(memory.fd(fd), at: MapElemAttr.mapFD)
        attr.set(pointer: key.flatMap { memory.copy($0) }?.baseAddress, at: MapElemAttr.key)
        attr.set(pointer: next.baseAddress, at: MapElemAttr.value)
        switch invoke(.mapGetNextKey, &attr) {
        case .success:
            return Array(next)
        case .failure(let errno) where errno == ENOENT:
            return nil
        case .failure(let errno):
            throw .syscall(
                command: .mapGetNextKey, errno: errno,
                context: "iterating keys of map fd \(fd.rawValue)")
        }
    }

    /// BPF_MAP_FREEZE: user space can no longer write the map (updates then fail with EPERM);
    /// programs still can unless the map was created with `rdonlyProg`.
    public static func mapFreeze(fd: BPFFD) throws(BPFError) {
        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: MapElemAttr.freezeSize)
        attr.set(memory.fd(fd), at: MapElemAttr.mapFD)
        _ = try call(.mapFreeze, &attr, context: "freezing map fd \(fd.rawValue)")
    }
}

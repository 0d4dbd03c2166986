import Glibc

/// Offsets in `union bpf_attr` for BPF_LINK_CREATE (`link_create`, include/uapi/linux/bpf.h,
/// Linux 6.18). After the four common words comes a union whose member the attach type picks.
private enum LinkCreateAttr {
    static let programFD = 0
    /// `target_fd` or `target_ifindex`.
    static let target = 4
    static let attachType = 8
    static let flags = 12
    // The union, at 16.
    static let targetBTFID = 16
    static let iterInfo = 16  // u64 pointer to union bpf_iter_link_info
    static let iterInfoLength = 24
    static let perfEventCookie = 16
    static let kprobeMultiFlags = 16
    static let kprobeMultiCount = 20
    static let kprobeMultiSymbols = 24  // u64 pointer to const char *[]
    static let kprobeMultiAddresses = 32
    static let kprobeMultiCookies = 40
    static let tracingTargetBTFID = 16
    static let tracingCookie = 24
    static let tcxRelative = 16  // relative_fd or relative_id
    static let tcxExpectedRevision = 24
    /// Up to the end of `kprobe_multi` (Linux 5.18's last member): every member we fill fits,
    /// and kernels since 5.18 accept it; older ones accept it too while its tail is zero.
    static let size = 48
}

/// `union bpf_iter_link_info`: `map.map_fd` at 0; 16 bytes with the cgroup and task members.
private enum IterLinkInfo {
    static let mapFD = 0
    static let size = 16
}

/// Offsets for BPF_RAW_TRACEPOINT_OPEN.
private enum RawTracepointAttr {
    static let name = 0  // u64 pointer; NULL for BTF-typed programs (tp_btf, fentry, lsm, ...)
    static let programFD = 8
    /// `cookie` (16, Linux 6.10) is left out: older kernels refuse an attr that long.
    static let size = 12
}

/// Offsets for BPF_LINK_UPDATE.
private enum LinkUpdateAttr {
    static let linkFD = 0
    static let newProgramFD = 4
    static let flags = 8
    static let oldProgramFD = 12
    static let size = 16
}

/// What `link_create`'s union carries for one attach: the member the attach type reads.
public enum LinkCreateOptions: Sendable {
    case none
    /// fentry/fexit/freplace on a BPF program: the target function's BTF id in it.
    case targetBTFID(UInt32)
    /// BPF_TRACE_ITER over one map (`bpf_map_elem`, `bpf_sk_storage_map`, ...).
    case iterMap(BPFFD)
    /// BPF_PERF_EVENT: the value `bpf_get_attach_cookie()` returns.
    case perfEvent(cookie: UInt64)
    /// BPF_TRACE_KPROBE_MULTI by symbol names (the kernel resolves them through kallsyms).
    case kprobeMulti(symbols: [String], returnProbe: Bool, cookies: [UInt64])
    /// BTF-typed tracing with a cookie (Linux 5.19).
    case tracing(targetBTFID: UInt32, cookie: UInt64)
    /// tcx: where in the chain (`relative` is an fd or, with BPF_F_ID in flags, an id) and the
    /// chain revision expected (0: any).
    case tcx(relative: UInt32, expectedRevision: UInt64)
}

/// What a link is created on: nothing (tracing), a descriptor (perf event, cgroup) or an interface.
public enum LinkCreateTarget: Sendable {
    case none
    case fd(BPFFD)
    case ifindex(UInt32)
}

extension BPFConstants {
    /// `enum bpf_stats_type`.
    public enum StatsType {
        public static let runTime: UInt32 = 0
    }

    /// `link_create.flags` and `link_update.flags`.
    public enum LinkFlag {
        /// BPF_LINK_UPDATE: only if the link still runs `old_prog_fd`.
        public static let replace: UInt32 = 1 << 2
        /// `kprobe_multi.flags`: a return probe.
        public static let kprobeMultiReturn: UInt32 = 1 << 0
    }

    /// `XDP_FLAGS_*` (include/uapi/linux/if_link.h): the only flags an XDP link takes.
    public enum XDPFlag {
        public static let skbMode: UInt32 = 1 << 1
        public static let driverMode: UInt32 = 1 << 2
    }
}

extension BPFSys {
    /// BPF_LINK_CREATE: attaches `programFD` to the hook `attachType` names on `target`; the
    /// returned link fd keeps it attached until closed (or pinned).
    public static func linkCreate(
        programFD: BPFFD, target: LinkCreateTarget, attachType: UInt32, flags: UInt32 = 0,
        options: LinkCreateOptions = .none, context: @autoclosure () -> String
    ) throws(BPFError) -> BPFFD {
        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: LinkCreateAttr.size)
        attr.set(memory.fd(programFD), at: LinkCreateAttr.programFD)
        switch target {
        case .none: break
        case .fd(let fd): attr.set(memory.fd(fd), at: LinkCreateAttr.target)
        case .ifindex(let index): attr.set(index, at: LinkCreateAttr.target)
        }
        attr.set(attachType, at: LinkCreateAttr.attachType)
        attr.set(flags, at: LinkCreateAttr.flags)
        switch options {
        case .none:
            break
        case .targetBTFID(let id):
            attr.set(id, at: LinkCreateAttr.targetBTFID)
        case .iterMap(let map):
            let info = memory.zeroed(count: IterLinkInfo.size)
            info.storeBytes(of: UInt32(bitPattern: memory.fd(map)), toByteOffset: IterLinkInfo.mapFD, as: UInt32.self)
            attr.set(pointer: info.baseAddress, at: LinkCreateAttr.iterInfo)
            attr.set(UInt32(IterLinkInfo.size), at: LinkCreateAttr.iterInfoLength)
        case .perfEvent(let cookie):
            attr.set(cookie, at: LinkCreateAttr.perfEventCookie)
        case .kprobeMulti(let symbols, let returnProbe, let cookies):
            guard !symbols.isEmpty else { throw .invalidArgument("a kprobe_multi link needs at least one symbol") }
            guard cookies.isEmpty || cookies.count == symbols.count else {
                throw .invalidArgument("\(cookies.count) cookies for \(symbols.count) kprobe_multi symbols")
            }
            // An array of C string pointers, each string owned by `memory`.
            let table = memory.zeroed(count: symbols.count * 8)
            for (i, symbol) in symbols.enumerated() {
                let name = memory.cString(symbol)
                table.storeBytes(of: UInt64(UInt(bitPattern: name.baseAddress)), toByteOffset: i * 8, as: UInt64.self)
            }
            attr.set(returnProbe ? BPFConstants.LinkFlag.kprobeMultiReturn : 0, at: LinkCreateAttr.kprobeMultiFlags)
            attr.set(UInt32(symbols.count), at: LinkCreateAttr.kprobeMultiCount)
            attr.set(pointer: table.baseAddress, at: LinkCreateAttr.kprobeMultiSymbols)
            if !cookies.isEmpty {
                let values = memory.zeroed(count: cookies.count * 8)
                for (i, cookie) in cookies.enumerated() {
                    values.storeBytes(of: cookie, toByteOffset: i * 8, as: UInt64.self)
                }
                attr.set(pointer: values.baseAddress, at: LinkCreateAttr.kprobeMultiCookies)
            }
        case .tracing(let id, let cookie):
            attr.set(id, at: LinkCreateAttr.tracingTargetBTFID)
            attr.set(cookie, at: LinkCreateAttr.tracingCookie)
        case .tcx(let relative, let revision):
            attr.set(relative, at: LinkCreateAttr.tcxRelative)
            attr.set(revision, at: LinkCreateAttr.tcxExpectedRevision)
        }
        return try callReturningFD(.linkCreate, &attr, context: context())
    }

    /// BPF_RAW_TRACEPOINT_OPEN: a raw tracepoint link for `name`, or (name nil) the link of a
    /// BTF-typed program at the target it was loaded for; the pre-5.7 way for fentry and lsm.
    public static func rawTracepointOpen(name: String?, programFD: BPFFD) throws(BPFError) -> BPFFD {
        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: RawTracepointAttr.size)
        if let name { attr.set(pointer: memory.cString(name).baseAddress, at: RawTracepointAttr.name) }
        attr.set(memory.fd(programFD), at: RawTracepointAttr.programFD)
        return try callReturningFD(.rawTracepointOpen, &attr, context: "opening raw tracepoint \(name.map { "\"\($0)\"" } ?? "of a BTF-typed program")")
    }

    /// BPF_LINK_DETACH: detaches the link from its hook while fds and pins to it stay valid
    /// (the link is then defunct). Link types without it answer EOPNOTSUPP.
    public static func linkDetach(fd: BPFFD) throws(BPFError) {
        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: 4)
        attr.set(memory.fd(fd), at: 0)
        _ = try call(.linkDetach, &attr, context: "detaching link fd \(fd.rawValue)")
    }

    /// BPF_LINK_UPDATE: the link runs `newProgramFD` from now on; with `oldProgramFD`, only if it
    /// still ran that one (BPF_F_REPLACE, else EPERM).
    public static func linkUpdate(fd: BPFFD, newProgramFD: BPFFD, oldProgramFD: BPFFD? = nil) throws(BPFError) {
        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: LinkUpdateAttr.size)
        attr.set(memory.fd(fd), at: LinkUpdateAttr.linkFD)
        attr.set(memory.fd(newProgramFD), at: LinkUpdateAttr.newProgramFD)
        if let oldProgramFD {
            attr.set(BPFConstants.LinkFlag.replace, at: LinkUpdateAttr.flags)
            attr.set(memory.fd(oldProgramFD), at: LinkUpdateAttr.oldProgramFD)
        }
        _ = try call(.linkUpdate, &attr, context: "updating the program of link fd \(fd.rawValue)")
    }

    /// The next link ID after `id`, or nil past the last.
    public static func linkGetNextID(after id: UInt32) throws(BPFError) -> UInt32? {
        try nextID(.linkGetNextID, after: id)
    }

    public static func linkGetFDByID(_ id: UInt32) throws(BPFError) -> BPFFD {
        try fdByID(.linkGetFDByID, id: id, what: "link")
    }

    /// BPF_ITER_CREATE: a new seq_file over an iterator link; each open runs the iteration once,
    /// read until read(2) returns 0.
    public static func iterCreate(linkFD: BPFFD) throws(BPFError) -> BPFFD {
        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: 8)
        attr.set(memory.fd(linkFD), at: 0)
        return try callReturningFD(.iterCreate, &attr, context: "creating an iterator from link fd \(linkFD.rawValue)")
    }

    /// BPF_ENABLE_STATS: the kernel counts run time and runs of every program while the
    /// returned fd is open (system-wide, shared with other holders).
    public static func enableStats(type: UInt32 = BPFConstants.StatsType.runTime) throws(BPFError) -> BPFFD {
        var attr = BPFAttr(size: 4)
        attr.set(type, at: 0)
        return try callReturningFD(.enableStats, &attr, context: "enabling program statistics (type \(type))")
    }
}

// Kernel UAPI enumerations used by BPF ELF objects (enum bpf_map_type,
// enum bpf_prog_type, enum bpf_attach_type, BPF_MAP_CREATE / BPF_PROG_LOAD
// flag bits), with the lowercase names libbpf prints for them
// (libbpf_bpf_map_type_str, libbpf_bpf_prog_type_str,
// libbpf_bpf_attach_type_str), which is also what bpftool shows.
//
// Numbering follows include/uapi/linux/bpf.h. Everything up to Linux 6.18 is
// covered; a few newer values that libbpf v1.8 already names are included as
// well and marked "newer than Linux 6.18" in their documentation.
//
// The types are open structs rather than enums: a kernel newer than this table
// can hand us any number, and it must survive a round trip unchanged.
//
// Naming rule for values libbpf does not know: `libbpfName` is nil (libbpf
// returns NULL), and `name` / `description` render the number as
// "type_<n>", for example "type_99".

// MARK: - Map types

/// A BPF map type (`enum bpf_map_type`).
public struct BPFMapType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public static let unspec = BPFMapType(0)
    public static let hash = BPFMapType(1)
    public static let array = BPFMapType(2)
    public static let progArray = BPFMapType(3)
    public static let perfEventArray = BPFMapType(4)
    public static let percpuHash = BPFMapType(5)
    public static let percpuArray = BPFMapType(6)
    public static let stackTrace = BPFMapType(7)
    public static let cgroupArray = BPFMapType(8)
    public static let lruHash = BPFMapType(9)
    public static let lruPercpuHash = BPFMapType(10)
    public static let lpmTrie = BPFMapType(11)
    public static let arrayOfMaps = BPFMapType(12)
    public static let hashOfMaps = BPFMapType(13)
    public static let devmap = BPFMapType(14)
    public static let sockmap = BPFMapType(15)
    public static let cpumap = BPFMapType(16)
    public static let xskmap = BPFMapType(17)
    public static let sockhash = BPFMapType(18)
    /// `BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED` (19). libbpf names it "cgroup_storage".
    public static let cgroupStorageDeprecated = BPFMapType(19)
    /// `BPF_MAP_TYPE_CGROUP_STORAGE`, the uapi alias of `cgroupStorageDeprecated` (19).
    public static let cgroupStorage = BPFMapType(19)
    public static let reuseportSockarray = BPFMapType(20)
    /// `BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE_DEPRECATED` (21). libbpf names it "percpu_cgroup_storage".
    public static let percpuCgroupStorageDeprecated = BPFMapType(21)
    /// `BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE`, the uapi alias of `percpuCgroupStorageDeprecated` (21).
    public static let percpuCgroupStorage = BPFMapType(21)
    public static let queue = BPFMapType(22)
    public static let stack = BPFMapType(23)
    public static let skStorage = BPFMapType(24)
    public static let devmapHash = BPFMapType(25)
    public static let structOps = BPFMapType(26)
    public static let ringbuf = BPFMapType(27)
    public static let inodeStorage = BPFMapType(28)
    public static let taskStorage = BPFMapType(29)
    public static let bloomFilter = BPFMapType(30)
    public static let userRingbuf = BPFMapType(31)
    /// `BPF_MAP_TYPE_CGRP_STORAGE` (32), the newer cgroup local storage. libbpf: "cgrp_storage".
    public static let cgrpStorage = BPFMapType(32)
    public static let arena = BPFMapType(33)
    /// `BPF_MAP_TYPE_INSN_ARRAY` (34), jump tables for indirect jumps. Newer than Linux 6.18.
    public static let insnArray = BPFMapType(34)
    /// `BPF_MAP_TYPE_RHASH` (35), resizable hash. Newer than Linux 6.18 (bpf-next uapi).
    public static let rhash = BPFMapType(35)

    /// libbpf's names, indexed by raw value (dense: every value in range has a name).
    static let libbpfNames: [String] = [
        "unspec",                 // 0
        "hash",                   // 1
        "array",                  // 2
        "prog_array",             // 3
        "perf_event_array",       // 4
        "percpu_hash",            // 5
        "percpu_array",           // 6
        "stack_trace",            // 7
        "cgroup_array",           // 8
        "lru_hash",               // 9
        "lru_percpu_hash",        // 10
        "lpm_trie",               // 11
        "array_of_maps",          // 12
        "hash_of_maps",           // 13
        "devmap",                 // 14
        "sockmap",                // 15
        "cpumap",                 // 16
        "xskmap",                 // 17
        "sockhash",               // 18
        "cgroup_storage",         // 19
        "reuseport_sockarray",    // 20
        "percpu_cgroup_storage",  // 21
        "queue",                  // 22
        "stack",                  // 23
        "sk_storage",             // 24
        "devmap_hash",            // 25
        "struct_ops",             // 26
        "ringbuf",                // 27
        "inode_storage",          // 28
        "task_storage",           // 29
        "bloom_filter",           // 30
        "user_ringbuf",           // 31
        "cgrp_storage",           // 32
        "arena",                  // 33
        "insn_array",             // 34
        "rhash",                  // 35
    ]

    /// Exactly what `libbpf_bpf_map_type_str` returns, or nil where libbpf returns NULL.
    public var libbpfName: String? { kernelEnumName(rawValue, in: Self.libbpfNames) }

    /// The libbpf name, or "type_<n>" for a value libbpf does not know.
    public var name: String { libbpfName ?? unknownKernelEnumName(rawValue) }

    public var description: String { name }

    /// The map type whose libbpf name is `name` (e.g. "array_of_maps"), if any.
    public init?(name: String) {
        guard let index = Self.libbpfNames.firstIndex(of: name) else { return nil }
        self.init(UInt32(index))
    }

    /// Every value libbpf has a name for, in numeric order.
    public static var allKnown: [BPFMapType] {
        (0..<UInt32(libbpfNames.count)).map(BPFMapType.init(rawValue:))
    }
}

// MARK: - Program types

/// A BPF program type (`enum bpf_prog_type`).
public struct BPFProgramType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public static let unspec = BPFProgramType(0)
    public static let socketFilter = BPFProgramType(1)
    public static let kprobe = BPFProgramType(2)
    public static let schedCls = BPFProgramType(3)
    public static let schedAct = BPFProgramType(4)
    public static let tracepoint = BPFProgramType(5)
    public static let xdp = BPFProgramType(6)
    public static let perfEvent = BPFProgramType(7)
    public static let cgroupSkb = BPFProgramType(8)
    public static let cgroupSock = BPFProgramType(9)
    public static let lwtIn = BPFProgramType(10)
    public static let lwtOut = BPFProgramType(11)
    public static let lwtXmit = BPFProgramType(12)
    public static let sockOps = BPFProgramType(13)
    public static let skSkb = BPFProgramType(14)
    public static let cgroupDevice = BPFProgramType(15)
    public static let skMsg = BPFProgramType(16)
    public static let rawTracepoint = BPFProgramType(17)
    public static let cgroupSockAddr = BPFProgramType(18)
    public static let lwtSeg6local = BPFProgramType(19)
    public static let lircMode2 = BPFProgramType(20)
    public static let skReuseport = BPFProgramType(21)
    public static let flowDissector = BPFProgramType(22)
    public static let cgroupSysctl = BPFProgramType(23)
    public static let rawTracepointWritable = BPFProgramType(24)
    public static let cgroupSockopt = BPFProgramType(25)
    public static let tracing = BPFProgramType(26)
    public static let structOps = BPFProgramType(27)
    public static let ext = BPFProgramType(28)
    public static let lsm = BPFProgramType(29)
    public static let skLookup = BPFProgramType(30)
    public static let syscall = BPFProgramType(31)
    public static let netfilter = BPFProgramType(32)

    static let libbpfNames: [String] = [
        "unspec",                   // 0
        "socket_filter",            // 1
        "kprobe",                   // 2
        "sched_cls",                // 3
        "sched_act",                // 4
        "tracepoint",               // 5
        "xdp",                      // 6
        "perf_event",               // 7
        "cgroup_skb",               // 8
        "cgroup_sock",              // 9
        "lwt_in",                   // 10
        "lwt_out",                  // 11
        "lwt_xmit",                 // 12
        "sock_ops",                 // 13
        "sk_skb",                   // 14
        "cgroup_device",            // 15
        "sk_msg",                   // 16
        "raw_tracepoint",           // 17
        "cgroup_sock_addr",         // 18
        "lwt_seg6local",            // 19
        "lirc_mode2",               // 20
        "sk_reuseport",             // 21
        "flow_dissector",           // 22
        "cgroup_sysctl",            // 23
        "raw_tracepoint_writable",  // 24
        "cgroup_sockopt",           // 25
        "tracing",                  // 26
        "struct_ops",               // 27
        "ext",                      // 28
        "lsm",                      // 29
        "sk_lookup",                // 30
        "syscall",                  // 31
        "netfilter",                // 32
    ]

    /// Exactly what `libbpf_bpf_prog_type_str` returns, or nil where libbpf returns NULL.
    public var libbpfName: String? { kernelEnumName(rawValue, in: Self.libbpfNames) }

    /// The libbpf name, or "type_<n>" for a value libbpf does not know.
    public var name: String { libbpfName ?? unknownKernelEnumName(rawValue) }

    public var description: String { name }

    /// The program type whose libbpf name is `name` (e.g. "sched_cls"), if any.
    public init?(name: String) {
        guard let index = Self.libbpfNames.firstIndex(of: name) else { return nil }
        self.init(UInt32(index))
    }

    /// Every value libbpf has a name for, in numeric order.
    public static var allKnown: [BPFProgramType] {
        (0..<UInt32(libbpfNames.count)).map(BPFProgramType.init(rawValue:))
    }
}

// MARK: - Attach types

/// A BPF attach type (`enum bpf_attach_type`).
///
/// Note that 0 is a real attach type (`BPF_CGROUP_INET_INGRESS`), not "none";
/// whether a 0 means anything depends on the program type and section definition.
public struct BPFAttachType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public static let cgroupInetIngress = BPFAttachType(0)
    public static let cgroupInetEgress = BPFAttachType(1)
    public static let cgroupInetSockCreate = BPFAttachType(2)
    public static let cgroupSockOps = BPFAttachType(3)
    public static let skSkbStreamParser = BPFAttachType(4)
    public static let skSkbStreamVerdict = BPFAttachType(5)
    public static let cgroupDevice = BPFAttachType(6)
    public static let skMsgVerdict = BPFAttachType(7)
    public static let cgroupInet4Bind = BPFAttachType(8)
    public static let cgroupInet6Bind = BPFAttachType(9)
    public static let cgroupInet4Connect = BPFAttachType(10)
    public static let cgroupInet6Connect = BPFAttachType(11)
    public static let cgroupInet4PostBind = BPFAttachType(12)
    public static let cgroupInet6PostBind = BPFAttachType(13)
    public static let cgroupUdp4Sendmsg = BPFAttachType(14)
    public static let cgroupUdp6Sendmsg = BPFAttachType(15)
    public static let lircMode2 = BPFAttachType(16)
    public static let flowDissector = BPFAttachType(17)
    public static let cgroupSysctl = BPFAttachType(18)
    public static let cgroupUdp4Recvmsg = BPFAttachType(19)
    public static let cgroupUdp6Recvmsg = BPFAttachType(20)
    public static let cgroupGetsockopt = BPFAttachType(21)
    public static let cgroupSetsockopt = BPFAttachType(22)
    public static let traceRawTp = BPFAttachType(23)
    public static let traceFentry = BPFAttachType(24)
    public static let traceFexit = BPFAttachType(25)
    public static let modifyReturn = BPFAttachType(26)
    public static let lsmMac = BPFAttachType(27)
    public static let traceIter = BPFAttachType(28)
    public static let cgroupInet4Getpeername = BPFAttachType(29)
    public static let cgroupInet6Getpeername = BPFAttachType(30)
    public static let cgroupInet4Getsockname = BPFAttachType(31)
    public static let cgroupInet6Getsockname = BPFAttachType(32)
    public static let xdpDevmap = BPFAttachType(33)
    public static let cgroupInetSockRelease = BPFAttachType(34)
    public static let xdpCpumap = BPFAttachType(35)
    public static let skLookup = BPFAttachType(36)
    public static let xdp = BPFAttachType(37)
    public static let skSkbVerdict = BPFAttachType(38)
    public static let skReuseportSelect = BPFAttachType(39)
    public static let skReuseportSelectOrMigrate = BPFAttachType(40)
    public static let perfEvent = BPFAttachType(41)
    public static let traceKprobeMulti = BPFAttachType(42)
    public static let lsmCgroup = BPFAttachType(43)
    public static let structOps = BPFAttachType(44)
    public static let netfilter = BPFAttachType(45)
    public static let tcxIngress = BPFAttachType(46)
    public static let tcxEgress = BPFAttachType(47)
    public static let traceUprobeMulti = BPFAttachType(48)
    public static let cgroupUnixConnect = BPFAttachType(49)
    public static let cgroupUnixSendmsg = BPFAttachType(50)
    public static let cgroupUnixRecvmsg = BPFAttachType(51)
    public static let cgroupUnixGetpeername = BPFAttachType(52)
    public static let cgroupUnixGetsockname = BPFAttachType(53)
    public static let netkitPrimary = BPFAttachType(54)
    public static let netkitPeer = BPFAttachType(55)
    public static let traceKprobeSession = BPFAttachType(56)
    /// `BPF_TRACE_UPROBE_SESSION` (57), the last attach type of Linux 6.18.
    public static let traceUprobeSession = BPFAttachType(57)
    /// `BPF_TRACE_FSESSION` (58), `SEC("fsession")`. Newer than Linux 6.18 (Linux 7.0).
    public static let traceFsession = BPFAttachType(58)
    /// `BPF_TRACE_FENTRY_MULTI` (59), `SEC("fentry.multi")`. Newer than Linux 6.18.
    public static let traceFentryMulti = BPFAttachType(59)
    /// `BPF_TRACE_FEXIT_MULTI` (60), `SEC("fexit.multi")`. Newer than Linux 6.18.
    public static let traceFexitMulti = BPFAttachType(60)
    /// `BPF_TRACE_FSESSION_MULTI` (61), `SEC("fsession.multi")`. Newer than Linux 6.18.
    public static let traceFsessionMulti = BPFAttachType(61)

    static let libbpfNames: [String] = [
        "cgroup_inet_ingress",             // 0
        "cgroup_inet_egress",              // 1
        "cgroup_inet_sock_create",         // 2
        "cgroup_sock_ops",                 // 3
        "sk_skb_stream_parser",            // 4
        "sk_skb_stream_verdict",           // 5
        "cgroup_device",                   // 6
        "sk_msg_verdict",                  // 7
        "cgroup_inet4_bind",               // 8
        "cgroup_inet6_bind",               // 9
        "cgroup_inet4_connect",            // 10
        "cgroup_inet6_connect",            // 11
        "cgroup_inet4_post_bind",          // 12
        "cgroup_inet6_post_bind",          // 13
        "cgroup_udp4_sendmsg",             // 14
        "cgroup_udp6_sendmsg",             // 15
        "lirc_mode2",                      // 16
        "flow_dissector",                  // 17
        "cgroup_sysctl",                   // 18
        "cgroup_udp4_recvmsg",             // 19
        "cgroup_udp6_recvmsg",             // 20
        "cgroup_getsockopt",               // 21
        "cgroup_setsockopt",               // 22
        "trace_raw_tp",                    // 23
        "trace_fentry",                    // 24
        "trace_fexit",                     // 25
        "modify_return",                   // 26
        "lsm_mac",                         // 27
        "trace_iter",                      // 28
        "cgroup_inet4_getpeername",        // 29
        "cgroup_inet6_getpeername",        // 30
        "cgroup_inet4_getsockname",        // 31
        "cgroup_inet6_getsockname",        // 32
        "xdp_devmap",                      // 33
        "cgroup_inet_sock_release",        // 34
        "xdp_cpumap",                      // 35
        "sk_lookup",                       // 36
        "xdp",                             // 37
        "sk_skb_verdict",                  // 38
        "sk_reuseport_select",             // 39
        "sk_reuseport_select_or_migrate",  // 40
        "perf_event",                      // 41
        "trace_kprobe_multi",              // 42
        "lsm_cgroup",                      // 43
        "struct_ops",                      // 44
        "netfilter",                       // 45
        "tcx_ingress",                     // 46
        "tcx_egress",                      // 47
        "trace_uprobe_multi",              // 48
        "cgroup_unix_connect",             // 49
        "cgroup_unix_sendmsg",             // 50
        "cgroup_unix_recvmsg",             // 51
        "cgroup_unix_getpeername",         // 52
        "cgroup_unix_getsockname",         // 53
        "netkit_primary",                  // 54
        "netkit_peer",                     // 55
        "trace_kprobe_session",            // 56
        "trace_uprobe_session",            // 57
        "trace_fsession",                  // 58
        "trace_fentry_multi",              // 59
        "trace_fexit_multi",               // 60
        "trace_fsession_multi",            // 61
    ]

    /// Exactly what `libbpf_bpf_attach_type_str` returns, or nil where libbpf returns NULL.
    public var libbpfName: String? { kernelEnumName(rawValue, in: Self.libbpfNames) }

    /// The libbpf name, or "type_<n>" for a value libbpf does not know.
    public var name: String { libbpfName ?? unknownKernelEnumName(rawValue) }

    public var description: String { name }

    /// The attach type whose libbpf name is `name` (e.g. "tcx_ingress"), if any.
    public init?(name: String) {
        guard let index = Self.libbpfNames.firstIndex(of: name) else { return nil }
        self.init(UInt32(index))
    }

    /// Every value libbpf has a name for, in numeric order.
    public static var allKnown: [BPFAttachType] {
        (0..<UInt32(libbpfNames.count)).map(BPFAttachType.init(rawValue:))
    }
}

// MARK: - Map flags

/// `map_flags` of `BPF_MAP_CREATE` (the anonymous `BPF_F_*` enum in the uapi).
///
/// Bits without a name here are kept as they are.
public struct BPFMapFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `BPF_F_NO_PREALLOC`
    public static let noPrealloc = BPFMapFlags(rawValue: 1 << 0)
    /// `BPF_F_NO_COMMON_LRU`
    public static let noCommonLRU = BPFMapFlags(rawValue: 1 << 1)
    /// `BPF_F_NUMA_NODE`
    public static let numaNode = BPFMapFlags(rawValue: 1 << 2)
    /// `BPF_F_RDONLY`
    public static let rdonly = BPFMapFlags(rawValue: 1 << 3)
    /// `BPF_F_WRONLY`
    public static let wronly = BPFMapFlags(rawValue: 1 << 4)
    /// `BPF_F_STACK_BUILD_ID`
    public static let stackBuildID = BPFMapFlags(rawValue: 1 << 5)
    /// `BPF_F_ZERO_SEED`
    public static let zeroSeed = BPFMapFlags(rawValue: 1 << 6)
    /// `BPF_F_RDONLY_PROG`
    public static let rdonlyProg = BPFMapFlags(rawValue: 1 << 7)
    /// `BPF_F_WRONLY_PROG`
    public static let wronlyProg = BPFMapFlags(rawValue: 1 << 8)
    /// `BPF_F_CLONE`
    public static let clone = BPFMapFlags(rawValue: 1 << 9)
    /// `BPF_F_MMAPABLE`
    public static let mmapable = BPFMapFlags(rawValue: 1 << 10)
    /// `BPF_F_PRESERVE_ELEMS`
    public static let preserveElems = BPFMapFlags(rawValue: 1 << 11)
    /// `BPF_F_INNER_MAP`
    public static let innerMap = BPFMapFlags(rawValue: 1 << 12)
    /// `BPF_F_LINK`
    public static let link = BPFMapFlags(rawValue: 1 << 13)
    /// `BPF_F_PATH_FD`
    public static let pathFD = BPFMapFlags(rawValue: 1 << 14)
    /// `BPF_F_VTYPE_BTF_OBJ_FD`
    public static let vtypeBTFObjFD = BPFMapFlags(rawValue: 1 << 15)
    /// `BPF_F_TOKEN_FD`
    public static let tokenFD = BPFMapFlags(rawValue: 1 << 16)
    /// `BPF_F_SEGV_ON_FAULT`
    public static let segvOnFault = BPFMapFlags(rawValue: 1 << 17)
    /// `BPF_F_NO_USER_CONV`
    public static let noUserConv = BPFMapFlags(rawValue: 1 << 18)
    /// `BPF_F_RB_OVERWRITE` (ring buffer overwrite mode). Newer than the bits above; not in every kernel.
    public static let rbOverwrite = BPFMapFlags(rawValue: 1 << 19)

    static let uapiNames: [(BPFMapFlags, String)] = [
        (.noPrealloc, "BPF_F_NO_PREALLOC"),
        (.noCommonLRU, "BPF_F_NO_COMMON_LRU"),
        (.numaNode, "BPF_F_NUMA_NODE"),
        (.rdonly, "BPF_F_RDONLY"),
        (.wronly, "BPF_F_WRONLY"),
        (.stackBuildID, "BPF_F_STACK_BUILD_ID"),
        (.zeroSeed, "BPF_F_ZERO_SEED"),
        (.rdonlyProg, "BPF_F_RDONLY_PROG"),
        (.wronlyProg, "BPF_F_WRONLY_PROG"),
        (.clone, "BPF_F_CLONE"),
        (.mmapable, "BPF_F_MMAPABLE"),
        (.preserveElems, "BPF_F_PRESERVE_ELEMS"),
        (.innerMap, "BPF_F_INNER_MAP"),
        (.link, "BPF_F_LINK"),
        (.pathFD, "BPF_F_PATH_FD"),
        (.vtypeBTFObjFD, "BPF_F_VTYPE_BTF_OBJ_FD"),
        (.tokenFD, "BPF_F_TOKEN_FD"),
        (.segvOnFault, "BPF_F_SEGV_ON_FAULT"),
        (.noUserConv, "BPF_F_NO_USER_CONV"),
        (.rbOverwrite, "BPF_F_RB_OVERWRITE"),
    ]

    /// The uapi names of the set bits, lowest bit first; unnamed bits come last as one hex value.
    public var flagNames: [String] { kernelFlagNames(rawValue, Self.uapiNames.map { ($0.0.rawValue, $0.1) }) }

    /// bpftool's rendering of map flags: hexadecimal, e.g. "0x1", "0x0".
    public var description: String { "0x" + String(rawValue, radix: 16) }
}

// MARK: - Program flags

/// `prog_flags` of `BPF_PROG_LOAD`.
///
/// Bits without a name here are kept as they are.
public struct BPFProgramFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `BPF_F_STRICT_ALIGNMENT`
    public static let strictAlignment = BPFProgramFlags(rawValue: 1 << 0)
    /// `BPF_F_ANY_ALIGNMENT`
    public static let anyAlignment = BPFProgramFlags(rawValue: 1 << 1)
    /// `BPF_F_TEST_RND_HI32`
    public static let testRndHi32 = BPFProgramFlags(rawValue: 1 << 2)
    /// `BPF_F_TEST_STATE_FREQ`
    public static let testStateFreq = BPFProgramFlags(rawValue: 1 << 3)
    /// `BPF_F_SLEEPABLE` (libbpf sets it for `SEC_SLEEPABLE` definitions, the ".s" sections).
    public static let sleepable = BPFProgramFlags(rawValue: 1 << 4)
    /// `BPF_F_XDP_HAS_FRAGS` (libbpf sets it for XDP programs of `SEC_XDP_FRAGS` definitions).
    public static let xdpHasFrags = BPFProgramFlags(rawValue: 1 << 5)
    /// `BPF_F_XDP_DEV_BOUND_ONLY`
    public static let xdpDevBoundOnly = BPFProgramFlags(rawValue: 1 << 6)
    /// `BPF_F_TEST_REG_INVARIANTS`
    public static let testRegInvariants = BPFProgramFlags(rawValue: 1 << 7)
    /// `BPF_F_TOKEN_FD`: shares its bit with the map flag; libbpf sets it in `prog_flags`
    /// when loading through a BPF token.
    public static let tokenFD = BPFProgramFlags(rawValue: 1 << 16)

    static let uapiNames: [(BPFProgramFlags, String)] = [
        (.strictAlignment, "BPF_F_STRICT_ALIGNMENT"),
        (.anyAlignment, "BPF_F_ANY_ALIGNMENT"),
        (.testRndHi32, "BPF_F_TEST_RND_HI32"),
        (.testStateFreq, "BPF_F_TEST_STATE_FREQ"),
        (.sleepable, "BPF_F_SLEEPABLE"),
        (.xdpHasFrags, "BPF_F_XDP_HAS_FRAGS"),
        (.xdpDevBoundOnly, "BPF_F_XDP_DEV_BOUND_ONLY"),
        (.testRegInvariants, "BPF_F_TEST_REG_INVARIANTS"),
        (.tokenFD, "BPF_F_TOKEN_FD"),
    ]

    /// The uapi names of the set bits, lowest bit first; unnamed bits come last as one hex value.
    public var flagNames: [String] { kernelFlagNames(rawValue, Self.uapiNames.map { ($0.0.rawValue, $0.1) }) }

    /// Hexadecimal, e.g. "0x10".
    public var description: String { "0x" + String(rawValue, radix: 16) }
}

// MARK: - Helpers

/// The name at `rawValue` in a dense libbpf name table, or nil past its end.
private func kernelEnumName(_ rawValue: UInt32, in names: [String]) -> String? {
    let index = Int(rawValue)
    return index < names.count ? names[index] : nil
}

/// The rendering of a value libbpf has no name for.
private func unknownKernelEnumName(_ rawValue: UInt32) -> String {
    "type_\(rawValue)"
}

/// Names of the set bits in `rawValue`, in table order, then leftover bits as hex.
private func kernelFlagNames(_ rawValue: UInt32, _ table: [(UInt32, String)]) -> [String] {
    var names: [String] = []
    var remaining = rawValue
    for (bit, name) in table where rawValue & bit == bit {
        names.append(name)
        remaining &= ~bit
    }
    if remaining != 0 {
        names.append("0x" + String(remaining, radix: 16))
    }
    return names
}

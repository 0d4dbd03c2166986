// libbpf's table of program section names (`section_defs` in libbpf.c):
// which program type and expected attach type a SEC("...") name gives a
// program, and libbpf's rule for matching a section name against the table
// (`sec_def_matches` / `find_sec_def`).
//
// Reference: libbpf v1.8 development line (bpf-next tools/lib/bpf/libbpf.c,
// 2026, whose libbpf.map ends at LIBBPF_1.8.0). The table below keeps
// libbpf's order, which matters: the first matching entry wins.

/// One entry of libbpf's section table.
public struct SectionDefinition: Sendable, Equatable {
    /// How `pattern` is matched against a section name.
    public enum Match: Sendable, Equatable {
        /// libbpf writes `"x"`: the section name must be exactly `x`.
        case exact
        /// libbpf writes `"x+"`: the name must be exactly `x`, or `x` followed by `/` and anything.
        case plus
        /// libbpf writes `"x/"`: the name must start with `x/` (stored with its trailing `/`).
        case prefix
    }

    /// libbpf's `SEC_*` flags (the definition's cookie), with libbpf's bit values.
    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32

        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// `SEC_EXP_ATTACH_OPT` (1): the expected attach type is dropped on kernels that lack support for it.
        public static let expectedAttachTypeOptional = Flags(rawValue: 1 << 0)
        /// `SEC_ATTACHABLE` (2): legacy marker for BPF_PROG_ATTACH-style programs.
        public static let attachable = Flags(rawValue: 1 << 1)
        /// `SEC_ATTACHABLE_OPT` (3) = `SEC_ATTACHABLE | SEC_EXP_ATTACH_OPT`.
        public static let attachableOptional: Flags = [.attachable, .expectedAttachTypeOptional]
        /// `SEC_ATTACH_BTF` (4): the attach target is a BTF ID named after the `/`.
        public static let attachBTF = Flags(rawValue: 1 << 2)
        /// `SEC_SLEEPABLE` (8): libbpf loads the program with `BPF_F_SLEEPABLE`.
        public static let sleepable = Flags(rawValue: 1 << 3)
        /// `SEC_XDP_FRAGS` (16): libbpf loads an XDP program with `BPF_F_XDP_HAS_FRAGS`.
        public static let xdpFrags = Flags(rawValue: 1 << 4)
        /// `SEC_USDT` (32): libbpf switches the attach type to uprobe-multi when the kernel has it.
        public static let usdt = Flags(rawValue: 1 << 5)
    }

    /// The pattern as libbpf writes it, minus a trailing `+` (a trailing `/` is kept).
    public let pattern: String
    public let match: Match
    public let programType: BPFProgramType
    /// The raw expected attach type libbpf gives the program (0 where libbpf's definition says 0).
    public let expectedAttachType: BPFAttachType
    public let flags: Flags

    public init(pattern: String, match: Match, programType: BPFProgramType,
                expectedAttachType: BPFAttachType, flags: Flags) {
        self.pattern = pattern
        self.match = match
        self.programType = programType
        self.expectedAttachType = expectedAttachType
        self.flags = flags
    }

    /// What to show users as the attach type: nil when libbpf's def has no meaningful expected attach type
    /// (expected attach type 0 without SEC_ATTACHABLE/SEC_ATTACHABLE_OPT/SEC_ATTACH_BTF), else expectedAttachType.
    public var shownAttachType: BPFAttachType? {
        // 0 is also BPF_CGROUP_INET_INGRESS: it means that attach type only where the definition
        // is attachable (cgroup_skb/ingress); freplace (EXT, attach-BTF) has none.
        if expectedAttachType.rawValue == 0 && !flags.contains(.attachable) {
            return nil
        }
        return expectedAttachType
    }

    /// The pattern spelled as in libbpf's table, e.g. "kprobe+" or "xdp.frags".
    public var libbpfPattern: String {
        match == .plus ? pattern + "+" : pattern
    }

    /// libbpf's `sec_def_matches`, on the bytes of the section name (as libbpf compares C strings).
    public func matches<Bytes: Collection>(utf8 name: Bytes) -> Bool where Bytes.Element == UInt8 {
        // Fast path, on contiguous bytes (native strings and arrays): the table has ~150 rows and
        // the generic UTF8View comparisons below dominated a parse's section lookups.
        if let fast = name.withContiguousStorageIfAvailable({ n in
            pattern.utf8.withContiguousStorageIfAvailable { p in Self.matches(n, pattern: p, match) }
        }), let fast {
            return fast
        }
        let patternBytes = pattern.utf8
        switch match {
        case .exact:
            return name.elementsEqual(patternBytes)
        case .prefix:
            return name.starts(with: patternBytes)
        case .plus:
            guard name.starts(with: patternBytes) else { return false }
            let rest = name.dropFirst(patternBytes.count)
            guard let next = rest.first else { return true }  // exactly the pattern
            return next == UInt8(ascii: "/")
        }
    }

    fileprivate static func matches(_ n: UnsafeBufferPointer<UInt8>, pattern p: UnsafeBufferPointer<UInt8>, _ match: Match) -> Bool {
        guard n.count >= p.count else { return false }
        for i in 0..<p.count where n[i] != p[i] { return false }
        switch match {
        case .exact: return n.count == p.count
        case .prefix: return true
        case .plus: return n.count == p.count || n[p.count] == UInt8(ascii: "/")
        }
    }

    /// libbpf's `sec_def_matches` for `name`.
    public func matches(_ name: String) -> Bool {
        matches(utf8: name.utf8)
    }
}

/// libbpf's section table and its lookup.
public enum SectionDefinitions {
    /// Every definition, in libbpf's table order.
    public static let all: [SectionDefinition] = [
        // Sockets.
        def("socket", .socketFilter),
        def("sk_reuseport/migrate", .skReuseport, .skReuseportSelectOrMigrate, .attachable),
        def("sk_reuseport", .skReuseport, .skReuseportSelect, .attachable),

        // kprobes, uprobes, syscalls, USDT.
        def("kprobe+", .kprobe),
        def("uprobe+", .kprobe),
        def("uprobe.s+", .kprobe, zero, .sleepable),
        def("kretprobe+", .kprobe),
        def("uretprobe+", .kprobe),
        def("uretprobe.s+", .kprobe, zero, .sleepable),
        def("kprobe.multi+", .kprobe, .traceKprobeMulti),
        def("kretprobe.multi+", .kprobe, .traceKprobeMulti),
        def("kprobe.session+", .kprobe, .traceKprobeSession),
        def("uprobe.multi+", .kprobe, .traceUprobeMulti),
        def("uretprobe.multi+", .kprobe, .traceUprobeMulti),
        def("uprobe.session+", .kprobe, .traceUprobeSession),
        def("uprobe.multi.s+", .kprobe, .traceUprobeMulti, .sleepable),
        def("uretprobe.multi.s+", .kprobe, .traceUprobeMulti, .sleepable),
        def("uprobe.session.s+", .kprobe, .traceUprobeSession, .sleepable),
        def("ksyscall+", .kprobe),
        def("kretsyscall+", .kprobe),
        def("usdt+", .kprobe, zero, .usdt),
        def("usdt.s+", .kprobe, zero, [.usdt, .sleepable]),

        // Traffic control (tc/ingress and tc/egress are aliases of tcx), netkit.
        def("tc/ingress", .schedCls, .tcxIngress),
        def("tc/egress", .schedCls, .tcxEgress),
        def("tcx/ingress", .schedCls, .tcxIngress),
        def("tcx/egress", .schedCls, .tcxEgress),
        def("tc", .schedCls),
        def("classifier", .schedCls),
        def("action", .schedAct),
        def("netkit/primary", .schedCls, .netkitPrimary),
        def("netkit/peer", .schedCls, .netkitPeer),

        // Tracepoints.
        def("tracepoint+", .tracepoint),
        def("tp+", .tracepoint),
        def("tracepoint.s+", .tracepoint, zero, .sleepable),
        def("tp.s+", .tracepoint, zero, .sleepable),
        def("raw_tracepoint+", .rawTracepoint),
        def("raw_tp+", .rawTracepoint),
        def("raw_tracepoint.s+", .rawTracepoint, zero, .sleepable),
        def("raw_tp.s+", .rawTracepoint, zero, .sleepable),
        def("raw_tracepoint.w+", .rawTracepointWritable),
        def("raw_tp.w+", .rawTracepointWritable),

        // BTF-based tracing.
        def("tp_btf+", .tracing, .traceRawTp, .attachBTF),
        def("tp_btf.s+", .tracing, .traceRawTp, [.attachBTF, .sleepable]),
        def("fentry+", .tracing, .traceFentry, .attachBTF),
        def("fmod_ret+", .tracing, .modifyReturn, .attachBTF),
        def("fexit+", .tracing, .traceFexit, .attachBTF),
        def("fentry.s+", .tracing, .traceFentry, [.attachBTF, .sleepable]),
        def("fmod_ret.s+", .tracing, .modifyReturn, [.attachBTF, .sleepable]),
        def("fexit.s+", .tracing, .traceFexit, [.attachBTF, .sleepable]),
        def("fsession+", .tracing, .traceFsession, .attachBTF),
        def("fsession.s+", .tracing, .traceFsession, [.attachBTF, .sleepable]),
        def("fsession.multi+", .tracing, .traceFsessionMulti),
        def("fsession.multi.s+", .tracing, .traceFsessionMulti, .sleepable),
        def("fentry.multi+", .tracing, .traceFentryMulti),
        def("fexit.multi+", .tracing, .traceFexitMulti),
        def("fentry.multi.s+", .tracing, .traceFentryMulti, .sleepable),
        def("fexit.multi.s+", .tracing, .traceFexitMulti, .sleepable),
        def("freplace+", .ext, zero, .attachBTF),
        def("lsm+", .lsm, .lsmMac, .attachBTF),
        def("lsm.s+", .lsm, .lsmMac, [.attachBTF, .sleepable]),
        def("lsm_cgroup+", .lsm, .lsmCgroup, .attachBTF),
        def("iter+", .tracing, .traceIter, .attachBTF),
        def("iter.s+", .tracing, .traceIter, [.attachBTF, .sleepable]),
        def("syscall", .syscall, zero, .sleepable),

        // XDP.
        def("xdp.frags/devmap", .xdp, .xdpDevmap, .xdpFrags),
        def("xdp/devmap", .xdp, .xdpDevmap, .attachable),
        def("xdp.frags/cpumap", .xdp, .xdpCpumap, .xdpFrags),
        def("xdp/cpumap", .xdp, .xdpCpumap, .attachable),
        def("xdp.frags", .xdp, .xdp, .xdpFrags),
        def("xdp", .xdp, .xdp, .attachableOptional),

        // Perf events, lightweight tunnels.
        def("perf_event", .perfEvent),
        def("lwt_in", .lwtIn),
        def("lwt_out", .lwtOut),
        def("lwt_xmit", .lwtXmit),
        def("lwt_seg6local", .lwtSeg6local),

        // Socket maps, devices, flow dissector.
        def("sockops", .sockOps, .cgroupSockOps, .attachableOptional),
        def("sk_skb/stream_parser", .skSkb, .skSkbStreamParser, .attachableOptional),
        def("sk_skb/stream_verdict", .skSkb, .skSkbStreamVerdict, .attachableOptional),
        def("sk_skb/verdict", .skSkb, .skSkbVerdict, .attachableOptional),
        def("sk_skb", .skSkb),
        def("sk_msg", .skMsg, .skMsgVerdict, .attachableOptional),
        def("lirc_mode2", .lircMode2, .lircMode2, .attachableOptional),
        def("flow_dissector", .flowDissector, .flowDissector, .attachableOptional),

        // cgroups.
        def("cgroup_skb/ingress", .cgroupSkb, .cgroupInetIngress, .attachableOptional),
        def("cgroup_skb/egress", .cgroupSkb, .cgroupInetEgress, .attachableOptional),
        def("cgroup/skb", .cgroupSkb),
        def("cgroup/sock_create", .cgroupSock, .cgroupInetSockCreate, .attachable),
        def("cgroup/sock_release", .cgroupSock, .cgroupInetSockRelease, .attachable),
        def("cgroup/sock", .cgroupSock, .cgroupInetSockCreate, .attachableOptional),
        def("cgroup/post_bind4", .cgroupSock, .cgroupInet4PostBind, .attachable),
        def("cgroup/post_bind6", .cgroupSock, .cgroupInet6PostBind, .attachable),
        def("cgroup/bind4", .cgroupSockAddr, .cgroupInet4Bind, .attachable),
        def("cgroup/bind6", .cgroupSockAddr, .cgroupInet6Bind, .attachable),
        def("cgroup/connect4", .cgroupSockAddr, .cgroupInet4Connect, .attachable),
        def("cgroup/connect6", .cgroupSockAddr, .cgroupInet6Connect, .attachable),
        def("cgroup/connect_unix", .cgroupSockAddr, .cgroupUnixConnect, .attachable),
        def("cgroup/sendmsg4", .cgroupSockAddr, .cgroupUdp4Sendmsg, .attachable),
        def("cgroup/sendmsg6", .cgroupSockAddr, .cgroupUdp6Sendmsg, .attachable),
        def("cgroup/sendmsg_unix", .cgroupSockAddr, .cgroupUnixSendmsg, .attachable),
        def("cgroup/recvmsg4", .cgroupSockAddr, .cgroupUdp4Recvmsg, .attachable),
        def("cgroup/recvmsg6", .cgroupSockAddr, .cgroupUdp6Recvmsg, .attachable),
        def("cgroup/recvmsg_unix", .cgroupSockAddr, .cgroupUnixRecvmsg, .attachable),
        def("cgroup/getpeername4", .cgroupSockAddr, .cgroupInet4Getpeername, .attachable),
        def("cgroup/getpeername6", .cgroupSockAddr, .cgroupInet6Getpeername, .attachable),
        def("cgroup/getpeername_unix", .cgroupSockAddr, .cgroupUnixGetpeername, .attachable),
        def("cgroup/getsockname4", .cgroupSockAddr, .cgroupInet4Getsockname, .attachable),
        def("cgroup/getsockname6", .cgroupSockAddr, .cgroupInet6Getsockname, .attachable),
        def("cgroup/getsockname_unix", .cgroupSockAddr, .cgroupUnixGetsockname, .attachable),
        def("cgroup/sysctl", .cgroupSysctl, .cgroupSysctl, .attachable),
        def("cgroup/getsockopt", .cgroupSockopt, .cgroupGetsockopt, .attachable),
        def("cgroup/setsockopt", .cgroupSockopt, .cgroupSetsockopt, .attachable),
        def("cgroup/dev", .cgroupDevice, .cgroupDevice, .attachableOptional),

        // struct_ops, socket lookup, netfilter.
        def("struct_ops+", .structOps),
        def("struct_ops.s+", .structOps, zero, .sleepable),
        def("sk_lookup", .skLookup, .skLookup, .attachable),
        def("netfilter", .netfilter, .netfilter),
    ]

    /// libbpf's `find_sec_def` over the built-in table (no custom handlers): the first
    /// definition in table order that matches, or nil. A leading "?" (libbpf's
    /// "don't autoload" marker) must already be stripped by the caller.
    public static func match(_ sectionName: String) -> SectionDefinition? {
        // The name's bytes once, compared against each row's pattern bytes made once per process:
        // a short (inline) String offers no contiguous UTF-8 to `matches(utf8:)`, which then
        // compared through the generic UTF8View for every row.
        var name = sectionName
        return name.withUTF8 { n in
            for (row, bytes) in zip(all, patternBytes) {
                if bytes.withUnsafeBufferPointer({ SectionDefinition.matches(n, pattern: $0, row.match) }) { return row }
            }
            return nil
        }
    }

    /// Each row's pattern as bytes, in table order.
    private static let patternBytes: [[UInt8]] = all.map { Array($0.pattern.utf8) }

    /// `match(_:)` on the raw bytes of a section name, as read from an ELF string table.
    public static func match<Bytes: Collection>(utf8 sectionName: Bytes) -> SectionDefinition?
    where Bytes.Element == UInt8 {
        all.first { $0.matches(utf8: sectionName) }
    }

    // MARK: Table construction

    /// libbpf writes 0 for "no expected attach type" (numerically BPF_CGROUP_INET_INGRESS).
    private static let zero = BPFAttachType(rawValue: 0)

    /// One table row from libbpf's spelling of the pattern ("x", "x+" or "x/").
    private static func def(_ spec: String, _ programType: BPFProgramType,
                            _ attachType: BPFAttachType = BPFAttachType(rawValue: 0),
                            _ flags: SectionDefinition.Flags = []) -> SectionDefinition {
        let pattern: String
        let match: SectionDefinition.Match
        if spec.hasSuffix("+") {
            pattern = String(spec.dropLast())
            match = .plus
        } else if spec.hasSuffix("/") {
            pattern = spec
            match = .prefix
        } else {
            pattern = spec
            match = .exact
        }
        return SectionDefinition(pattern: pattern, match: match, programType: programType,
                                 expectedAttachType: attachType, flags: flags)
    }
}

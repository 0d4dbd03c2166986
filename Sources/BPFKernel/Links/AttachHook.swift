import BPFObject

/// The hook a program attaches to, read from its `SEC()` name the way libbpf's
/// `bpf_program__attach` picks an `attach_fn`, completed (or overridden) by the request's target.
/// Worked out before anything touches the kernel, so a bad request costs no syscall.
enum AttachHook: Equatable, Sendable {
    /// `tracepoint/CAT/NAME`, `tp/CAT/NAME`: a perf event on the tracefs event, then a link.
    case tracepoint(category: String, name: String)
    /// `raw_tp/NAME`, `raw_tracepoint/NAME` (and `.w`, `.s`): BPF_RAW_TRACEPOINT_OPEN.
    case rawTracepoint(name: String)
    /// `tp_btf/`, `fentry/`, `fexit/`, `fmod_ret/`, `lsm/` (and `.s`): the target was fixed at
    /// load (attach_btf_id); the link needs only the attach type.
    case btf(attachType: UInt32, kind: LinkKind)
    /// `iter/TARGET`; `map` for iterators over one map's elements.
    case iter(target: String, map: String?)
    /// `kprobe/FUNC[+OFF]`, `kretprobe/FUNC`, `ksyscall/NAME`, `kretsyscall/NAME`.
    case kprobe(function: String, offset: UInt64, retprobe: Bool)
    /// `kprobe.multi/PATTERN`, `kretprobe.multi/PATTERN`.
    case kprobeMulti(pattern: String, retprobe: Bool)
    /// `uprobe/PATH:FUNC[+OFF]`, `uretprobe/...` (and `.s`), or bare `uprobe` with the target's
    /// binary, function, offset and pid.
    case uprobe(binary: String, function: String?, offset: UInt64, pid: Int32?, retprobe: Bool)
    case xdp(interface: String, mode: XDPMode?, replace: Bool)
    case tcx(interface: String, direction: TCXDirection)
    /// Any cgroup attach type the section definitions give (cgroup_skb, cgroup/..., sockops,
    /// lsm_cgroup), on a cgroup v2 directory.
    case cgroup(path: String, attachType: UInt32)

    var kind: LinkKind {
        switch self {
        case .tracepoint: .tracepoint
        case .rawTracepoint: .rawTracepoint
        case .btf(_, let kind): kind
        case .iter: .iter
        case .kprobe(_, _, let ret): ret ? .kretprobe : .kprobe
        case .kprobeMulti(_, let ret): ret ? .kretprobeMulti : .kprobeMulti
        case .uprobe(_, _, _, _, let ret): ret ? .uretprobe : .uprobe
        case .xdp: .xdp
        case .tcx: .tcx
        case .cgroup: .cgroup
        }
    }

    /// The `SEC()` prefixes we attach, as an error lists them.
    static let supportedSections = [
        "tracepoint/CAT/NAME", "tp/CAT/NAME", "raw_tracepoint/NAME", "raw_tp/NAME", "tp_btf/", "fentry/", "fexit/",
        "fmod_ret/", "lsm/", "iter/", "kprobe/", "kretprobe/", "ksyscall/", "kretsyscall/", "kprobe.multi/",
        "kretprobe.multi/", "uprobe", "uretprobe", "xdp", "xdp.frags", "tcx/ingress", "tcx/egress", "tc", "classifier",
        "cgroup_skb/", "cgroup/", "sockops", "lsm_cgroup/",
    ]

    /// Map iterators: their `iter_info` names the map (`bpf_iter_link_info.map`).
    static let mapIterators: Set<String> = ["bpf_map_elem", "bpf_sk_storage_map", "sockmap"]

    static func resolve(_ p: ProgramSpec, target t: AttachTarget) throws(LinkError) -> AttachHook {
        let section = p.sectionName
        let slash = section.firstIndex(of: "/")
        let head = slash.map { String(section[..<$0]) } ?? section
        let rest = slash.map { String(section[section.index(after: $0)...]) }
        let unsupported = LinkError.unsupportedSection(program: p.name, section: section, supported: supportedSections)
        func missing(_ field: String, _ hook: String) -> LinkError { .missingTarget(program: p.name, field: field, hook: hook) }

        switch head {
        case "tracepoint", "tp", "tracepoint.s", "tp.s":
            guard let spec = nonEmpty(rest) ?? t.function else { throw missing("function", "tracepoint (CATEGORY/NAME)") }
            let parts = spec.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy(isTracefsName) else { throw .unknownTracepoint(spec) }
            return .tracepoint(category: String(parts[0]), name: String(parts[1]))

        case "raw_tracepoint", "raw_tp", "raw_tracepoint.w", "raw_tp.w", "raw_tracepoint.s", "raw_tp.s":
            guard let name = nonEmpty(rest) ?? t.function else { throw missing("function", "raw_tracepoint") }
            return .rawTracepoint(name: name)

        case "tp_btf", "tp_btf.s", "fentry", "fentry.s", "fexit", "fexit.s", "fmod_ret", "fmod_ret.s":
            guard p.type == .tracing else { throw unsupported }
            return .btf(attachType: p.expectedAttachType.rawValue, kind: .tracing)

        case "lsm", "lsm.s":
            guard p.type == .lsm else { throw unsupported }
            return .btf(attachType: p.expectedAttachType.rawValue, kind: .lsm)

        case "iter", "iter.s":
            guard let target = nonEmpty(rest) else { throw unsupported }
            if mapIterators.contains(target), t.map == nil { throw missing("map", "iter/\(target)") }
            return .iter(target: target, map: mapIterators.contains(target) ? t.map : nil)

        case "kprobe", "kretprobe":
            let retprobe = head == "kretprobe"
            var function = t.function
            var offset = t.offset ?? 0
            if let spec = nonEmpty(rest) {
                let (name, off) = try splitOffset(spec, symbol: spec)
                function = t.function ?? name
                if t.offset == nil { offset = off }
            }
            guard let function, !function.isEmpty else { throw missing("function", head) }
            if retprobe && offset != 0 { throw .unknownFunction(name: function, reason: "a kretprobe cannot have an offset") }
            return .kprobe(function: function, offset: offset, retprobe: retprobe)

        case "ksyscall", "kretsyscall":
            guard let name = nonEmpty(rest) ?? t.function else { throw missing("function", head) }
            return .kprobe(function: syscallPrefix + name, offset: 0, retprobe: head == "kretsyscall")

        case "kprobe.multi", "kretprobe.multi":
            guard let pattern = nonEmpty(rest) ?? t.function else { throw missing("function", head) }
            return .kprobeMulti(pattern: pattern, retprobe: head == "kretprobe.multi")

        case "uprobe", "uretprobe", "uprobe.s", "uretprobe.s":
            return try uprobe(p, head: head, rest: nonEmpty(rest), target: t)

        case "xdp", "xdp.frags":
            // xdp/devmap and xdp/cpumap programs run from a map entry, not on an interface.
            guard rest == nil, p.type == .xdp else { throw unsupported }
            guard let interface = t.interface else { throw missing("interface", head) }
            return .xdp(interface: interface, mode: t.xdpMode, replace: t.replace)

        case "tcx", "tc", "classifier":
            guard p.type == .schedCls else { throw unsupported }
            let named: TCXDirection? = switch rest {
            case "ingress": .ingress
            case "egress": .egress
            case nil: nil
            default: throw unsupported
            }
            guard let direction = t.direction ?? named else { throw missing("direction", "tcx") }
            guard let interface = t.interface else { throw missing("interface", "tcx") }
            return .tcx(interface: interface, direction: direction)

        default:
            if let hook = try cgroup(p, target: t) { return hook }
            throw unsupported
        }
    }

    /// Cgroup hooks, by program type as libbpf's `attach_cgroup` takes them: the expected attach
    /// type the section gave is the hook. `cgroup/skb` names no direction (libbpf: ingress);
    /// the target's direction picks one.
    private static func cgroup(_ p: ProgramSpec, target t: AttachTarget) throws(LinkError) -> AttachHook? {
        let cgroupTypes: Set<BPFProgramType> = [.cgroupSkb, .cgroupSock, .cgroupSockAddr, .sockOps, .cgroupDevice,
                                                .cgroupSysctl, .cgroupSockopt]
        let isLSMCgroup = p.type == .lsm && p.expectedAttachType == .lsmCgroup
        guard cgroupTypes.contains(p.type) || isLSMCgroup else { return nil }
        var attachType = p.expectedAttachType.rawValue
        if p.type == .cgroupSkb, p.sectionName == "cgroup/skb", t.direction == .egress {
            attachType = BPFAttachType.cgroupInetEgress.rawValue
        }
        guard let path = t.cgroup else { throw .missingTarget(program: p.name, field: "cgroup", hook: "cgroup") }
        return .cgroup(path: path, attachType: attachType)
    }

    /// libbpf's `attach_uprobe` format, `uprobe/PATH:FUNC[+OFFSET]`; the target's fields win
    /// over the section's, and its offset adds to the function's.
    private static func uprobe(_ p: ProgramSpec, head: String, rest: String?, target t: AttachTarget) throws(LinkError) -> AttachHook {
        var binary = t.binary
        var function = t.function
        var offset = t.offset ?? 0
        if let rest {
            guard let colon = rest.firstIndex(of: ":") else {
                throw .unknownFunction(name: rest, reason: "section '\(p.sectionName)' is not '\(head)/PATH:FUNCTION[+OFFSET]'")
            }
            let path = String(rest[..<colon])
            let (name, off) = try splitOffset(String(rest[rest.index(after: colon)...]), symbol: rest)
            if binary == nil { binary = path }
            if function == nil, !name.isEmpty { function = name }
            offset &+= off
        }
        guard let binary, !binary.isEmpty else { throw .missingTarget(program: p.name, field: "binary", hook: head) }
        guard function != nil || t.offset != nil || rest != nil else {
            throw .missingTarget(program: p.name, field: "function", hook: head)
        }
        return .uprobe(binary: binary, function: function, offset: offset, pid: t.pid,
                       retprobe: head.hasPrefix("uretprobe"))
    }

    /// `NAME+OFFSET` → (NAME, OFFSET) with C's base rules (0x hex, 0 octal); no `+`: offset 0.
    private static func splitOffset(_ text: String, symbol: String) throws(LinkError) -> (String, UInt64) {
        guard let plus = text.firstIndex(of: "+") else { return (text, 0) }
        let name = String(text[..<plus])
        let number = String(text[text.index(after: plus)...])
        guard let value = parseCInteger(number) else { throw .unknownFunction(name: symbol, reason: "'\(number)' is not an offset") }
        return (name, value)
    }

    static func parseCInteger(_ text: String) -> UInt64? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt64(text.dropFirst(2), radix: 16) }
        if text.count > 1, text.hasPrefix("0") { return UInt64(text.dropFirst(), radix: 8) }
        return UInt64(text)
    }

    private static func nonEmpty(_ s: String?) -> String? {
        guard let s, !s.isEmpty else { return nil }
        return s
    }

    /// A tracefs directory name: no path tricks ("..", empty) reach the file system.
    private static func isTracefsName(_ s: Substring) -> Bool {
        !s.isEmpty && s != "." && s != ".." && !s.contains("\0")
    }

    /// The architecture's syscall wrapper prefix (libbpf's `arch_specific_syscall_pfx`).
    static var syscallPrefix: String {
        #if arch(x86_64)
        "__x64_sys_"
        #elseif arch(arm64)
        "__arm64_sys_"
        #else
        "sys_"
        #endif
    }
}

/// What attaching needs beyond the program's `SEC()` name, and what an attachment is. The
/// `SEC()` name says which hook (as libbpf's `bpf_program__attach` reads it); the target says
/// where, for hooks that need a place: an interface, a cgroup, a binary, a function, a map.
public struct AttachTarget: Sendable, Equatable {
    /// XDP and tcx: the network interface's name.
    public var interface: String?
    /// XDP: `generic` (skb mode) or `native` (driver mode); nil lets the kernel choose.
    public var xdpMode: XDPMode?
    /// tcx: which direction.
    public var direction: TCXDirection?
    /// cgroup programs: a cgroup v2 directory.
    public var cgroup: String?
    /// uprobes: the ELF binary or library.
    public var binary: String?
    /// uprobes: the symbol in `binary`; kprobes: the kernel function (overrides the SEC name's).
    public var function: String?
    /// uprobes: a file offset in `binary` (added to `function`'s when both are given).
    public var offset: UInt64?
    /// uprobes: only this process (nil: every process).
    public var pid: Int32?
    /// Map iterators: the name of a map of the same load.
    public var map: String?
    /// XDP: replace a program already attached to the interface instead of refusing.
    public var replace: Bool = false

    public init() {}
}

public enum XDPMode: String, Sendable, CaseIterable { case generic, native }
public enum TCXDirection: String, Sendable, CaseIterable { case ingress, egress }

/// The kinds of attachment we make, named as users know the hooks.
public enum LinkKind: String, Sendable, CaseIterable {
    case tracepoint
    case rawTracepoint = "raw_tracepoint"
    /// tp_btf, fentry, fexit, fmod_ret (BPF_PROG_TYPE_TRACING).
    case tracing
    case lsm
    case iter
    case kprobe
    case kretprobe
    case kprobeMulti = "kprobe_multi"
    case kretprobeMulti = "kretprobe_multi"
    case uprobe
    case uretprobe
    case xdp
    case tcx
    case cgroup
}

/// Why an attach (or the adoption of a pinned link) failed, with what it concerns.
public enum LinkError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The program's section names no hook we attach to; `supported` lists the SEC() prefixes we do.
    case unsupportedSection(program: String, section: String, supported: [String])
    /// The hook needs a target the request did not give (e.g. "interface" for XDP).
    case missingTarget(program: String, field: String, hook: String)
    case unknownProgram(String)
    case unknownInterface(String)
    case unknownCgroup(path: String, reason: String)
    case unknownBinary(path: String, reason: String)
    case unknownFunction(name: String, reason: String)
    case unknownTracepoint(String)
    case unknownMap(String)
    /// The hook is taken (an interface with an XDP program and no `replace`): who holds it.
    case conflict(hook: String, holder: String)
    /// A pinned link is not the one recorded (its kernel id differs) or is gone.
    case pin(path: String, reason: String)
    /// The kernel refused; `context` says what we were doing.
    case kernel(BPFError, context: String)

    public var description: String {
        switch self {
        case .unsupportedSection(let p, let s, let supported):
            return "program '\(p)': section '\(s)' names no hook we attach to; supported: \(supported.joined(separator: ", "))"
        case .missingTarget(let p, let f, let h): return "program '\(p)': \(h) needs \"\(f)\""
        case .unknownProgram(let p): return "no program named '\(p)'"
        case .unknownInterface(let i): return "no network interface named '\(i)'"
        case .unknownCgroup(let path, let r): return "cgroup '\(path)': \(r)"
        case .unknownBinary(let path, let r): return "binary '\(path)': \(r)"
        case .unknownFunction(let n, let r): return "function '\(n)': \(r)"
        case .unknownTracepoint(let t): return "no tracepoint '\(t)' in tracefs"
        case .unknownMap(let m): return "no map named '\(m)' in this load"
        case .conflict(let hook, let holder): return "\(hook) is taken by \(holder)"
        case .pin(let path, let r): return "link pin '\(path)': \(r)"
        case .kernel(let e, let context): return "\(context): \(e)"
        }
    }
}

/// What the kernel reports for a link (BPF_OBJ_GET_INFO_BY_FD).
public struct LinkInfo: Sendable, Equatable {
    public var id: UInt32
    /// `enum bpf_link_type`.
    public var type: UInt32
    /// The kernel's name for `type` ("tracing", "xdp", "perf_event", ...).
    public var typeName: String
    public var programID: UInt32
    /// Type-specific facts the kernel gave (e.g. "ifindex", "attach_type", "cgroup_id",
    /// "tp_name", "target_btf_id"), as text.
    public var details: [String: String]

    public init(id: UInt32, type: UInt32, typeName: String, programID: UInt32, details: [String: String]) {
        self.id = id
        self.type = type
        self.typeName = typeName
        self.programID = programID
        self.details = details
    }
}

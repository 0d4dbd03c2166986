import Glibc
import Synchronization

/// A program attached to a kernel hook: owns the link fd (and, for perf-event based hooks, the
/// perf event fd). The attachment lasts while the link fd is open or the link is pinned.
///
/// `detach()` ends it: BPF_LINK_DETACH where the link type has it (xdp, tcx, cgroup, netns,
/// netfilter, ...), PERF_EVENT_IOC_DISABLE for perf-event links, then the pins this object made
/// or was adopted from are removed and the fds closed. Other link types (tracing, raw_tp, iter,
/// kprobe_multi) end when their last fd and pin go: a link also opened elsewhere (by id, a pin
/// this object does not know, or the fd copies of a child this process is forking) outlives
/// `detach()` until those go too. Dropping the object without
/// `detach()` closes the fds only: a pinned link stays attached, for `adopt` to take over.
public final class AttachedLink: Sendable {
    /// The program's name in its object.
    public let program: String
    public let kind: LinkKind
    /// Where, for people: "syscalls/sys_enter_getpid", "veth0 (ifindex 7, generic)", ...
    public let target: String
    /// The kernel's link id.
    public let id: UInt32
    /// What attaching did besides attaching (e.g. "mounted tracefs at /sys/kernel/tracing").
    public let notes: [String]

    let linkFD: BPFFD
    /// perf_event_open's fd for tracepoint and probe links; the link holds its own reference,
    /// so this is kept only to close it with the link, as libbpf does.
    let perfFD: BPFFD?
    private let state: Mutex<State>

    private struct State {
        var detached = false
        /// Pins made by `pin(at:)` or adopted from: `detach()` removes them.
        var pins: [String] = []
    }

    init(program: String, kind: LinkKind, target: String, linkFD: BPFFD, perfFD: BPFFD? = nil,
         notes: [String] = [], pins: [String] = []) throws(LinkError) {
        let info: LinkInfo
        do { info = try BPFSys.objGetInfoByFD(linkFD: linkFD) } catch {
            linkFD.close()
            perfFD?.close()
            throw .kernel(error, context: "reading the new link of program '\(program)'")
        }
        self.program = program
        self.kind = kind
        self.target = target
        self.id = info.id
        self.notes = notes
        self.linkFD = linkFD
        self.perfFD = perfFD
        self.state = Mutex(State(pins: pins))
    }

    public var isDetached: Bool { state.withLock { $0.detached } }

    /// What the kernel reports for this link now.
    public func info() throws(LinkError) -> LinkInfo {
        try whileAttached("reading link \(id)") { () throws(BPFError) in try BPFSys.objGetInfoByFD(linkFD: linkFD) }
    }

    /// Pins the link at `path` on bpffs: it stays attached without any fd until the pin is
    /// removed (by `detach()`, or unlink).
    public func pin(at path: String) throws(LinkError) {
        try state.withLock { s throws(LinkError) in
            guard !s.detached else { throw .pin(path: path, reason: "link \(id) is detached") }
            do { try BPFSys.objPin(fd: linkFD, path: path) } catch { throw .pin(path: path, reason: "\(error)") }
            s.pins.append(path)
        }
    }

    /// Detaches from the hook (where the link type can), removes this link's known pins, closes
    /// the fds. Idempotent; errors are not reported (the link is gone either way, or defunct).
    public func detach() {
        let pins: [String]? = state.withLock { s in
            guard !s.detached else { return nil }
            s.detached = true
            return s.pins
        }
        guard let pins else { return }
        // EOPNOTSUPP/EINVAL: a link type without detach; closing below ends it.
        try? BPFSys.linkDetach(fd: linkFD)
        // A perf event stops firing now, whoever else still holds it.
        if let perfFD { PerfEvents.disable(perfFD) }
        for path in pins { unlink(path) }
        linkFD.close()
        perfFD?.close()
    }

    /// Takes over a link pinned at `path` (by this process before a restart, or another), after
    /// checking it is the link recorded: a link, with kernel id `expectedID`. The pin stays and
    /// becomes this object's (`detach()` removes it).
    public static func adopt(pinnedAt path: String, expectedID: UInt32, program: String, kind: LinkKind,
                             target: String) throws(LinkError) -> AttachedLink {
        let fd: BPFFD
        do { fd = try BPFSys.objGet(path: path) } catch {
            throw .pin(path: path, reason: error.errno == ENOENT ? "no pin there (the link is gone)" : "cannot open it: \(error)")
        }
        guard isLink(fd) else {
            fd.close()
            throw .pin(path: path, reason: "replaced: the pin holds a BPF object that is not a link")
        }
        let info: LinkInfo
        do { info = try BPFSys.objGetInfoByFD(linkFD: fd) } catch {
            fd.close()
            throw .kernel(error, context: "reading the link pinned at \(path)")
        }
        guard info.id == expectedID else {
            fd.close()
            throw .pin(path: path, reason: "replaced: the pin holds link id \(info.id), the attachment had id \(expectedID)")
        }
        return try AttachedLink(program: program, kind: kind, target: target, linkFD: fd, pins: [path])
    }

    /// An fd is a link when its anonymous inode says so (`anon_inode:bpf-link`); BPF_OBJ_GET
    /// opens maps and programs too, and their info would be misread as a link's.
    private static func isLink(_ fd: BPFFD) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBufferPointer { b in
            b.baseAddress.map { base in
                base.withMemoryRebound(to: CChar.self, capacity: b.count) { readlink("/proc/self/fd/\(fd.rawValue)", $0, b.count - 1) }
            } ?? -1
        }
        guard n > 0 else { return false }
        return String(decoding: buffer[0..<n], as: UTF8.self) == "anon_inode:bpf-link"
    }

    /// Runs `body` while the link is attached, turning its failure into `.kernel`.
    func whileAttached<R>(_ what: String, _ body: () throws(BPFError) -> R) throws(LinkError) -> R {
        try state.withLock { s throws(LinkError) -> R in
            guard !s.detached else { throw .kernel(.invalidArgument("link \(id) is detached"), context: what) }
            do throws(BPFError) { return try body() } catch { throw .kernel(error, context: what) }
        }
    }

    deinit {
        linkFD.close()
        perfFD?.close()
    }
}

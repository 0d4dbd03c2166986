import BPFObject
import Glibc

extension LoadedObject {
    /// Attaches a loaded program to the hook its `SEC()` name says (as libbpf's
    /// `bpf_program__attach`), at the place `target` gives where the hook needs one (an
    /// interface, a cgroup, a binary, ...). The target is checked before the kernel is asked.
    /// The link lasts while the returned object (or a pin of it) does.
    public func attach(program name: String, target: AttachTarget) throws(LinkError) -> AttachedLink {
        guard let programSpec = spec.programs.first(where: { $0.name == name && !$0.isSubprogram }) else {
            throw .unknownProgram(name)
        }
        let hook = try AttachHook.resolve(programSpec, target: target)
        let context = "attaching program '\(name)'"
        guard let loaded = program(named: name) else {
            throw .kernel(.invalidArgument("program '\(name)' was not loaded ('?\(programSpec.sectionName)': autoload off)"), context: context)
        }
        guard isLoaded else { throw .kernel(.invalidArgument("the object has been unloaded"), context: context) }
        let attachment = Attachment(program: name, fd: loaded.fd, section: programSpec.sectionName)
        switch hook {
        case .tracepoint(let category, let event):
            return try attachment.tracepoint(category: category, name: event)
        case .rawTracepoint(let event):
            return try attachment.rawTracepoint(event)
        case .btf(let attachType, let kind):
            return try attachment.btf(attachType: attachType, kind: kind, target: programSpec.attachTarget ?? programSpec.sectionName)
        case .iter(let iterTarget, let mapName):
            var map: LoadedMap?
            if let mapName {
                guard let m = self.map(named: mapName) else { throw .unknownMap(mapName) }
                map = m
            }
            return try attachment.iter(iterTarget, map: map)
        case .kprobe(let function, let offset, let retprobe):
            return try attachment.kprobe(function: function, offset: offset, retprobe: retprobe)
        case .kprobeMulti(let pattern, let retprobe):
            return try attachment.kprobeMulti(pattern: pattern, retprobe: retprobe)
        case .uprobe(let binary, let function, let offset, let pid, let retprobe):
            return try attachment.uprobe(binary: binary, function: function, offset: offset, pid: pid, retprobe: retprobe)
        case .xdp(let interface, let mode, let replace):
            return try attachment.xdp(interface: interface, mode: mode, replace: replace)
        case .tcx(let interface, let direction):
            return try attachment.tcx(interface: interface, direction: direction)
        case .cgroup(let path, let attachType):
            return try attachment.cgroup(path: path, attachType: attachType)
        }
    }
}

/// One attach under way: the program, its fd and section, and the hook-specific steps (this file:
/// the tracing hooks; the others in their own files).
struct Attachment {
    let program: String
    let fd: BPFFD
    let section: String

    func failure(_ error: BPFError, _ hook: String) -> LinkError {
        .kernel(error, context: "attaching program '\(program)' to \(hook)")
    }

    /// `tracepoint/CAT/NAME`: the tracefs event's id, a perf event on it (every process, CPU 0,
    /// as libbpf's `perf_event_open_tracepoint`), and a BPF_PERF_EVENT link on that event.
    func tracepoint(category: String, name: String) throws(LinkError) -> AttachedLink {
        let (root, note) = try Tracefs.root()
        let id = try Tracefs.tracepointID(root: root, category: category, name: name)
        let hook = "tracepoint \(category)/\(name)"
        let perf: BPFFD
        do {
            perf = try PerfEvents.open(context: "opening a perf event on \(hook) (id \(id))") { _ in
                PerfEventAttr(type: PerfEventAttr.tracepointType, config: id)
            }
        } catch {
            throw failure(error, hook)
        }
        return try perfLink(perf, kind: .tracepoint, target: "\(category)/\(name)", hook: hook, notes: note.map { [$0] } ?? [])
    }

    /// The BPF_PERF_EVENT link on an open perf event (tracepoints, kprobes, uprobes). The event
    /// fd is closed if the link cannot be made; else the link owns both.
    func perfLink(_ perf: BPFFD, kind: LinkKind, target: String, hook: String, notes: [String]) throws(LinkError) -> AttachedLink {
        let link: BPFFD
        do {
            link = try BPFSys.linkCreate(programFD: fd, target: .fd(perf), attachType: BPFAttachType.perfEvent.rawValue,
                                         context: "linking program '\(program)' to the perf event of \(hook)")
            try PerfEvents.enable(perf)
        } catch {
            perf.close()
            throw failure(error, hook)
        }
        return try AttachedLink(program: program, kind: kind, target: target, linkFD: link, perfFD: perf, notes: notes)
    }

    /// `raw_tp/NAME`: BPF_RAW_TRACEPOINT_OPEN with the tracepoint's name.
    func rawTracepoint(_ name: String) throws(LinkError) -> AttachedLink {
        let link: BPFFD
        do { link = try BPFSys.rawTracepointOpen(name: name, programFD: fd) } catch {
            if error.errno == ENOENT { throw .unknownTracepoint(name) }
            throw failure(error, "raw tracepoint \(name)")
        }
        return try AttachedLink(program: program, kind: .rawTracepoint, target: name, linkFD: link)
    }

    /// tp_btf, fentry, fexit, fmod_ret, lsm: the kernel knows the target from the load
    /// (attach_btf_id); the link names only the attach type. Where BPF_LINK_CREATE does not take
    /// these (before 5.x, and tp_btf before 6.10) it answers EINVAL, and libbpf's `bpf_link_create`
    /// falls back to BPF_RAW_TRACEPOINT_OPEN without a name; so do we.
    func btf(attachType: UInt32, kind: LinkKind, target: String) throws(LinkError) -> AttachedLink {
        let hook = "\(BPFAttachType(rawValue: attachType).name) \(target)"
        let link: BPFFD
        do {
            link = try BPFSys.linkCreate(programFD: fd, target: .none, attachType: attachType,
                                         context: "linking program '\(program)' to \(hook)")
        } catch let error where error.errno == EINVAL && Self.rawTracepointFallback.contains(attachType) {
            do { link = try BPFSys.rawTracepointOpen(name: nil, programFD: fd) } catch { throw failure(error, hook) }
        } catch {
            throw failure(error, hook)
        }
        return try AttachedLink(program: program, kind: kind, target: target, linkFD: link)
    }

    /// BPF_TRACE_RAW_TP, BPF_TRACE_FENTRY, BPF_TRACE_FEXIT, BPF_MODIFY_RETURN, BPF_LSM_MAC.
    static let rawTracepointFallback: Set<UInt32> = [23, 24, 25, 26, 27]

    /// `iter/TARGET`: a BPF_TRACE_ITER link; map iterators carry the map's fd in `iter_info`.
    /// Nothing runs until the link is read (`AttachedLink.readIterator`).
    func iter(_ iterTarget: String, map: LoadedMap?) throws(LinkError) -> AttachedLink {
        let hook = "iterator \(iterTarget)"
        let link: BPFFD
        do {
            link = try BPFSys.linkCreate(programFD: fd, target: .none, attachType: BPFAttachType.traceIter.rawValue,
                                         options: map.map { .iterMap($0.fd) } ?? .none,
                                         context: "linking program '\(program)' to \(hook)")
        } catch {
            throw failure(error, hook)
        }
        let target = map.map { "\(iterTarget) of map \($0.spec.name)" } ?? iterTarget
        return try AttachedLink(program: program, kind: .iter, target: target, linkFD: link)
    }
}

extension LoadedObject {
    /// Whether `program`'s SEC() name is a complete hook, one `attach(program:target:)` finds with
    /// an empty target (libbpf's auto-attach): decided from the name alone, without the kernel.
    /// XDP, tcx, cgroup programs and uprobes without a binary need a place; `syscall` and
    /// the like name no hook.
    public func autoAttachable(program: String) -> Bool {
        guard let p = spec.programs.first(where: { $0.name == program && !$0.isSubprogram }) else { return false }
        return (try? AttachHook.resolve(p, target: AttachTarget())) != nil
    }
}

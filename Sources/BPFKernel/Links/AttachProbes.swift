import BPFObject
import Glibc

/// kprobes, kprobe_multi and uprobes. Single probes are perf events of the kprobe/uprobe PMU
/// (as libbpf's `perf_event_open_probe`, not the legacy tracefs `kprobe_events` files), linked
/// with BPF_PERF_EVENT; kprobe_multi is a link of its own.
extension Attachment {
    /// `kprobe/FUNC[+OFF]`, `kretprobe/FUNC`: config1 points at the function's name, config2 is
    /// the offset into it; the retprobe bit comes from the PMU's format.
    func kprobe(function: String, offset: UInt64, retprobe: Bool) throws(LinkError) -> AttachedLink {
        let pmu = ProbePMU.kprobe
        guard let type = pmu.type() else {
            throw .unknownFunction(name: function, reason: "this kernel has no kprobes (no kprobe PMU at \(pmu.directory): CONFIG_KPROBES is off)")
        }
        let config = try retprobeConfig(pmu, retprobe: retprobe) { () throws(LinkError) -> Never in
            throw .unknownFunction(name: function, reason: "the kprobe PMU has no retprobe format bit (\(pmu.directory)/format/retprobe)")
        }
        let target = offset == 0 ? function : "\(function)+0x\(String(offset, radix: 16))"
        let hook = "\(retprobe ? "kretprobe" : "kprobe") \(target)"
        let perf: BPFFD
        do {
            perf = try PerfEvents.open(strings: [function], context: "opening a \(hook) perf event") { names in
                PerfEventAttr(type: type, config: config, config1: names[0], config2: offset)
            }
        } catch {
            // ENOENT: no such symbol; EINVAL: not probeable there (blacklisted, not on an
            // instruction boundary, inside another function).
            if error.errno == ENOENT || error.errno == EINVAL {
                throw .unknownFunction(name: function, reason: "the kernel cannot probe it: \(error)")
            }
            throw failure(error, hook)
        }
        return try perfLink(perf, kind: retprobe ? .kretprobe : .kprobe, target: target, hook: hook, notes: [])
    }

    /// `kprobe.multi/PATTERN`: a glob resolved against tracefs's `available_filter_functions`
    /// (as libbpf does), then one BPF_TRACE_KPROBE_MULTI link over every match, by name. A plain
    /// name goes to the kernel as it is (it resolves names itself), without tracefs.
    func kprobeMulti(pattern: String, retprobe: Bool) throws(LinkError) -> AttachedLink {
        var names = [pattern]
        var note: String?
        if pattern.contains(where: { "*?[".contains($0) }) {
            let root: String
            (root, note) = try Tracefs.root()
            names = try Tracefs.traceableFunctions(root: root, matching: pattern)
            guard !names.isEmpty else {
                throw .unknownFunction(name: pattern, reason: "no traceable kernel function matches it (\(root)/available_filter_functions)")
            }
        }
        let hook = "\(retprobe ? "kretprobe" : "kprobe").multi \(pattern) (\(names.count) functions)"
        let link: BPFFD
        do {
            link = try BPFSys.linkCreate(programFD: fd, target: .none, attachType: BPFAttachType.traceKprobeMulti.rawValue,
                                         options: .kprobeMulti(symbols: names, returnProbe: retprobe, cookies: []),
                                         context: "linking program '\(program)' to \(hook)")
        } catch {
            if error.errno == EOPNOTSUPP {
                throw .unknownFunction(name: pattern, reason: "this kernel has no kprobe_multi links (CONFIG_FPROBE is off): \(error)")
            }
            if error.errno == ENOENT || error.errno == ESRCH {
                throw .unknownFunction(name: pattern, reason: "a matching function cannot be probed: \(error)")
            }
            throw failure(error, hook)
        }
        return try AttachedLink(program: program, kind: retprobe ? .kretprobeMulti : .kprobeMulti,
                                target: "\(pattern) (\(names.count) functions)", linkFD: link, notes: note.map { [$0] } ?? [])
    }

    /// `uprobe`, `uretprobe`: the binary's path (config1) and the probed file offset (config2):
    /// the function's, plus `offset`. With a pid, only that process (on any CPU), else every
    /// process that maps the file.
    func uprobe(binary: String, function: String?, offset: UInt64, pid: Int32?, retprobe: Bool) throws(LinkError) -> AttachedLink {
        let path = try BinarySymbols.resolve(binary)
        var fileOffset = offset
        if let function { fileOffset = try BinarySymbols.fileOffset(of: function, in: path) &+ offset }
        if let pid, pid <= 0 {
            throw .kernel(.invalidArgument("pid \(pid) names no process"), context: "attaching program '\(program)' to a uprobe")
        }
        let pmu = ProbePMU.uprobe
        guard let type = pmu.type() else {
            throw .unknownBinary(path: path, reason: "this kernel has no uprobes (no uprobe PMU at \(pmu.directory): CONFIG_UPROBE_EVENTS is off)")
        }
        let config = try retprobeConfig(pmu, retprobe: retprobe) { () throws(LinkError) -> Never in
            throw .unknownBinary(path: path, reason: "the uprobe PMU has no retprobe format bit (\(pmu.directory)/format/retprobe)")
        }
        let place = function.map { "\($0)+0x\(String(offset, radix: 16))" } ?? "0x\(String(fileOffset, radix: 16))"
        let target = "\(path):\(place)" + (pid.map { " pid \($0)" } ?? "")
        let hook = "\(retprobe ? "uretprobe" : "uprobe") \(target)"
        let perf: BPFFD
        do {
            perf = try PerfEvents.open(strings: [path], pid: pid ?? -1, cpu: pid == nil ? 0 : -1,
                                       context: "opening a \(hook) perf event (file offset 0x\(String(fileOffset, radix: 16)))") { paths in
                PerfEventAttr(type: type, config: config, config1: paths[0], config2: fileOffset)
            }
        } catch {
            if error.errno == ESRCH, let pid {
                throw .kernel(error, context: "attaching program '\(program)' to \(hook): no process \(pid)")
            }
            throw failure(error, hook)
        }
        return try perfLink(perf, kind: retprobe ? .uretprobe : .uprobe, target: target, hook: hook, notes: [])
    }

    /// The perf `config` of a probe: the PMU's retprobe bit set for return probes.
    private func retprobeConfig(_ pmu: ProbePMU, retprobe: Bool,
                                missing: () throws(LinkError) -> Never) throws(LinkError) -> UInt64 {
        guard retprobe else { return 0 }
        guard let bit = pmu.retprobeBit() else { try missing() }
        return 1 << bit
    }
}

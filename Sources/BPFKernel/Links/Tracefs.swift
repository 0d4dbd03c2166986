import CBPFSys
import Glibc
import Synchronization

/// Where tracefs is, mounting it when nothing is: tracepoint ids and the list of traceable
/// functions live there. libbpf looks at /sys/kernel/tracing, then the debugfs path; so do we.
enum Tracefs {
    static let standard = "/sys/kernel/tracing"
    static let underDebugfs = "/sys/kernel/debug/tracing"
    /// TRACEFS_MAGIC.
    static let magic = 0x7472_6163

    /// One mount attempt at a time (two attaches racing would mount twice).
    private static let mounting = Mutex(())

    /// The tracefs root and, when this call had to mount it, a note saying so.
    static func root() throws(LinkError) -> (path: String, note: String?) {
        try mounting.withLock { _ throws(LinkError) -> (path: String, note: String?) in
            if cbpf_fs_type(standard) == magic { return (standard, nil) }
            if cbpf_fs_type(underDebugfs) == magic { return (underDebugfs, nil) }
            guard mount("tracefs", standard, "tracefs", 0, nil) == 0 else {
                let e = errno
                throw .kernel(.system(call: "mount", errno: e, context: "mounting tracefs at \(standard) (no tracefs is mounted, and tracepoint ids and traceable functions are listed there)"),
                              context: "finding tracefs")
            }
            return (standard, "mounted tracefs at \(standard)")
        }
    }

    /// The perf event id of tracepoint `category/name` (`events/CAT/NAME/id`).
    static func tracepointID(root: String, category: String, name: String) throws(LinkError) -> UInt64 {
        let path = "\(root)/events/\(category)/\(name)/id"
        guard let bytes = readWholeFile(path) else { throw .unknownTracepoint("\(category)/\(name)") }
        let text = String(decoding: bytes, as: UTF8.self).trimmingBlanks()
        guard let id = UInt64(text) else {
            throw .kernel(.invalidArgument("\(path) holds '\(text)', not a tracepoint id"), context: "reading tracepoint \(category)/\(name)")
        }
        return id
    }

    /// Function names in `available_filter_functions` matching a glob (`*`, `?`, `[...]`), the
    /// functions kprobe_multi can attach to, as libbpf resolves a kprobe.multi pattern. Each name
    /// once, in file order; "name [module]" lines give the name.
    static func traceableFunctions(root: String, matching pattern: String) throws(LinkError) -> [String] {
        let path = "\(root)/available_filter_functions"
        guard let bytes = readWholeFile(path) else {
            throw .unknownFunction(name: pattern, reason: "cannot read \(path) to resolve the kprobe.multi pattern: \(ErrnoName.describe(errno))")
        }
        var seen = Set<String>()
        var names: [String] = []
        for line in bytes.split(separator: 0x0a) {
            let end = line.firstIndex(where: { $0 == 0x20 || $0 == 0x09 }) ?? line.endIndex
            let name = String(decoding: line[line.startIndex..<end], as: UTF8.self)
            // Entries the kernel could not resolve (ftrace prints them with this prefix).
            if name.isEmpty || name.hasPrefix("__ftrace_invalid_address__") { continue }
            guard fnmatch(pattern, name, 0) == 0, seen.insert(name).inserted else { continue }
            names.append(name)
        }
        return names
    }
}

/// The dynamic perf PMUs for probes (`/sys/bus/event_source/devices/{kprobe,uprobe}`): their
/// type number and the config bit that makes a return probe.
enum ProbePMU: String {
    case kprobe, uprobe

    var directory: String { "/sys/bus/event_source/devices/\(rawValue)" }

    /// The PMU's perf type, or nil when the kernel has no such PMU (a kernel without kprobes
    /// or uprobes).
    func type() -> UInt32? {
        guard let bytes = readWholeFile("\(directory)/type") else { return nil }
        return UInt32(String(decoding: bytes, as: UTF8.self).trimmingBlanks())
    }

    /// The retprobe bit from `format/retprobe` ("config:0"), as libbpf's `determine_*_retprobe_bit`.
    func retprobeBit() -> UInt64? {
        guard let bytes = readWholeFile("\(directory)/format/retprobe") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).trimmingBlanks()
        guard text.hasPrefix("config:"), let bit = UInt64(text.dropFirst("config:".count)), bit < 64 else { return nil }
        return bit
    }
}

extension String {
    /// Without leading and trailing blanks and newlines (sysfs and tracefs values end in "\n").
    func trimmingBlanks() -> String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" }
        guard let first = firstIndex(where: { !blank($0) }), let last = lastIndex(where: { !blank($0) }) else { return "" }
        return String(self[first...last])
    }
}

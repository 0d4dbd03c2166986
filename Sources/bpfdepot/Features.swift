import ArgumentParser
import BPFKernel
import DepotCore

struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what this kernel lets this process do with BPF: the feature probes, kernel, BTF, bpffs and capabilities.",
        discussion: """
            The same facts as GET /v1/system of a running service, for this process (run it as the \
            service's user: capabilities decide what bpf() allows), without the service's limits.
            """)

    @Flag(help: "Print the document GET /v1/system answers, without its limits, as JSON.")
    var json = false

    @Option(help: "The pin root to check, as `serve --pin-root` takes it (empty: pinning off).")
    var pinRoot = "/sys/fs/bpf/bpfdepot"

    func run() {
        // `enabled` is what `serve` would do with this pin root: pin, unless it is empty (serve
        // creates the directory and mounts bpffs itself when it can).
        let report = SystemReport(facts: .gather(),
                                  pinRoot: .init(path: pinRoot.isEmpty ? nil : pinRoot, enabled: !pinRoot.isEmpty),
                                  limits: nil)
        print(json ? report.json().prettyText : Self.text(report))
    }

    static func text(_ report: SystemReport) -> String {
        let f = report.facts
        func yes(_ b: Bool) -> String { b ? "yes" : "no" }
        var lines: [String] = []
        lines.append("kernel        \(f.kernel.release) \(f.kernel.machine) (\(f.kernel.version))")
        lines.append("vmlinux BTF   " + (f.btf.size.map { "\(f.btf.path), \($0) bytes" } ?? "no \(f.btf.path)"))
        lines.append("bpffs         \(f.bpffs.path): " + (f.bpffs.onBPFFS ? "mounted" : "not mounted"))
        let root = report.pinRoot
        lines.append("pin root      " + (root.path.map {
            "\($0): " + (root.exists ? "exists" : "does not exist") + (root.onBPFFS ? ", on bpffs" : ", not on bpffs")
        } ?? "none (pinning off)"))
        if let caps = f.capabilities {
            let wanted: [(String, Capability)] = [("CAP_BPF", .bpf), ("CAP_PERFMON", .perfmon),
                                                  ("CAP_NET_ADMIN", .netAdmin), ("CAP_SYS_ADMIN", .sysAdmin)]
            lines.append("capabilities  " + wanted.map { "\($0.0) \(yes(caps.contains($0.1)))" }.joined(separator: ", ")
                + " (CapEff \(caps.hex): \(caps.names.count) capabilities)")
        } else {
            lines.append("capabilities  unknown (no CapEff in /proc/self/status)")
        }
        lines.append("")
        let width = max("FEATURE".count, f.features.map(\.feature.rawValue.count).max() ?? 0) + 2
        func padded(_ s: String) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        lines.append(padded("FEATURE") + "AVAILABLE  REASON")
        for p in f.features {
            lines.append(padded(p.feature.rawValue) + (p.available ? "yes        " : "no         ") + p.reason)
        }
        return lines.joined(separator: "\n")
    }
}

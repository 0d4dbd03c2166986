import BPFTestSupport
import Foundation
import Testing

@testable import BPFKernel

/// What this kernel offers the ksyms fixture, read without the loader's own code: /proc/kallsyms
/// split on whitespace, /sys/devices/system/cpu/possible, and (for the typed ksyms) whether
/// vmlinux BTF has the per-CPU VARs.
enum KsymRequirements {
    struct Entry: Equatable {
        var address: UInt64
        var type: Character
    }

    /// Every entry of every name in /proc/kallsyms (nil: unreadable).
    static let kallsyms: [String: [Entry]]? = {
        // Read to EOF: procfs reports size 0 and hands the file out in pieces.
        guard let handle = FileHandle(forReadingAtPath: "/proc/kallsyms"),
              let data = try? handle.readToEnd() else { return nil }
        try? handle.close()
        let text = String(decoding: data, as: UTF8.self)
        var out: [String: [Entry]] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 3, let a = UInt64(f[0], radix: 16), let t = f[1].first else { continue }
            out[String(f[2]), default: []].append(Entry(address: a, type: t))
        }
        return out
    }()

    /// The address kallsyms gives `name`, if it lists it at one address.
    static func address(_ name: String) -> UInt64? {
        guard let e = kallsyms?[name], let first = e.first, e.allSatisfy({ $0.address == first.address }) else { return nil }
        return first.address
    }

    /// The data symbols the fixture's strong typeless ksyms name, and `runqueues` (its address
    /// is the per-CPU offset the typed pointers are checked against). All are in /proc/kallsyms
    /// only with CONFIG_KALLSYMS_ALL.
    static let dataSymbols = ["__per_cpu_offset", "__per_cpu_start", "init_task", "runqueues"]
    static var missingDataSymbols: [String] { dataSymbols.filter { address($0) == nil } }
    static var listsDataSymbols: Bool { missingDataSymbols.isEmpty }
    static var dataSymbolsReason: Comment {
        Comment(rawValue: kallsyms == nil
            ? "/proc/kallsyms is unreadable"
            : "/proc/kallsyms does not list \(missingDataSymbols.joined(separator: ", ")) (a kernel without CONFIG_KALLSYMS_ALL lists no data symbols)")
    }

    /// The verifier finds a typed ksym's address with the kernel's own kallsyms_lookup_name
    /// ("ldimm64 failed to find the address for kernel symbol"), so typed per-CPU variables
    /// load only where kallsyms has them: with CONFIG_KALLSYMS_ALL.
    static let perCPUVars = ["bpf_prog_active", "runqueues"]
    static var listsPerCPUVars: Bool { perCPUVars.allSatisfy { address($0) != nil } }
    static var perCPUVarsKallsymsReason: Comment {
        Comment(rawValue: "/proc/kallsyms does not list \(perCPUVars.filter { address($0) == nil }.joined(separator: ", ")), so the verifier cannot place typed ksyms for them (kallsyms_lookup_name; no CONFIG_KALLSYMS_ALL)")
    }

    static let vmlinuxHasPerCPUVars: Bool = {
        guard let v = try? KernelBTF.vmlinux() else { return false }
        return v.find("runqueues", kind: .variable) != nil && v.find("bpf_prog_active", kind: .variable) != nil
    }()
    static let perCPUVarsReason: Comment = "vmlinux BTF is unreadable or has no VAR runqueues / bpf_prog_active (the fixture's typed ksyms)"

    /// nr_cpu_ids: one more than the highest possible CPU.
    static let possibleCPUs: Int? = {
        guard let text = try? String(contentsOfFile: "/sys/devices/system/cpu/possible", encoding: .utf8) else { return nil }
        let highest = text.split(whereSeparator: { $0 == "," || $0 == "-" || $0 == "\n" }).compactMap { Int($0) }.max()
        return highest.map { $0 + 1 }
    }()
}

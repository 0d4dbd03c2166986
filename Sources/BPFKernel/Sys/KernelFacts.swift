import CBPFSys
import Glibc

/// What this host's kernel is and what this process may do with it: uname, vmlinux BTF, bpffs,
/// effective capabilities and the feature probes. Gathered for clients that decide whether a
/// host can take an object (an arena object needs `arena_maps`) before uploading it.
///
/// Gathering opens no BPF object of its own: uname, stat, statfs and /proc/self/status; the
/// probes are `FeatureProbes.all` (run once per process, and they close what they open).
public struct KernelFacts: Sendable, Equatable {
    /// `uname(2)`.
    public struct Uname: Sendable, Equatable {
        /// `uname -r`, e.g. `6.18.0-1-amd64`.
        public var release: String
        /// `uname -v`, e.g. `#1 SMP PREEMPT_DYNAMIC Debian 6.18.1-1 (2025-12-01)`.
        public var version: String
        /// `uname -m`, e.g. `x86_64`.
        public var machine: String

        public init(release: String, version: String, machine: String) {
            self.release = release
            self.version = version
            self.machine = machine
        }
    }

    /// The kernel's own BTF, which CO-RE relocations and kfunc calls are resolved against.
    public struct VmlinuxBTF: Sendable, Equatable {
        public var path: String
        public var present: Bool
        /// Bytes of BTF (sysfs reports the blob's real size); nil when the file is not there.
        public var size: Int64?
    }

    /// A path and whether a bpffs is what holds it (statfs's `f_type` is BPF_FS_MAGIC).
    public struct BPFFSPath: Sendable, Equatable {
        public var path: String
        /// The path is there (a directory: a mount point or a pin directory).
        public var exists: Bool
        public var onBPFFS: Bool
    }

    public var kernel: Uname
    public var btf: VmlinuxBTF
    /// `/sys/fs/bpf`, where bpffs is mounted by convention.
    public var bpffs: BPFFSPath
    /// Nil when /proc/self/status cannot be read or has no `CapEff` line (no procfs).
    public var capabilities: Capabilities?
    /// Every probe, in `FeatureProbe.Feature.allCases` order.
    public var features: [FeatureProbe]

    public static let bpffsMountPoint = "/sys/fs/bpf"
    public static let vmlinuxBTFPath = "/sys/kernel/btf/vmlinux"

    /// The facts now (the probes' answers are the process's cached ones).
    public static func gather() -> KernelFacts {
        KernelFacts(
            kernel: uname(), btf: vmlinuxBTF(), bpffs: bpffsPath(bpffsMountPoint),
            capabilities: try? Capabilities.ofThisProcess(), features: FeatureProbes.all)
    }

    public static func uname() -> Uname {
        var u = utsname()
        guard Glibc.uname(&u) == 0 else { return Uname(release: KernelVersion.release, version: "", machine: "") }
        func field<T>(_ value: inout T) -> String {
            withUnsafeBytes(of: &value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return Uname(release: field(&u.release), version: field(&u.version), machine: field(&u.machine))
    }

    public static func vmlinuxBTF() -> VmlinuxBTF {
        var st = stat()
        guard stat(vmlinuxBTFPath, &st) == 0 else { return VmlinuxBTF(path: vmlinuxBTFPath, present: false, size: nil) }
        return VmlinuxBTF(path: vmlinuxBTFPath, present: true, size: Int64(st.st_size))
    }

    /// Whether `path` is a directory, and whether it is on bpffs. A pin root must be both;
    /// `/sys/fs/bpf` is both when bpffs is mounted there.
    public static func bpffsPath(_ path: String) -> BPFFSPath {
        var st = stat()
        let isDirectory = stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        return BPFFSPath(path: path, exists: isDirectory, onBPFFS: isDirectory && cbpf_fs_type(path) == Pinning.bpffsMagic)
    }
}

/// One capability (`include/uapi/linux/capability.h`); the raw value is its bit in the sets.
public enum Capability: Int, Sendable, CaseIterable {
    case chown = 0, dacOverride, dacReadSearch, fowner, fsetid, kill, setgid, setuid, setpcap
    case linuxImmutable, netBindService, netBroadcast, netAdmin, netRaw, ipcLock, ipcOwner
    case sysModule, sysRawio, sysChroot, sysPtrace, sysPacct, sysAdmin, sysBoot, sysNice
    case sysResource, sysTime, sysTtyConfig, mknod, lease, auditWrite, auditControl, setfcap
    case macOverride, macAdmin, syslog, wakeAlarm, blockSuspend, auditRead, perfmon, bpf
    case checkpointRestore

    /// The name `capsh` and capabilities(7) use, e.g. `cap_net_admin`.
    public var name: String { Self.names[rawValue] }

    private static let names = [
        "cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid", "cap_kill",
        "cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable", "cap_net_bind_service",
        "cap_net_broadcast", "cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner", "cap_sys_module",
        "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace", "cap_sys_pacct", "cap_sys_admin", "cap_sys_boot",
        "cap_sys_nice", "cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease",
        "cap_audit_write", "cap_audit_control", "cap_setfcap", "cap_mac_override", "cap_mac_admin", "cap_syslog",
        "cap_wake_alarm", "cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf", "cap_checkpoint_restore",
    ]
}

/// A capability set as the kernel prints it in /proc/<pid>/status (`CapEff:\t000001ffffffffff`).
public struct Capabilities: Sendable, Equatable {
    public let bits: UInt64

    public init(bits: UInt64) { self.bits = bits }

    /// The 16 hex digits /proc shows.
    public var hex: String {
        let digits = String(bits, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    public func contains(_ capability: Capability) -> Bool { bits & (1 << UInt64(capability.rawValue)) != 0 }

    /// Every capability in the set, lowest bit first; a bit newer than this list is `cap_<bit>`.
    public var names: [String] {
        (0..<64).compactMap { bit -> String? in
            guard bits & (1 << UInt64(bit)) != 0 else { return nil }
            return Capability(rawValue: bit)?.name ?? "cap_\(bit)"
        }
    }

    /// This process's effective set (what the kernel checks bpf() against).
    public static func ofThisProcess() throws(CapabilityError) -> Capabilities {
        let path = "/proc/self/status"
        guard let bytes = readWholeFile(path) else { throw .unreadable(path: path, errno: errno) }
        return try effective(inStatus: String(decoding: bytes, as: UTF8.self))
    }

    /// The `CapEff` line of a /proc/<pid>/status text.
    public static func effective(inStatus text: String) throws(CapabilityError) -> Capabilities {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }) else { throw .noCapEff }
        let value = line.dropFirst("CapEff:".count).trimmingPrefix { $0 == " " || $0 == "\t" }
        guard !value.isEmpty, value.count <= 16, let bits = UInt64(value, radix: 16) else {
            throw .malformedCapEff(String(line))
        }
        return Capabilities(bits: bits)
    }
}

public enum CapabilityError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, errno: Int32)
    case noCapEff
    case malformedCapEff(String)

    public var description: String {
        switch self {
        case .unreadable(let path, let errno): "cannot read \(path): \(ErrnoName.describe(errno))"
        case .noCapEff: "expected a CapEff line in /proc/self/status, found none"
        case .malformedCapEff(let line): "expected CapEff followed by up to 16 hex digits, found '\(line)'"
        }
    }
}

import CBPFSys
import Glibc

/// `struct perf_event_attr` (include/uapi/linux/perf_event.h) as the bytes perf_event_open(2)
/// reads: only the fields BPF attachment needs, everything else zero.
public struct PerfEventAttr: Sendable, Equatable {
    /// `PERF_TYPE_TRACEPOINT`, or a dynamic PMU's type (kprobe, uprobe) from sysfs.
    public var type: UInt32
    /// Tracepoint id; for probe PMUs, the format bits (the retprobe bit).
    public var config: UInt64 = 0
    /// Probe PMUs: the address of the function name (kprobe) or binary path (uprobe).
    public var config1: UInt64 = 0
    /// Probe PMUs: offset into the function (kprobe) or file offset (uprobe).
    public var config2: UInt64 = 0

    /// `PERF_TYPE_TRACEPOINT` (enum perf_type_id).
    public static let tracepointType: UInt32 = 2

    public init(type: UInt32, config: UInt64 = 0, config1: UInt64 = 0, config2: UInt64 = 0) {
        self.type = type
        self.config = config
        self.config1 = config1
        self.config2 = config2
    }

    private enum Layout {
        static let type = 0
        static let size = 4
        static let config = 8
        static let samplePeriod = 16
        static let config1 = 56
        static let config2 = 64
        /// PERF_ATTR_SIZE_VER7 (Linux 5.13): newer kernels take it, and its fields are all we use.
        static let length = 128
    }

    /// The attr bytes. `sample_period` is 1, as libbpf sets it: a BPF program runs on every hit.
    public var bytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Layout.length)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: type, toByteOffset: Layout.type, as: UInt32.self)
            raw.storeBytes(of: UInt32(Layout.length), toByteOffset: Layout.size, as: UInt32.self)
            raw.storeBytes(of: config, toByteOffset: Layout.config, as: UInt64.self)
            raw.storeBytes(of: UInt64(1), toByteOffset: Layout.samplePeriod, as: UInt64.self)
            raw.storeBytes(of: config1, toByteOffset: Layout.config1, as: UInt64.self)
            raw.storeBytes(of: config2, toByteOffset: Layout.config2, as: UInt64.self)
        }
        return bytes
    }
}

/// perf_event_open(2) for attaching BPF programs: the second raw system call of this layer
/// (bpf(2) has its own chokepoint in `BPFSys.invoke`).
public enum PerfEvents {
    /// `PERF_FLAG_FD_CLOEXEC`.
    static let flagFDCloexec: UInt = 1 << 3

    /// Opens a perf event; `strings` are NUL-terminated copies whose addresses `build` puts into
    /// config1 (the probe PMUs read the name or path through that pointer during the call).
    /// `pid` -1 with `cpu` 0 follows every process, as libbpf does for tracepoints and kprobes;
    /// a uprobe for one process passes its pid and cpu -1.
    public static func open(
        strings: [String] = [], pid: Int32 = -1, cpu: Int32 = 0, context: @autoclosure () -> String,
        _ build: ([UInt64]) -> PerfEventAttr
    ) throws(BPFError) -> BPFFD {
        let memory = AttrMemory()
        defer { memory.release() }
        let addresses = strings.map { UInt64(UInt(bitPattern: memory.cString($0).baseAddress)) }
        var bytes = build(addresses).bytes
        let result = bytes.withUnsafeMutableBytes { raw -> (Int, Int32) in
            let r = cbpf_sys_perf_event_open(raw.baseAddress, pid, cpu, -1, flagFDCloexec)
            return (r, r < 0 ? Glibc.errno : 0)
        }
        guard result.0 >= 0 else { throw .system(call: "perf_event_open", errno: result.1, context: context()) }
        return BPFFD(adopting: Int32(truncatingIfNeeded: result.0))
    }

    /// PERF_EVENT_IOC_DISABLE: the event stops firing at once, even while some other reference
    /// to it (a forked child that has not exec'ed yet, holding copies of our fds) keeps it alive.
    /// libbpf disables a perf event the same way when it detaches.
    public static func disable(_ fd: BPFFD) {
        _ = cbpf_perf_event_disable(fd.rawValue)
    }

    /// PERF_EVENT_IOC_ENABLE, as libbpf issues after attaching (a no-op for events opened
    /// enabled, which ours are).
    public static func enable(_ fd: BPFFD) throws(BPFError) {
        guard cbpf_perf_event_enable(fd.rawValue) == 0 else {
            throw .system(call: "ioctl(PERF_EVENT_IOC_ENABLE)", errno: Glibc.errno, context: "enabling perf event fd \(fd.rawValue)")
        }
    }
}

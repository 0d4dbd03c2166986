import CBPFSys
import Glibc

/// The bpf(2) commands this layer issues. Raw values are `enum bpf_cmd` from the kernel uapi
/// header; they are ABI and never renumbered.
public enum BPFCommand: Int32, Sendable, CustomStringConvertible {
    case mapCreate = 0
    case mapLookupElem = 1
    case mapUpdateElem = 2
    case mapDeleteElem = 3
    case mapGetNextKey = 4
    case progLoad = 5
    case objPin = 6
    case objGet = 7
    case progTestRun = 10
    case progGetNextID = 11
    case mapGetNextID = 12
    case progGetFDByID = 13
    case mapGetFDByID = 14
    case objGetInfoByFD = 15
    case rawTracepointOpen = 17
    case btfLoad = 18
    case btfGetFDByID = 19
    case mapFreeze = 22
    case btfGetNextID = 23
    case mapLookupBatch = 24
    case linkCreate = 28
    case linkUpdate = 29
    case linkGetFDByID = 30
    case linkGetNextID = 31
    case enableStats = 32
    case iterCreate = 33
    case linkDetach = 34
    case progBindMap = 35

    /// The kernel's spelling, so errors can be matched against kernel docs and strace output.
    public var description: String {
        switch self {
        case .mapCreate: "BPF_MAP_CREATE"
        case .mapLookupElem: "BPF_MAP_LOOKUP_ELEM"
        case .mapUpdateElem: "BPF_MAP_UPDATE_ELEM"
        case .mapDeleteElem: "BPF_MAP_DELETE_ELEM"
        case .mapGetNextKey: "BPF_MAP_GET_NEXT_KEY"
        case .progLoad: "BPF_PROG_LOAD"
        case .objPin: "BPF_OBJ_PIN"
        case .objGet: "BPF_OBJ_GET"
        case .progTestRun: "BPF_PROG_TEST_RUN"
        case .progGetNextID: "BPF_PROG_GET_NEXT_ID"
        case .mapGetNextID: "BPF_MAP_GET_NEXT_ID"
        case .progGetFDByID: "BPF_PROG_GET_FD_BY_ID"
        case .mapGetFDByID: "BPF_MAP_GET_FD_BY_ID"
        case .objGetInfoByFD: "BPF_OBJ_GET_INFO_BY_FD"
        case .rawTracepointOpen: "BPF_RAW_TRACEPOINT_OPEN"
        case .btfLoad: "BPF_BTF_LOAD"
        case .btfGetFDByID: "BPF_BTF_GET_FD_BY_ID"
        case .mapFreeze: "BPF_MAP_FREEZE"
        case .btfGetNextID: "BPF_BTF_GET_NEXT_ID"
        case .mapLookupBatch: "BPF_MAP_LOOKUP_BATCH"
        case .linkCreate: "BPF_LINK_CREATE"
        case .linkUpdate: "BPF_LINK_UPDATE"
        case .linkGetFDByID: "BPF_LINK_GET_FD_BY_ID"
        case .linkGetNextID: "BPF_LINK_GET_NEXT_ID"
        case .enableStats: "BPF_ENABLE_STATS"
        case .iterCreate: "BPF_ITER_CREATE"
        case .linkDetach: "BPF_LINK_DETACH"
        case .progBindMap: "BPF_PROG_BIND_MAP"
        }
    }
}

/// Namespace for the typed bpf(2) wrappers. Every call into the kernel goes through
/// `BPFSys.invoke`, the single chokepoint (for tracing, fakes and uniform error context).
public enum BPFSys {}

/// One command's slice of `union bpf_attr`, as a zeroed byte buffer.
///
/// The kernel rejects an attr whose bytes past the command's last known field are non-zero
/// (`CHECK_ATTR` / `bpf_check_uarg_tail_zero`), and older kernels reject a size larger than
/// their union unless the tail is zero. So each wrapper allocates exactly up to the last field it
/// knows about, writes only the fields it means, and passes that size. Fields are stored in host
/// byte order, as the kernel reads them.
struct BPFAttr {
    private(set) var bytes: [UInt8]

    init(size: Int) {
        bytes = [UInt8](repeating: 0, count: size)
    }

    mutating func set(_ value: UInt32, at offset: Int) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value, toByteOffset: offset, as: UInt32.self) }
    }

    mutating func set(_ value: Int32, at offset: Int) {
        set(UInt32(bitPattern: value), at: offset)
    }

    mutating func set(_ value: UInt64, at offset: Int) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value, toByteOffset: offset, as: UInt64.self) }
    }

    /// Pointers travel as `__aligned_u64` in every attr struct.
    mutating func set(pointer: UnsafeRawPointer?, at offset: Int) {
        set(UInt64(UInt(bitPattern: pointer)), at: offset)
    }

    mutating func set(bytes source: [UInt8], at offset: Int) {
        bytes.replaceSubrange(offset..<(offset + source.count), with: source)
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
        bytes.withUnsafeMutableBytes(body)
    }

    func uint32(at offset: Int) -> UInt32 {
        bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
    }
}

/// What one bpf(2) call returned.
enum SyscallOutcome {
    case success(Int)
    case failure(errno: Int32)
}

extension BPFSys {
    /// The chokepoint: the only place that calls the C shim.
    ///
    /// The shim returns syscall(2)'s raw value; errno is read inside the same closure, on the
    /// same thread, before any other call can overwrite it.
    static func invoke(_ command: BPFCommand, _ attr: inout BPFAttr) -> SyscallOutcome {
        // The kernel may write results back into the attr (log_true_size, test-run retval, ...),
        // so it gets the attr's own storage.
        attr.withUnsafeMutableBytes { buffer in
            let result = cbpf_sys_bpf(command.rawValue, buffer.baseAddress, UInt32(buffer.count))
            if result < 0 {
                return .failure(errno: Glibc.errno)
            }
            return .success(result)
        }
    }

    /// `invoke`, turning a failure into `BPFError.syscall` with the caller's context.
    static func call(
        _ command: BPFCommand, _ attr: inout BPFAttr, context: @autoclosure () -> String
    ) throws(BPFError) -> Int {
        switch invoke(command, &attr) {
        case .success(let value):
            return value
        case .failure(let errno):
            throw .syscall(command: command, errno: errno, context: context())
        }
    }

    /// For commands whose success value is a new file descriptor the caller now owns.
    static func callReturningFD(
        _ command: BPFCommand, _ attr: inout BPFAttr, context: @autoclosure () -> String
    ) throws(BPFError) -> BPFFD {
        let value = try call(command, &attr, context: context())
        return BPFFD(adopting: Int32(truncatingIfNeeded: value))
    }
}

/// Memory an attr points at (keys, instructions, strings, log buffers) and the descriptors it
/// names.
///
/// An attr holds addresses and fds as plain integers, so Swift cannot see that the kernel will
/// read them; without an owner the buffers or `BPFFD`s could be freed before the syscall. Each
/// wrapper creates one of these and `defer { memory.release() }`s it, which keeps everything
/// valid until the call has returned.
final class AttrMemory {
    private var allocations: [UnsafeMutableRawBufferPointer] = []
    private var descriptors: [BPFFD] = []

    /// A private copy of `bytes`; nil for an empty input, so the attr carries NULL as the kernel
    /// expects for "no buffer".
    func copy(_ bytes: [UInt8]) -> UnsafeMutableRawBufferPointer? {
        guard !bytes.isEmpty else { return nil }
        let buffer = zeroed(count: bytes.count)
        buffer.copyBytes(from: bytes)
        return buffer
    }

    /// A NUL-terminated copy of `string`.
    func cString(_ string: String) -> UnsafeMutableRawBufferPointer {
        var bytes = Array(string.utf8)
        bytes.append(0)
        let buffer = zeroed(count: bytes.count)
        buffer.copyBytes(from: bytes)
        return buffer
    }

    /// A zero-filled buffer the kernel writes into (values, logs, info structs).
    func zeroed(count: Int) -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 8)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        allocations.append(buffer)
        return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
    }

    /// The raw descriptor of `fd`, kept open until `release()`.
    func fd(_ fd: BPFFD) -> Int32 {
        descriptors.append(fd)
        return fd.rawValue
    }

    /// Same, with 0 for "none": the kernel's convention for optional fd fields.
    func fd(_ fd: BPFFD?) -> UInt32 {
        guard let fd else { return 0 }
        return UInt32(bitPattern: self.fd(fd))
    }

    func release() {
        for buffer in allocations {
            buffer.deallocate()
        }
        allocations.removeAll()
        descriptors.removeAll()
    }

    deinit {
        release()
    }
}

extension UnsafeMutableRawBufferPointer {
    /// The bytes up to the first NUL, decoded as UTF-8 (kernel strings and logs).
    func cStringPrefix() -> String {
        let bytes = self.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}

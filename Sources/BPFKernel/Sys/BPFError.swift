import Glibc

/// Every failure of the kernel-facing layer, with enough context to act on it.
public enum BPFError: Error, Sendable, Equatable, CustomStringConvertible {
    /// bpf(2) failed; `context` says what we were doing ("creating map \"counts\"").
    case syscall(command: BPFCommand, errno: Int32, context: String)
    /// Another system call the kernel-facing layer makes failed (perf_event_open, mount, open of
    /// a cgroup, read of an iterator, ...); `call` is its name.
    case system(call: String, errno: Int32, context: String)
    /// BPF_PROG_LOAD failed and the verifier explained why.
    case verifier(VerifierError)
    /// BPF_BTF_LOAD failed; the kernel's BTF checker wrote `log`.
    case btfRejected(errno: Int32, log: String, logTruncated: Bool)
    /// An argument broke a rule the kernel would enforce less helpfully (or not at all).
    case invalidArgument(String)
    /// mmap with MAP_FIXED_NOREPLACE found part of `[address, address+length)` already mapped.
    case addressRangeInUse(address: UInt64, length: Int)
    /// Any other mmap/munmap failure.
    case mmap(errno: Int32, address: UInt64?, length: Int, context: String)
    /// A kernel without MAP_FIXED_NOREPLACE (< 4.17) treats it as a hint and may map elsewhere.
    case mappedElsewhere(requested: UInt64, actual: UInt64, length: Int)
    /// An access outside a mapped region.
    case outOfBounds(offset: Int, count: Int, regionLength: Int)
    /// An access to a region after `unmap()`.
    case regionUnmapped(address: UInt64)

    /// The errno behind this error, if the kernel produced one.
    public var errno: Int32? {
        switch self {
        case .syscall(_, let errno, _): errno
        case .system(_, let errno, _): errno
        case .verifier(let error): error.errno
        case .btfRejected(let errno, _, _): errno
        case .addressRangeInUse: EEXIST
        case .mmap(let errno, _, _, _): errno
        case .invalidArgument, .mappedElsewhere, .outOfBounds, .regionUnmapped: nil
        }
    }

    public var description: String {
        switch self {
        case .syscall(let command, let errno, let context):
            return "bpf(\(command)) failed with \(ErrnoName.describe(errno)) while \(context)"
        case .system(let call, let errno, let context):
            return "\(call) failed with \(ErrnoName.describe(errno)) while \(context)"
        case .verifier(let error):
            return error.description
        case .btfRejected(let errno, let log, let truncated):
            let tail = VerifierError.lastLines(of: log, count: 2)
            let suffix = truncated ? " (log truncated)" : ""
            return "kernel rejected btf with \(ErrnoName.describe(errno))\(suffix): \(tail)"
        case .invalidArgument(let message):
            return "invalid argument: \(message)"
        case .addressRangeInUse(let address, let length):
            return "address range \(BPFSys.hex(address))..<\(BPFSys.hex(address &+ UInt64(length))) is already "
                + "mapped in this process (EEXIST); another mapping, or another arena with the "
                + "same map_extra, occupies it"
        case .mmap(let errno, let address, let length, let context):
            let at = address.map { " at \(BPFSys.hex($0))" } ?? ""
            return "mmap of \(length) bytes\(at) failed with \(ErrnoName.describe(errno)) while \(context)"
        case .mappedElsewhere(let requested, let actual, let length):
            return "mmap of \(length) bytes asked for \(BPFSys.hex(requested)) but the kernel placed it at "
                + "\(BPFSys.hex(actual)); this kernel does not support MAP_FIXED_NOREPLACE"
        case .outOfBounds(let offset, let count, let regionLength):
            return "access of \(count) bytes at offset \(offset) is outside the \(regionLength)-byte region"
        case .regionUnmapped(let address):
            return "region at \(BPFSys.hex(address)) was already unmapped"
        }
    }
}

/// The verifier refused a program. `log` is the whole verifier log (the tail, if even the
/// largest buffer was too small: the kernel keeps the end, which holds the reason).
public struct VerifierError: Error, Sendable, Equatable, CustomStringConvertible {
    public var programName: String
    public var errno: Int32
    public var log: String
    public var logTruncated: Bool

    public init(programName: String, errno: Int32, log: String, logTruncated: Bool) {
        self.programName = programName
        self.errno = errno
        self.log = log
        self.logTruncated = logTruncated
    }

    /// The last lines of the log, where the verifier states the reason.
    public var summary: String {
        Self.lastLines(of: log, count: 2)
    }

    public var description: String {
        let suffix = logTruncated ? " (log truncated)" : ""
        return "verifier rejected program \"\(programName)\" with \(ErrnoName.describe(errno))"
            + "\(suffix): \(summary)"
    }

    static func lastLines(of log: String, count: Int) -> String {
        let lines = log.split(separator: "\n", omittingEmptySubsequences: true)
        // "processed N insns ..." is the verifier's statistics trailer, not the reason.
        let reasons = lines.filter { !$0.hasPrefix("processed ") }
        return reasons.suffix(count).joined(separator: " | ")
    }
}

/// errno names, so messages say "EPERM (operation not permitted)" like strace does.
enum ErrnoName {
    static func describe(_ errno: Int32) -> String {
        guard let (name, meaning) = table[errno] else { return "errno \(errno)" }
        return "\(name) (\(meaning))"
    }

    private static let table: [Int32: (String, String)] = [
        EPERM: ("EPERM", "operation not permitted"),
        ENOENT: ("ENOENT", "no such entry"),
        ESRCH: ("ESRCH", "no such process"),
        EINTR: ("EINTR", "interrupted"),
        E2BIG: ("E2BIG", "argument list too long"),
        EBADF: ("EBADF", "bad file descriptor"),
        EAGAIN: ("EAGAIN", "try again"),
        ENOMEM: ("ENOMEM", "out of memory"),
        EACCES: ("EACCES", "permission denied"),
        EFAULT: ("EFAULT", "bad address"),
        EBUSY: ("EBUSY", "device or resource busy"),
        EEXIST: ("EEXIST", "already exists"),
        EXDEV: ("EXDEV", "cross-device link"),
        ENODEV: ("ENODEV", "no such device"),
        ENOTDIR: ("ENOTDIR", "not a directory"),
        EINVAL: ("EINVAL", "invalid argument"),
        EMFILE: ("EMFILE", "too many open files"),
        ENOSPC: ("ENOSPC", "no space left (buffer too small)"),
        ERANGE: ("ERANGE", "result out of range"),
        ENOSYS: ("ENOSYS", "function not implemented"),
        ELOOP: ("ELOOP", "too many levels of nesting"),
        EOPNOTSUPP: ("EOPNOTSUPP", "operation not supported"),
        ENOLINK: ("ENOLINK", "link has been severed"),
        ENOTSUPP: ("ENOTSUPP", "operation not supported by the kernel"),
    ]

    /// The kernel-internal ENOTSUPP leaks out of bpf(2); glibc has no constant for it.
    static let ENOTSUPP: Int32 = 524
}

extension BPFSys {
    /// Addresses and flags read best in hex, as the kernel and strace print them.
    static func hex(_ value: UInt64) -> String {
        "0x" + String(value, radix: 16)
    }
}

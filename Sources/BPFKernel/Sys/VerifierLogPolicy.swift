import Glibc

/// Where a load command keeps its log fields in the attr (BPF_PROG_LOAD and BPF_BTF_LOAD put
/// them at different offsets).
struct AttrLogFields {
    var level: Int
    var size: Int
    var buffer: Int
    /// `log_true_size` (6.4+): the size the whole log needs, written back by the kernel.
    var trueSize: Int
}

/// How a load ended after the log policy ran.
enum KernelLoadOutcome {
    case loaded(fd: Int32)
    /// `errno` is the log-less attempt's verdict when there was one, not a later log ENOSPC.
    case failed(errno: Int32, log: String, logTruncated: Bool)
}

/// libbpf's log policy for loads that the kernel checks (programs, BTF):
///
/// 1. Load with the caller's log level; without a buffer when that level is 0, because a log
///    costs verifier time and memory and a successful load does not need one.
/// 2. On failure, load again at level ≥ 1 with a buffer, to learn why.
/// 3. The kernel answers ENOSPC when the log did not fit; grow the buffer (to `log_true_size`
///    when the kernel reports it, else double) up to 16 MiB, libbpf's limit. At the limit keep
///    what we have: a rotating log (level 1 without BPF_LOG_FIXED) holds the end, which states
///    the reason.
///
/// EAGAIN is retried up to `eagainRetries` times per attempt: the verifier returns it when
/// interrupted by a signal, and libbpf retries program loads 5 times.
enum VerifierLogPolicy {
    static let initialLogSize = 64 * 1024
    static let maximumLogSize = 16 * 1024 * 1024
    static let programEAGAINRetries = 5

    static func load(
        command: BPFCommand,
        attr base: BPFAttr,
        fields: AttrLogFields,
        requestedLevel: UInt32,
        eagainRetries: Int
    ) -> KernelLoadOutcome {
        // The errno of the log-less attempt: the verdict, unaffected by log-buffer ENOSPC.
        var verdict: Int32?
        if requestedLevel == 0 {
            var attr = base
            switch attempt(command, &attr, eagainRetries) {
            case .success(let fd):
                return .loaded(fd: Int32(truncatingIfNeeded: fd))
            case .failure(let errno):
                verdict = errno
            }
        }

        var logSize = initialLogSize
        let level = max(requestedLevel, 1)
        while true {
            let memory = AttrMemory()
            defer { memory.release() }
            let buffer = memory.zeroed(count: logSize)
            var attr = base
            attr.set(level, at: fields.level)
            attr.set(UInt32(logSize), at: fields.size)
            attr.set(pointer: buffer.baseAddress, at: fields.buffer)
            switch attempt(command, &attr, eagainRetries) {
            case .success(let fd):
                // The log-less attempt failed but this one passed (a transient failure, or a
                // requested log level). Either way the object is loaded.
                return .loaded(fd: Int32(truncatingIfNeeded: fd))
            case .failure(let errno):
                let needed = Int(attr.uint32(at: fields.trueSize))
                if errno == ENOSPC && logSize < maximumLogSize {
                    logSize = min(max(logSize * 2, needed), maximumLogSize)
                    continue
                }
                let truncated = errno == ENOSPC || needed > logSize
                // When the caller asked for a log up front there was no log-less attempt, and at
                // the size limit ENOSPC is the only verdict we have.
                return .failed(errno: verdict ?? errno, log: buffer.cStringPrefix(), logTruncated: truncated)
            }
        }
    }

    private static func attempt(_ command: BPFCommand, _ attr: inout BPFAttr, _ retries: Int) -> SyscallOutcome {
        var outcome = BPFSys.invoke(command, &attr)
        var left = retries
        while case .failure(let errno) = outcome, errno == EAGAIN, left > 0 {
            left -= 1
            outcome = BPFSys.invoke(command, &attr)
        }
        return outcome
    }
}

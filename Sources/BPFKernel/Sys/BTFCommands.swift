import Glibc

/// Offsets in `union bpf_attr` for BPF_BTF_LOAD (include/uapi/linux/bpf.h, Linux 6.18).
private enum BTFLoadAttr {
    static let btf = 0  // u64 pointer
    static let logBuf = 8  // u64 pointer
    static let btfSize = 16
    static let logSize = 20
    static let logLevel = 24
    static let logTrueSize = 28
    static let btfFlags = 32
    static let btfTokenFD = 36
    /// Up to and including `btf_token_fd`.
    static let size = 40

    static let logFields = AttrLogFields(level: logLevel, size: logSize, buffer: logBuf, trueSize: logTrueSize)
}

extension BPFSys {
    /// BPF_BTF_LOAD of a raw BTF blob (header, types, strings). Uses the same log policy as
    /// programs: no log first, then a growing log to explain a rejection.
    public static func btfLoad(data: [UInt8], logLevel: UInt32 = 0) throws(BPFError) -> BPFFD {
        guard !data.isEmpty, data.count <= Int(UInt32.max) else {
            throw .invalidArgument("btf blob must be 1 byte to 4 GiB, found \(data.count) bytes")
        }
        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: BTFLoadAttr.size)
        attr.set(pointer: memory.copy(data)?.baseAddress, at: BTFLoadAttr.btf)
        attr.set(UInt32(data.count), at: BTFLoadAttr.btfSize)

        // libbpf does not retry BTF loads on EAGAIN; the BTF checker is not interruptible.
        let outcome = VerifierLogPolicy.load(
            command: .btfLoad, attr: attr, fields: BTFLoadAttr.logFields,
            requestedLevel: logLevel, eagainRetries: 0)
        switch outcome {
        case .loaded(let fd):
            return BPFFD(adopting: fd)
        case .failed(let errno, let log, let truncated):
            if log.isEmpty {
                throw .syscall(
                    command: .btfLoad, errno: errno,
                    context: "loading \(data.count) bytes of btf; the kernel wrote no log")
            }
            throw .btfRejected(errno: errno, log: log, logTruncated: truncated)
        }
    }
}

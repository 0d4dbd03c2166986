import Glibc

/// Offsets in `union bpf_attr` for BPF_PROG_LOAD (include/uapi/linux/bpf.h, Linux 6.18).
private enum ProgLoadAttr {
    static let progType = 0
    static let insnCount = 4
    static let insns = 8  // u64 pointer
    static let license = 16  // u64 pointer
    static let logLevel = 24
    static let logSize = 28
    static let logBuf = 32  // u64 pointer
    static let kernVersion = 40
    static let progFlags = 44
    static let progName = 48  // char[16]
    static let progIfindex = 64
    static let expectedAttachType = 68
    static let progBTFFD = 72
    static let funcInfoRecSize = 76
    static let funcInfo = 80  // u64 pointer
    static let funcInfoCount = 88
    static let lineInfoRecSize = 92
    static let lineInfo = 96  // u64 pointer
    static let lineInfoCount = 104
    static let attachBTFID = 108
    /// A union: `attach_prog_fd` or `attach_btf_obj_fd`.
    static let attachFD = 112
    static let coreReloCount = 116
    static let fdArray = 120  // u64 pointer
    static let coreRelos = 128  // u64 pointer
    static let coreReloRecSize = 136
    static let logTrueSize = 140
    static let progTokenFD = 144
    static let fdArrayCount = 148
    /// Up to and including `fd_array_cnt`; the signature fields after it are unused.
    static let size = 152

    static let logFields = AttrLogFields(level: logLevel, size: logSize, buffer: logBuf, trueSize: logTrueSize)
}

/// Offsets for BPF_PROG_TEST_RUN (`test` in `union bpf_attr`).
private enum TestRunAttr {
    static let progFD = 0
    static let retval = 4
    static let dataSizeIn = 8
    static let dataSizeOut = 12
    static let dataIn = 16  // u64 pointer
    static let dataOut = 24  // u64 pointer
    static let `repeat` = 32
    static let duration = 36
    static let ctxSizeIn = 40
    static let ctxSizeOut = 44
    static let ctxIn = 48  // u64 pointer
    static let ctxOut = 56  // u64 pointer
    static let flags = 64
    static let cpu = 68
    /// Up to and including `cpu`; `batch_size` (XDP live frames) is unused.
    static let size = 72
}

/// Offsets for BPF_PROG_BIND_MAP.
private enum BindMapAttr {
    static let progFD = 0
    static let mapFD = 4
    static let flags = 8
    static let size = 12
}

/// Everything BPF_PROG_LOAD takes, with the defaults of a plain program.
public struct ProgramLoadRequest: Sendable {
    /// `enum bpf_prog_type`.
    public var type: UInt32
    /// `enum bpf_attach_type`; 0 where the program type needs none.
    public var expectedAttachType: UInt32 = 0
    /// Encoded instructions, 8 bytes each, in host byte order (as in the ELF section).
    public var instructions: [UInt8]
    public var license: String
    /// Checked only by very old kernels for kprobes; libbpf passes the running kernel's.
    public var kernelVersion: UInt32 = 0
    /// Sanitised with `BPFSys.objectName(_:)`; the full name stays in errors.
    public var name: String = ""
    public var flags: UInt32 = 0
    /// BTF describing func_info/line_info; required when those are non-empty.
    public var btfFD: BPFFD?
    public var funcInfo: [UInt8] = []
    public var funcInfoRecordSize: UInt32 = 0
    public var lineInfo: [UInt8] = []
    public var lineInfoRecordSize: UInt32 = 0
    public var attachBTFID: UInt32 = 0
    /// Module BTF holding `attachBTFID` (nil: vmlinux). Exclusive with `attachProgramFD`.
    public var attachBTFObjectFD: BPFFD?
    /// Target program for freplace/fentry-on-BPF. Exclusive with `attachBTFObjectFD`.
    public var attachProgramFD: BPFFD?
    /// `fd_array`: indexed by ld_imm64/kfunc `off`; nil entries are holes (0), as index 0 is.
    public var fdArray: [BPFFD?] = []
    /// `struct bpf_core_relo` records for the kernel to apply.
    public var coreRelocations: [UInt8] = []
    public var coreRelocationRecordSize: UInt32 = 0
    /// 0: load without a log first (libbpf's default). ≥1: ask for a log from the start.
    public var logLevel: UInt32 = 0

    public init(type: UInt32, instructions: [UInt8], license: String, name: String = "") {
        self.type = type
        self.instructions = instructions
        self.license = license
        self.name = name
    }

    /// Instructions as 64-bit words (`code | regs<<8 | off<<16 | imm<<32`), written in host
    /// byte order so that on little-endian hosts the layout matches `struct bpf_insn`.
    public init(type: UInt32, instructions: [UInt64], license: String, name: String = "") {
        self.init(type: type, instructions: Self.bytes(of: instructions), license: license, name: name)
    }

    static func bytes(of words: [UInt64]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(words.count * 8)
        for word in words {
            withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }
}

/// What BPF_PROG_TEST_RUN reports.
public struct ProgramTestRunResult: Sendable, Equatable {
    /// The program's return value (r0), truncated to 32 bits by the kernel.
    public var returnValue: UInt32
    /// Average run time per repetition, in nanoseconds.
    public var duration: UInt32
    public var dataOut: [UInt8]
    public var contextOut: [UInt8]
}

extension BPFSys {
    /// BPF_PROG_LOAD with libbpf's log policy (see `VerifierLogPolicy`). A verifier rejection
    /// throws `.verifier` carrying the whole log; a failure with an empty log (EPERM, EBADF, ...)
    /// throws `.syscall`.
    public static func progLoad(_ request: ProgramLoadRequest) throws(BPFError) -> BPFFD {
        let displayName = request.name.isEmpty ? "<unnamed>" : request.name
        guard !request.instructions.isEmpty, request.instructions.count % 8 == 0 else {
            throw .invalidArgument(
                "program \"\(displayName)\" needs a non-empty multiple of 8 instruction bytes, "
                    + "found \(request.instructions.count)")
        }
        if request.attachBTFObjectFD != nil && request.attachProgramFD != nil {
            throw .invalidArgument(
                "program \"\(displayName)\" sets both attach_btf_obj_fd and attach_prog_fd, "
                    + "which share one field in the kernel's attr")
        }
        let funcInfoCount = try recordCount(
            request.funcInfo, request.funcInfoRecordSize, what: "func_info", program: displayName)
        let lineInfoCount = try recordCount(
            request.lineInfo, request.lineInfoRecordSize, what: "line_info", program: displayName)
        let coreReloCount = try recordCount(
            request.coreRelocations, request.coreRelocationRecordSize, what: "core_relos",
            program: displayName)

        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: ProgLoadAttr.size)
        attr.set(request.type, at: ProgLoadAttr.progType)
        attr.set(UInt32(request.instructions.count / 8), at: ProgLoadAttr.insnCount)
        attr.set(pointer: memory.copy(request.instructions)?.baseAddress, at: ProgLoadAttr.insns)
        attr.set(pointer: memory.cString(request.license).baseAddress, at: ProgLoadAttr.license)
        attr.set(request.kernelVersion, at: ProgLoadAttr.kernVersion)
        attr.set(request.flags, at: ProgLoadAttr.progFlags)
        attr.set(bytes: Array(objectName(request.name).utf8), at: ProgLoadAttr.progName)
        attr.set(request.expectedAttachType, at: ProgLoadAttr.expectedAttachType)
        attr.set(memory.fd(request.btfFD), at: ProgLoadAttr.progBTFFD)
        if funcInfoCount > 0 {
            attr.set(request.funcInfoRecordSize, at: ProgLoadAttr.funcInfoRecSize)
            attr.set(pointer: memory.copy(request.funcInfo)?.baseAddress, at: ProgLoadAttr.funcInfo)
            attr.set(funcInfoCount, at: ProgLoadAttr.funcInfoCount)
        }
        if lineInfoCount > 0 {
            attr.set(request.lineInfoRecordSize, at: ProgLoadAttr.lineInfoRecSize)
            attr.set(pointer: memory.copy(request.lineInfo)?.baseAddress, at: ProgLoadAttr.lineInfo)
            attr.set(lineInfoCount, at: ProgLoadAttr.lineInfoCount)
        }
        attr.set(request.attachBTFID, at: ProgLoadAttr.attachBTFID)
        attr.set(memory.fd(request.attachProgramFD ?? request.attachBTFObjectFD), at: ProgLoadAttr.attachFD)
        if coreReloCount > 0 {
            attr.set(coreReloCount, at: ProgLoadAttr.coreReloCount)
            attr.set(pointer: memory.copy(request.coreRelocations)?.baseAddress, at: ProgLoadAttr.coreRelos)
            attr.set(request.coreRelocationRecordSize, at: ProgLoadAttr.coreReloRecSize)
        }
        if !request.fdArray.isEmpty {
            // fd_array_cnt stays 0, as in libbpf: with a count the kernel would bind every map
            // in the array to the program and reject holes.
            var raw: [UInt8] = []
            raw.reserveCapacity(request.fdArray.count * 4)
            for fd in request.fdArray {
                let value = Int32(bitPattern: memory.fd(fd))
                withUnsafeBytes(of: value) { raw.append(contentsOf: $0) }
            }
            attr.set(pointer: memory.copy(raw)?.baseAddress, at: ProgLoadAttr.fdArray)
        }

        let outcome = VerifierLogPolicy.load(
            command: .progLoad, attr: attr, fields: ProgLoadAttr.logFields,
            requestedLevel: request.logLevel, eagainRetries: VerifierLogPolicy.programEAGAINRetries)
        switch outcome {
        case .loaded(let fd):
            return BPFFD(adopting: fd)
        case .failed(let errno, let log, let truncated):
            if log.isEmpty {
                throw .syscall(
                    command: .progLoad, errno: errno,
                    context: "loading program \"\(displayName)\" (type \(request.type), "
                        + "\(request.instructions.count / 8) instructions); the kernel wrote no log")
            }
            throw .verifier(
                VerifierError(programName: displayName, errno: errno, log: log, logTruncated: truncated))
        }
    }

    /// One BPF_PROG_LOAD with a caller-sized log and no policy: feature probes need the exact
    /// log of a single attempt. Returns the fd (or errno) and the log text.
    static func progLoadOnce(
        type: UInt32, instructions: [UInt64], license: String, logLevel: UInt32, logSize: Int
    ) -> (fd: BPFFD?, errno: Int32, log: String) {
        let memory = AttrMemory()
        defer { memory.release() }
        let log = memory.zeroed(count: logSize)
        var attr = BPFAttr(size: ProgLoadAttr.size)
        attr.set(type, at: ProgLoadAttr.progType)
        attr.set(UInt32(instructions.count), at: ProgLoadAttr.insnCount)
        attr.set(
            pointer: memory.copy(ProgramLoadRequest.bytes(of: instructions))?.baseAddress, at: ProgLoadAttr.insns)
        attr.set(pointer: memory.cString(license).baseAddress, at: ProgLoadAttr.license)
        attr.set(logLevel, at: ProgLoadAttr.logLevel)
        attr.set(UInt32(logSize), at: ProgLoadAttr.logSize)
        attr.set(pointer: log.baseAddress, at: ProgLoadAttr.logBuf)
        switch invoke(.progLoad, &attr) {
        case .success(let fd):
            return (BPFFD(adopting: Int32(truncatingIfNeeded: fd)), 0, log.cStringPrefix())
        case .failure(let errno):
            return (nil, errno, log.cStringPrefix())
        }
    }

    /// BPF_PROG_TEST_RUN. `dataOutSize`/`ctxOutSize` 0 means "no output buffer". Socket-filter
    /// and TC programs need at least 14 bytes of data (an Ethernet header). Syscall programs
    /// take no output buffer: the kernel writes the context back into the input buffer, which
    /// `contextOut` then returns when `ctxOutSize` is 0.
    public static func progTestRun(
        fd: BPFFD,
        dataIn: [UInt8] = [],
        dataOutSize: Int = 0,
        ctxIn: [UInt8] = [],
        ctxOutSize: Int = 0,
        repeat repetitions: UInt32 = 1,
        flags: UInt32 = 0
    ) throws(BPFError) -> ProgramTestRunResult {
        let memory = AttrMemory()
        defer { memory.release() }
        let dataOut = dataOutSize > 0 ? memory.zeroed(count: dataOutSize) : nil
        let ctxOut = ctxOutSize > 0 ? memory.zeroed(count: ctxOutSize) : nil
        var attr = BPFAttr(size: TestRunAttr.size)
        attr.set(memory.fd(fd), at: TestRunAttr.progFD)
        attr.set(UInt32(dataIn.count), at: TestRunAttr.dataSizeIn)
        attr.set(UInt32(dataOutSize), at: TestRunAttr.dataSizeOut)
        attr.set(pointer: memory.copy(dataIn)?.baseAddress, at: TestRunAttr.dataIn)
        attr.set(pointer: dataOut?.baseAddress, at: TestRunAttr.dataOut)
        attr.set(repetitions, at: TestRunAttr.repeat)
        attr.set(UInt32(ctxIn.count), at: TestRunAttr.ctxSizeIn)
        attr.set(UInt32(ctxOutSize), at: TestRunAttr.ctxSizeOut)
        let ctxInBuffer = memory.copy(ctxIn)
        attr.set(pointer: ctxInBuffer?.baseAddress, at: TestRunAttr.ctxIn)
        attr.set(pointer: ctxOut?.baseAddress, at: TestRunAttr.ctxOut)
        attr.set(flags, at: TestRunAttr.flags)
        _ = try call(
            .progTestRun, &attr,
            context: "test-running program fd \(fd.rawValue) with \(dataIn.count) bytes of data and \(ctxIn.count) of context")
        // The kernel reports how much it wrote; never trust it beyond our buffers.
        let dataCount = min(Int(attr.uint32(at: TestRunAttr.dataSizeOut)), dataOutSize)
        let ctxCount = min(Int(attr.uint32(at: TestRunAttr.ctxSizeOut)), ctxOutSize)
        return ProgramTestRunResult(
            returnValue: attr.uint32(at: TestRunAttr.retval),
            duration: attr.uint32(at: TestRunAttr.duration),
            dataOut: dataOut.map { Array($0.prefix(dataCount)) } ?? [],
            contextOut: ctxOut.map { Array($0.prefix(ctxCount)) } ?? ctxInBuffer.map { Array($0) } ?? [])
    }

    /// BPF_PROG_BIND_MAP: keeps `mapFD` alive as long as the program, though no instruction
    /// references it (libbpf binds `.rodata` so tools can find a program's config).
    public static func progBindMap(progFD: BPFFD, mapFD: BPFFD, flags: UInt32 = 0) throws(BPFError) {
        let memory = AttrMemory()
        defer { memory.release() }
        var attr = BPFAttr(size: BindMapAttr.size)
        attr.set(memory.fd(progFD), at: BindMapAttr.progFD)
        attr.set(memory.fd(mapFD), at: BindMapAttr.mapFD)
        attr.set(flags, at: BindMapAttr.flags)
        _ = try call(
            .progBindMap, &attr,
            context: "binding map fd \(mapFD.rawValue) to program fd \(progFD.rawValue)")
    }

    private static func recordCount(
        _ bytes: [UInt8], _ recordSize: UInt32, what: String, program: String
    ) throws(BPFError) -> UInt32 {
        if bytes.isEmpty { return 0 }
        guard recordSize > 0, bytes.count % Int(recordSize) == 0 else {
            throw .invalidArgument(
                "\(what) of program \"\(program)\" is \(bytes.count) bytes, not a multiple of its "
                    + "record size \(recordSize)")
        }
        return UInt32(bytes.count / Int(recordSize))
    }
}

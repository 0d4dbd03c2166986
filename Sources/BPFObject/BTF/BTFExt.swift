/// `.BTF.ext`: per-section function info, line info and CO-RE relocation records. Offsets in
/// records are byte offsets into the named ELF section, as the compiler wrote them.
public struct BTFExt: Sendable, Equatable {
    public struct FuncInfo: Sendable, Equatable {
        public var instructionOffset: UInt32
        public var typeID: UInt32
    }
    public struct LineInfo: Sendable, Equatable {
        public var instructionOffset: UInt32
        public var fileNameOffset: UInt32
        public var lineOffset: UInt32
        public var lineColumn: UInt32
    }
    /// A CO-RE relocation; `kind` is the kernel's `enum bpf_core_relo_kind`.
    public struct CoreRelocation: Sendable, Equatable {
        public var instructionOffset: UInt32
        public var typeID: UInt32
        public var accessStringOffset: UInt32
        public var kind: UInt32
    }

    public var funcInfo: [String: [FuncInfo]] = [:]
    public var lineInfo: [String: [LineInfo]] = [:]
    public var coreRelocations: [String: [CoreRelocation]] = [:]

    public init() {}

    public init(parsing bytes: [UInt8], btf: BTF) throws(BTFError) {
        let r = ByteReader(bytes)
        func u32(_ o: Int) throws(BTFError) -> UInt32 {
            do { return try r.u32(o) } catch {
                throw .truncated(what: ".BTF.ext", offset: o, needed: 4, available: bytes.count)
            }
        }
        guard bytes.count >= 24 else { throw .badExt(reason: "\(bytes.count) bytes, shorter than the header") }
        let magic = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
        guard magic == BTF.magic else { throw .badExt(reason: "bad magic 0x\(String(magic, radix: 16))") }
        guard bytes[2] == 1 else { throw .badExt(reason: "version \(bytes[2]), expected 1") }
        let hdrLen = Int(try u32(4))
        guard hdrLen >= 24, hdrLen <= bytes.count else { throw .badExt(reason: "header length \(hdrLen)") }

        /// The blocks of one info segment: each block's section name, the offset of its first
        /// record, its record count and the record size (all checked to lie inside `bytes`).
        func segment(_ off: UInt32, _ len: UInt32, minRecord: Int, _ what: String) throws(BTFError) -> [(name: String, first: Int, count: Int, size: Int)] {
            guard len > 0 else { return [] }
            let start = hdrLen + Int(off)
            let (end, o) = start.addingReportingOverflow(Int(len))
            guard !o, end <= bytes.count else { throw .badExt(reason: "\(what) section [\(start), +\(len)) outside the blob") }
            let recSize = Int(try u32(start))
            guard recSize >= minRecord, recSize % 4 == 0, recSize <= 1024 else {
                throw .badExt(reason: "\(what) record size \(recSize)")
            }
            var out: [(name: String, first: Int, count: Int, size: Int)] = []
            var p = start + 4
            while p < end {
                guard p + 8 <= end else { throw .badExt(reason: "\(what) block header truncated") }
                let nameOff = try u32(p)
                let n = Int(try u32(p + 4))
                p += 8
                guard n > 0 else { throw .badExt(reason: "\(what) block with no records") }
                let (bytesNeeded, ov) = n.multipliedReportingOverflow(by: recSize)
                guard !ov, p + bytesNeeded <= end else { throw .badExt(reason: "\(what) block of \(n) records truncated") }
                guard Int(nameOff) > 0, Int(nameOff) < btf.strings.count else { throw .badString(offset: nameOff) }
                out.append((btf.string(at: nameOff), p, n, recSize))
                p += bytesNeeded
            }
            return out
        }

        /// A block's records, decoded straight from the bytes. `segment` has checked that the
        /// block lies inside `bytes` and that the record size covers the fields `decode` reads
        /// (16 bytes at most, at least `minRecord`); the check is repeated here so that every
        /// load below is in bounds by a test in this function.
        func records<T>(_ b: (name: String, first: Int, count: Int, size: Int), fields: Int,
                        _ decode: (UnsafeRawBufferPointer, Int) -> T) throws(BTFError) -> [T] {
            let (span, o1) = b.count.multipliedReportingOverflow(by: b.size)
            let (end, o2) = b.first.addingReportingOverflow(span)
            guard !o1, !o2, b.first >= 0, b.size >= fields, end <= bytes.count else {
                throw .truncated(what: ".BTF.ext", offset: b.first, needed: span, available: bytes.count)
            }
            return bytes.withUnsafeBytes { raw in
                var list: [T] = []
                list.reserveCapacity(b.count)
                var p = b.first
                for _ in 0..<b.count {
                    list.append(decode(raw, p))
                    p += b.size
                }
                return list
            }
        }
        @inline(__always) func word(_ raw: UnsafeRawBufferPointer, _ o: Int) -> UInt32 {
            raw.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian
        }

        for b in try segment(try u32(8), try u32(12), minRecord: 8, "func_info") {
            let list = try records(b, fields: 8) { raw, p in
                FuncInfo(instructionOffset: word(raw, p), typeID: word(raw, p + 4))
            }
            funcInfo[b.name, default: []].append(contentsOf: list)
        }
        for b in try segment(try u32(16), try u32(20), minRecord: 16, "line_info") {
            let list = try records(b, fields: 16) { raw, p in
                LineInfo(instructionOffset: word(raw, p), fileNameOffset: word(raw, p + 4),
                         lineOffset: word(raw, p + 8), lineColumn: word(raw, p + 12))
            }
            lineInfo[b.name, default: []].append(contentsOf: list)
        }
        if hdrLen >= 32 {
            for b in try segment(try u32(24), try u32(28), minRecord: 16, "core_relo") {
                let list = try records(b, fields: 16) { raw, p in
                    CoreRelocation(instructionOffset: word(raw, p), typeID: word(raw, p + 4),
                                   accessStringOffset: word(raw, p + 8), kind: word(raw, p + 12))
                }
                coreRelocations[b.name, default: []].append(contentsOf: list)
            }
        }
    }
}

import Glibc

/// Offsets in `union bpf_attr` for the batch commands (`struct { in_batch; out_batch; keys;
/// values; count; map_fd; elem_flags; flags; } batch`).
enum MapBatchAttr {
    static let inBatch = 0  // u64 pointer
    static let outBatch = 8  // u64 pointer
    static let keys = 16  // u64 pointer
    static let values = 24  // u64 pointer
    static let count = 32  // u32, in: room, out: entries copied
    static let mapFD = 36  // u32
    static let elemFlags = 40  // u64
    static let flags = 48  // u64
    static let size = 56
}

/// One `BPF_MAP_LOOKUP_BATCH` answer.
public struct MapBatch: Sendable {
    /// `count` keys of `keySize` bytes, back to back.
    public var keys: [UInt8]
    /// `count` values of the per-entry value size, back to back.
    public var values: [UInt8]
    public var count: Int
    /// The kernel's position after this batch, to pass as the next `inBatch`.
    public var outBatch: [UInt8]
    /// The kernel said there is nothing after this batch (ENOENT).
    public var done: Bool
}

extension BPFSys {
    /// The errnos with which a kernel says a map type has no batch operations: `-ENOTSUPP`
    /// (524, kernel-internal, from `BPF_DO_BATCH` when the map's ops lack the callback),
    /// EOPNOTSUPP, or EINVAL from kernels that predate the command.
    public static func isBatchUnsupported(_ errno: Int32) -> Bool {
        errno == 524 || errno == EOPNOTSUPP || errno == EINVAL
    }

    /// BPF_MAP_LOOKUP_BATCH: up to `count` entries after the opaque position `inBatch` (nil for
    /// the start). `batchSize` is the room for the position: the map's key size for arrays and
    /// the generic walk, 4 bytes (a bucket number) for hash maps; pass at least both.
    /// `valueSize` is the per-entry value size (per-CPU maps: round_up(value_size, 8) × possible
    /// CPUs). ENOSPC (a hash bucket holds more entries than `count`) is returned as an error with
    /// the errno, the kernel's needed count left to the caller to retry with.
    public static func mapLookupBatch(
        fd: BPFFD, inBatch: [UInt8]?, batchSize: Int, keySize: Int, valueSize: Int, count: Int
    ) throws(BPFError) -> MapBatch {
        guard count > 0, keySize > 0, valueSize > 0, batchSize > 0 else {
            throw .invalidArgument("a batch lookup needs a positive count, key size, value size and batch size")
        }
        let memory = AttrMemory()
        defer { memory.release() }
        let keys = memory.zeroed(count: keySize * count)
        let values = memory.zeroed(count: valueSize * count)
        let out = memory.zeroed(count: batchSize)
        var attr = BPFAttr(size: MapBatchAttr.size)
        if let inBatch {
            let copy = memory.zeroed(count: batchSize)
            copy.copyBytes(from: inBatch.prefix(batchSize))
            attr.set(pointer: copy.baseAddress, at: MapBatchAttr.inBatch)
        }
        attr.set(pointer: out.baseAddress, at: MapBatchAttr.outBatch)
        attr.set(pointer: keys.baseAddress, at: MapBatchAttr.keys)
        attr.set(pointer: values.baseAddress, at: MapBatchAttr.values)
        attr.set(UInt32(count), at: MapBatchAttr.count)
        attr.set(memory.fd(fd), at: MapBatchAttr.mapFD)
        let outcome = invoke(.mapLookupBatch, &attr)
        let copied = min(Int(attr.uint32(at: MapBatchAttr.count)), count)
        switch outcome {
        case .success, .failure(errno: ENOENT):
            var done = false
            if case .failure = outcome { done = true }
            return MapBatch(keys: Array(keys.prefix(copied * keySize)), values: Array(values.prefix(copied * valueSize)),
                            count: copied, outBatch: Array(out), done: done)
        case .failure(let errno):
            throw .syscall(command: .mapLookupBatch, errno: errno,
                           context: "reading up to \(count) entries of map fd \(fd.rawValue) in one batch (needed room: \(attr.uint32(at: MapBatchAttr.count)))")
        }
    }

    /// How many CPUs the kernel counts as possible (`/sys/devices/system/cpu/possible`, e.g.
    /// "0-3" or "0,2-5"): per-CPU map values hold one slot per possible CPU.
    public static func possibleCPUs() throws(BPFError) -> Int {
        let path = "/sys/devices/system/cpu/possible"
        guard let file = fopen(path, "r") else {
            throw .system(call: "fopen", errno: errno, context: "reading \(path)")
        }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 256)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else {
            throw .system(call: "fgets", errno: errno, context: "reading \(path)")
        }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let n = parseCPUList(text) else { throw .invalidArgument("\(path) holds '\(text)', not a CPU list") }
        return n
    }

    /// The number of CPUs in a kernel CPU list ("0-3,6"); nil if it is not one.
    static func parseCPUList(_ text: String) -> Int? {
        var total = 0
        let trimmed = text.filter { !$0.isWhitespace }
        for part in trimmed.split(separator: ",") {
            let range = part.split(separator: "-", omittingEmptySubsequences: false)
            guard let lo = range.first.flatMap({ Int($0) }) else { return nil }
            let hi = range.count == 2 ? Int(range[1]) : lo
            guard range.count <= 2, let hi, hi >= lo else { return nil }
            total += hi - lo + 1
        }
        return total > 0 ? total : nil
    }
}

import BPFObject
import Glibc

/// One key and its value as the kernel returned them (per-CPU values: one slot per possible
/// CPU, each `round_up(value_size, 8)` bytes).
public struct MapEntry: Sendable, Equatable {
    public var key: [UInt8]
    public var value: [UInt8]

    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// Where a page of entries stops, for the next page.
///
/// Batch walks continue from the kernel's own opaque position (a bucket number for hash maps),
/// which is stable while entries come and go; maps without batch operations continue after the
/// last key returned (a hash map whose last key was deleted meanwhile restarts from its first
/// key: that is BPF_MAP_GET_NEXT_KEY's rule, and why batches are preferred).
public enum MapCursor: Sendable, Equatable {
    case batch([UInt8])
    case afterKey([UInt8])

    /// `b<hex>` or `k<hex>`: opaque to clients, safe in a query string.
    public var text: String {
        switch self {
        case .batch(let b): return "b" + BPFSys.hexString(b)
        case .afterKey(let k): return "k" + BPFSys.hexString(k)
        }
    }

    public init?(text: String) {
        guard let first = text.first, let bytes = BPFSys.bytes(hex: text.dropFirst()), !bytes.isEmpty, bytes.count <= 512 else { return nil }
        switch first {
        case "b": self = .batch(bytes)
        case "k": self = .afterKey(bytes)
        default: return nil
        }
    }
}

/// A page of a map's entries and where the next one starts (nil: this was the last).
public struct MapPage: Sendable {
    public var entries: [MapEntry]
    public var next: MapCursor?
}

extension LoadedMap {
    /// Map types whose entries user space reads by key: the kinds `GET …/entries` serves.
    public static let lookupTypes: Set<BPFMapType> = [
        .hash, .array, .percpuHash, .percpuArray, .lruHash, .lruPercpuHash, .lpmTrie,
    ]

    public var supportsLookup: Bool { Self.lookupTypes.contains(spec.type) }

    /// The most key and value bytes one page holds: a page is shorter than asked when its
    /// entries are large (a per-CPU value is one slot per possible CPU), so a `limit` of 10,000
    /// on a map of 4 KiB per-CPU values cannot make the service allocate gigabytes.
    public static let maxPageBytes = 8 << 20

    /// How many entries of this shape fit in `maxPageBytes` (at least one).
    static func entriesFitting(keySize: Int, valueSize: Int) -> Int {
        max(1, maxPageBytes / max(1, keySize + valueSize))
    }

    public var isPerCPU: Bool { [.percpuHash, .percpuArray, .lruPercpuHash].contains(spec.type) }

    /// The possible-CPU count per-CPU values are laid out for (read once per process).
    public static var possibleCPUs: Int? { cachedPossibleCPUs }

    /// Bytes of one value as the syscalls exchange it.
    public func valueBytes() throws(BPFError) -> Int {
        guard isPerCPU else { return Int(spec.valueSize) }
        guard let cpus = Self.possibleCPUs else {
            throw .invalidArgument("cannot size a per-CPU value: /sys/devices/system/cpu/possible is unreadable")
        }
        return (Int(spec.valueSize) + 7) / 8 * 8 * cpus
    }

    /// Up to `limit` entries after `cursor` (nil: from the start), by batch where the kernel
    /// has batch operations for this map type and by key walk otherwise.
    ///
    /// Every type in `lookupTypes` has BPF_MAP_LOOKUP_BATCH on the kernels we test (LPM tries got
    /// the generic batch ops after hashes and arrays); the key walk serves a kernel that answers
    /// that a map type has none (ENOTSUPP, as for a devmap).
    public func page(limit: Int, after cursor: MapCursor?) throws(BPFError) -> MapPage {
        guard supportsLookup else {
            throw .invalidArgument("map '\(spec.realName)' is a \(spec.type.name) map, whose entries cannot be looked up by key")
        }
        return try readPage(limit: limit, after: cursor)
    }

    /// `page` without the type check: batch first, the key walk where the kernel refuses it.
    func readPage(limit: Int, after cursor: MapCursor?) throws(BPFError) -> MapPage {
        let keySize = Int(spec.keySize), valueSize = try valueBytes()
        let limit = min(max(1, limit), Self.entriesFitting(keySize: keySize, valueSize: valueSize))
        switch cursor {
        case .afterKey(let key):
            guard key.count == keySize else { throw .invalidArgument("cursor key has \(key.count) bytes, the map's keys \(keySize)") }
            return try walk(limit: limit, after: key, valueSize: valueSize)
        case .batch(let token):
            return try batchPage(limit: limit, token: token, valueSize: valueSize)
        case nil:
            do {
                return try batchPage(limit: limit, token: nil, valueSize: valueSize)
            } catch .syscall(.mapLookupBatch, let errno, _) where BPFSys.isBatchUnsupported(errno) {
                return try walk(limit: limit, after: nil, valueSize: valueSize)
            }
        }
    }

    private func batchPage(limit: Int, token: [UInt8]?, valueSize: Int) throws(BPFError) -> MapPage {
        let keySize = Int(spec.keySize)
        let batchSize = max(keySize, 8)
        var count = limit
        for _ in 0..<4 {
            do {
                let batch = try BPFSys.mapLookupBatch(fd: fd, inBatch: token, batchSize: batchSize, keySize: keySize,
                                                      valueSize: valueSize, count: count)
                var entries: [MapEntry] = []
                entries.reserveCapacity(batch.count)
                for i in 0..<batch.count {
                    entries.append(MapEntry(key: Array(batch.keys[(i * keySize)..<((i + 1) * keySize)]),
                                            value: Array(batch.values[(i * valueSize)..<((i + 1) * valueSize)])))
                }
                return MapPage(entries: entries, next: batch.done ? nil : .batch(batch.outBatch))
            } catch .syscall(.mapLookupBatch, ENOSPC, _) {
                // One hash bucket holds more entries than `count`: whole buckets only.
                count = min(count * 4, 1 << 16, Self.entriesFitting(keySize: keySize, valueSize: valueSize))
            }
        }
        throw .invalidArgument("map '\(spec.realName)': a hash bucket holds more than \(count) entries")
    }

    private func walk(limit: Int, after start: [UInt8]?, valueSize: Int) throws(BPFError) -> MapPage {
        var entries: [MapEntry] = []
        var previous = start
        while entries.count < limit, let key = try BPFSys.mapGetNextKey(fd: fd, key: previous, keySize: Int(spec.keySize)) {
            previous = key
            // Deleted between the two calls: skipped, as a walk made a moment later would.
            if let value = try BPFSys.mapLookup(fd: fd, key: key, valueSize: valueSize) {
                entries.append(MapEntry(key: key, value: value))
            }
        }
        let more = entries.count == limit
        return MapPage(entries: entries, next: more ? previous.map { .afterKey($0) } : nil)
    }

    public func lookup(key: [UInt8]) throws(BPFError) -> [UInt8]? {
        try BPFSys.mapLookup(fd: fd, key: key, valueSize: try valueBytes())
    }

    /// BPF_MAP_UPDATE_ELEM with `flags` (`BPFConstants.UpdateFlag`): `noExist` makes the kernel
    /// answer EEXIST for a key it holds (every key of an array), `exist` ENOENT for one it lacks.
    public func update(key: [UInt8], value: [UInt8], flags: UInt64 = BPFConstants.UpdateFlag.any) throws(BPFError) {
        try BPFSys.mapUpdate(fd: fd, key: key, value: value, flags: flags)
    }

    @discardableResult
    public func delete(key: [UInt8]) throws(BPFError) -> Bool {
        try BPFSys.mapDelete(fd: fd, key: key)
    }
}

private let cachedPossibleCPUs: Int? = try? BPFSys.possibleCPUs()

extension BPFSys {
    static func hexString(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Lower- or upper-case hex, an even number of digits; nil otherwise.
    public static func bytes<S: StringProtocol>(hex text: S) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

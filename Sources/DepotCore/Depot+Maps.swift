import BPFKernel
import Glibc
import BPFObject

/// A map of a live load as clients see it.
public struct MapView: Sendable {
    public let map: LoadedMap
    public let keyType: String?
    public let valueType: String?
    /// How many entries it holds, where the kernel tells that without a walk (arrays: all of
    /// them always exist); nil otherwise.
    public let entries: Int?

    /// libbpf's `bpf_map__name`: the whole section name for a custom data section's map
    /// (`.data.read_mostly`), the kernel's name otherwise.
    public var name: String { map.spec.libbpfName }

    public var json: JSONValue {
        .object([
            ("name", .string(name)),
            ("kernelName", .string(map.spec.name)),
            ("type", .string(map.spec.type.name)),
            ("kernelId", .uint(UInt64(map.id))),
            ("keySize", .uint(UInt64(map.spec.keySize))),
            ("valueSize", .uint(UInt64(map.spec.valueSize))),
            ("maxEntries", .uint(UInt64(map.spec.maxEntries))),
            ("flags", .uint(UInt64(map.spec.flags))),
            ("keyType", keyType.map { .string($0) } ?? .null),
            ("valueType", valueType.map { .string($0) } ?? .null),
            ("entries", entries.map { .int(Int64($0)) } ?? .null),
            ("lookup", .bool(map.supportsLookup)),
        ])
    }
}

/// A key as a client wrote it: typed JSON (encoded through the map's BTF key type) or raw bytes.
public enum MapKeyInput: Sendable {
    case json(JSONValue)
    case bytes([UInt8])

    /// `hex:0a000001…` is raw bytes; anything else is JSON text, and text that is not JSON is
    /// taken as a JSON string (so `?key=eth0` works for a `char[16]` key).
    public init(text: String) {
        if text.hasPrefix("hex:"), let b = BPFSys.bytes(hex: text.dropFirst(4)) {
            self = .bytes(b)
        } else if let v = try? JSONValue(parsing: text) {
            self = .json(v)
        } else {
            self = .json(.string(text))
        }
    }
}

/// One read of a page of a map's entries: the bytes the kernel returned, decoded on demand.
public struct MapEntriesRead: Sendable {
    public let loadID: Int64
    public let map: LoadedMap
    public let btf: BTF?
    public let page: MapPage
    /// Possible CPUs (per-CPU maps: slots per value).
    public let cpus: Int

    /// FNV-1a over every key and value and the cursor: the page's content tag.
    public var contentHash: UInt64 {
        var h = MapContentHash()
        for e in page.entries {
            h.mix(e.key)
            h.mix(e.value)
        }
        h.mix(Array((page.next?.text ?? "").utf8))
        return h.value
    }

    public var json: JSONValue {
        .object([
            ("load", .int(loadID)),
            ("map", .string(map.spec.libbpfName)),
            ("entries", .array(page.entries.map { Depot.entryJSON($0, map: map, btf: btf, cpus: cpus) })),
            ("next", page.next.map { .string($0.text) } ?? .null),
        ])
    }
}

/// One entry read by key: the kernel's bytes, decoded on demand.
public struct MapEntryRead: Sendable {
    public let map: LoadedMap
    public let btf: BTF?
    public let entry: MapEntry
    public let cpus: Int

    /// FNV-1a over the key and the value: the entry's content tag.
    public var contentHash: UInt64 {
        var h = MapContentHash()
        h.mix(entry.key)
        h.mix(entry.value)
        return h.value
    }

    /// `{"key", "value"}` (per-CPU: `{"key", "values", "sum"}`).
    public var json: JSONValue { Depot.entryJSON(entry, map: map, btf: btf, cpus: cpus) }
}

/// FNV-1a over length-prefixed byte strings (so `ab|c` and `a|bc` differ).
struct MapContentHash {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func mix(_ bytes: [UInt8]) {
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: bytes.count).littleEndian) { for x in $0 { step(x) } }
        for x in bytes { step(x) }
    }

    private mutating func step(_ x: UInt8) { value = (value ^ UInt64(x)) &* 0x100_0000_01b3 }
}

/// What a write may find: any entry, none (create only: `If-None-Match: *`, the kernel's
/// BPF_NOEXIST), or one already there (replace only: `If-Match: *`, BPF_EXIST).
public enum MapWriteCondition: Sendable {
    case any, createOnly, replaceOnly

    var flags: UInt64 {
        switch self {
        case .any: BPFConstants.UpdateFlag.any
        case .createOnly: BPFConstants.UpdateFlag.noExist
        case .replaceOnly: BPFConstants.UpdateFlag.exist
        }
    }
}

extension Depot {
    /// The most entries one page may ask for.
    public static let maxMapPage = 10_000

    /// Every map of a live load, in the object's order.
    public func maps(loadID: Int64) throws(DepotError) -> [MapView] {
        let obj = try loaded(loadID)
        return obj.maps.map { m in
            let btf = obj.spec.btf
            func typeName(_ id: UInt32) -> String? { id == 0 ? nil : btf?.typeName(id) }
            let count: Int? = [.array, .percpuArray].contains(m.spec.type) ? Int(m.spec.maxEntries)
                : (m.spec.role == .kconfig || { if case .globalData = m.spec.role { return true }; return false }()) ? 1 : nil
            return MapView(map: m, keyType: typeName(m.spec.btfKeyTypeID), valueType: typeName(m.spec.btfValueTypeID), entries: count)
        }
    }

    /// A page of a map's entries (see `MapEntriesRead`). `after` is the `next` of the page before.
    public func mapEntries(loadID: Int64, map name: String, limit: Int, after: String?) throws(DepotError) -> MapEntriesRead {
        let (obj, map) = try readableMap(loadID, name)
        var cursor: MapCursor?
        if let after {
            guard let c = MapCursor(text: after) else { throw .badMapKey(map: name, reason: "'after' is not a cursor this service returned: '\(after.prefix(80))'") }
            cursor = c
        }
        let page: MapPage
        do { page = try map.page(limit: min(max(1, limit), Self.maxMapPage), after: cursor) } catch { throw .mapOperation(map: name, error) }
        return MapEntriesRead(loadID: loadID, map: map, btf: obj.spec.btf, page: page, cpus: LoadedMap.possibleCPUs ?? 1)
    }

    /// One entry by key: `{"key", "value"}` (per-CPU: `{"key", "values", "sum"}`).
    public func mapEntry(loadID: Int64, map name: String, key: MapKeyInput) throws(DepotError) -> JSONValue {
        try mapEntryRead(loadID: loadID, map: name, key: key).json
    }

    /// One entry by key, with its content tag (see `MapEntryRead`).
    public func mapEntryRead(loadID: Int64, map name: String, key: MapKeyInput) throws(DepotError) -> MapEntryRead {
        let (obj, map) = try readableMap(loadID, name)
        let k = try keyBytes(key, map: map, btf: obj.spec.btf, name: name)
        let value: [UInt8]?
        do { value = try map.lookup(key: k) } catch { throw .mapOperation(map: name, error) }
        guard let value else { throw .mapEntryNotFound(map: name, key: Self.keyText(k, map: map, btf: obj.spec.btf)) }
        return MapEntryRead(map: map, btf: obj.spec.btf, entry: MapEntry(key: k, value: value), cpus: LoadedMap.possibleCPUs ?? 1)
    }

    /// Creates or replaces one entry. `value` is `{"value": X}` (per-CPU maps: X for every CPU),
    /// or `{"values": [X0, X1, …]}` for a per-CPU map (one per possible CPU). Every value is
    /// encoded before anything is written; members left out are zero.
    /// `condition` asks the kernel to create only or replace only (`mapWriteRefused` when the
    /// entry is, or is not, there: an array has every key, so it can never be created).
    public func putMapEntry(loadID: Int64, map name: String, key: MapKeyInput, body: [(String, JSONValue)],
                            condition: MapWriteCondition = .any) throws(DepotError) -> JSONValue {
        let (obj, map) = try readableMap(loadID, name)
        let btf = obj.spec.btf
        let k = try keyBytes(key, map: map, btf: btf, name: name)
        let cpus = LoadedMap.possibleCPUs ?? 1
        let slot = Int(map.spec.valueSize)
        let stride = map.isPerCPU ? (slot + 7) / 8 * 8 : slot
        let slots = map.isPerCPU ? cpus : 1
        var perSlot: [JSONValue]
        switch (body.count, body.first?.0, body.first?.1) {
        case (1, "value", let v?):
            perSlot = Array(repeating: v, count: slots)
        case (1, "values", .array(let items)?) where map.isPerCPU:
            guard items.count == cpus else {
                throw .badMapValue(map: name, reason: "expected \(cpus) values (one per possible CPU), found \(items.count)")
            }
            perSlot = items
        default:
            throw .badMapValue(map: name, reason: map.isPerCPU
                ? "expected an object like {\"value\": …} (every CPU) or {\"values\": [… one per CPU]}"
                : "expected an object like {\"value\": …}")
        }
        var bytes = [UInt8](repeating: 0, count: stride * slots)
        for (i, v) in perSlot.enumerated() {
            var one = [UInt8](repeating: 0, count: slot)
            try encode(v, typeID: map.spec.btfValueTypeID, size: slot, btf: btf, into: &one, map: name, what: "value")
            bytes.replaceSubrange((i * stride)..<(i * stride + slot), with: one)
        }
        do { try map.update(key: k, value: bytes, flags: condition.flags) } catch {
            switch (condition, error.errno) {
            case (.createOnly, EEXIST?):
                throw .mapWriteRefused(map: name, key: Self.keyText(k, map: map, btf: btf), reason: "the entry exists and If-None-Match: * asked to create it only")
            case (.replaceOnly, ENOENT?):
                throw .mapWriteRefused(map: name, key: Self.keyText(k, map: map, btf: btf), reason: "there is no such entry and If-Match: * asked to replace one only")
            default:
                throw .mapOperation(map: name, error)
            }
        }
        return try mapEntry(loadID: loadID, map: name, key: .bytes(k))
    }

    /// Deletes one entry; `mapEntryNotFound` when it was not there (arrays cannot delete).
    public func deleteMapEntry(loadID: Int64, map name: String, key: MapKeyInput) throws(DepotError) {
        let (obj, map) = try readableMap(loadID, name)
        let k = try keyBytes(key, map: map, btf: obj.spec.btf, name: name)
        let deleted: Bool
        do { deleted = try map.delete(key: k) } catch { throw .mapOperation(map: name, error) }
        if !deleted { throw .mapEntryNotFound(map: name, key: Self.keyText(k, map: map, btf: obj.spec.btf)) }
    }

    // MARK: helpers

    /// The map by libbpf's name, or by the kernel's (15-character) name.
    func liveMap(_ obj: LoadedObject, _ name: String) -> LoadedMap? {
        obj.maps.first { $0.spec.libbpfName == name } ?? obj.maps.first { $0.spec.name == name || $0.spec.realName == name }
    }

    private func readableMap(_ loadID: Int64, _ name: String) throws(DepotError) -> (LoadedObject, LoadedMap) {
        let obj = try loaded(loadID)
        guard let map = liveMap(obj, name) else { throw .unknownMap(name: name, loadID: loadID) }
        guard map.supportsLookup else { throw .mapNotReadable(map: name, type: map.spec.type.name) }
        return (obj, map)
    }

    private func keyBytes(_ key: MapKeyInput, map: LoadedMap, btf: BTF?, name: String) throws(DepotError) -> [UInt8] {
        let size = Int(map.spec.keySize)
        switch key {
        case .bytes(let b):
            guard b.count == size else { throw .badMapKey(map: name, reason: "expected \(size) key bytes, found \(b.count)") }
            return b
        case .json(let v):
            // An array's key is its index even without BTF for it (global-data maps have none).
            if map.spec.btfKeyTypeID == 0, Self.isArray(map), case .uint(let n)? = Self.asUInt(v), n <= UInt64(UInt32.max) {
                return withUnsafeBytes(of: UInt32(n).littleEndian) { Array($0) }
            }
            var bytes = [UInt8](repeating: 0, count: size)
            do {
                try encode(v, typeID: map.spec.btfKeyTypeID, size: size, btf: btf, into: &bytes, map: name, what: "key")
            } catch .badMapValue(_, let reason) {
                throw .badMapKey(map: name, reason: reason)
            }
            return bytes
        }
    }

    private func encode(_ v: JSONValue, typeID: UInt32, size: Int, btf: BTF?, into bytes: inout [UInt8], map: String, what: String) throws(DepotError) {
        guard let btf, typeID != 0 else {
            guard case .string(let s) = v, s.hasPrefix("hex:"), let b = BPFSys.bytes(hex: s.dropFirst(4)), b.count == size else {
                throw .badMapValue(map: map, reason: "the map has no BTF \(what) type: expected \"hex:…\" with \(size) bytes")
            }
            bytes = b
            return
        }
        if case .string(let s) = v, s.hasPrefix("hex:"), let b = BPFSys.bytes(hex: s.dropFirst(4)) {
            guard b.count == size else { throw .badMapValue(map: map, reason: "expected \(size) \(what) bytes, found \(b.count)") }
            bytes = b
            return
        }
        do { try BTFValueEncoder(btf: btf).encode(v, as: typeID, into: &bytes, at: 0, path: what) } catch {
            throw .badMapValue(map: map, reason: error.description)
        }
    }

    static func hex(_ bytes: [UInt8]) -> JSONValue {
        .string("hex:" + bytes.map { hex2($0) }.joined())
    }

    static func decode(_ bytes: [UInt8], typeID: UInt32, btf: BTF?) -> JSONValue {
        guard let btf, typeID != 0, let v = try? BTFValueDecoder(btf: btf).decode(typeID, bytes[...]) else { return hex(bytes) }
        return v
    }

    static func keyText(_ key: [UInt8], map: LoadedMap, btf: BTF?) -> String {
        decodeKey(key, map: map, btf: btf).text
    }

    static func isArray(_ map: LoadedMap) -> Bool {
        (map.spec.type == .array || map.spec.type == .percpuArray) && map.spec.keySize == 4
    }

    static func asUInt(_ v: JSONValue) -> JSONValue? {
        switch v {
        case .uint: return v
        case .int(let i) where i >= 0: return .uint(UInt64(i))
        default: return nil
        }
    }

    /// A key through its BTF type; an array's index as a number even without one.
    static func decodeKey(_ key: [UInt8], map: LoadedMap, btf: BTF?) -> JSONValue {
        if map.spec.btfKeyTypeID == 0, isArray(map), key.count == 4 {
            return .uint(UInt64(key.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.littleEndian))
        }
        return decode(key, typeID: map.spec.btfKeyTypeID, btf: btf)
    }

    static func entryJSON(_ e: MapEntry, map: LoadedMap, btf: BTF?, cpus: Int) -> JSONValue {
        let key = decodeKey(e.key, map: map, btf: btf)
        guard map.isPerCPU else {
            return .object([("key", key), ("value", decode(e.value, typeID: map.spec.btfValueTypeID, btf: btf))])
        }
        let slot = Int(map.spec.valueSize), stride = (slot + 7) / 8 * 8
        var values: [JSONValue] = []
        var c = 0
        while c < cpus, (c + 1) * stride <= e.value.count {
            values.append(decode(Array(e.value[(c * stride)..<(c * stride + slot)]), typeID: map.spec.btfValueTypeID, btf: btf))
            c += 1
        }
        return .object([("key", key), ("values", .array(values)), ("sum", perCPUSum(values))])
    }

    /// The per-CPU values folded into one: numbers added (integers exactly while they fit, else
    /// as a double), bools true if any CPU's is, strings and other leaves kept when every CPU
    /// agrees and null when they differ; arrays and objects member by member.
    public static func perCPUSum(_ values: [JSONValue]) -> JSONValue {
        guard var acc = values.first else { return .null }
        for v in values.dropFirst() { acc = add(acc, v) }
        return acc
    }

    private static func add(_ a: JSONValue, _ b: JSONValue) -> JSONValue {
        switch (a, b) {
        case (.uint(let x), .uint(let y)):
            let (s, o) = x.addingReportingOverflow(y)
            return o ? .double(Double(x) + Double(y)) : .uint(s)
        case (.int(let x), .int(let y)):
            let (s, o) = x.addingReportingOverflow(y)
            return o ? .double(Double(x) + Double(y)) : .int(s)
        case (.int(let x), .uint(let y)), (.uint(let y), .int(let x)):
            if x >= 0 { return add(.uint(UInt64(x)), .uint(y)) }
            return y <= UInt64(Int64.max) ? add(.int(x), .int(Int64(y))) : .double(Double(x) + Double(y))
        case (.double(let x), .double(let y)): return .double(x + y)
        case (.double(let x), .int(let y)), (.int(let y), .double(let x)): return .double(x + Double(y))
        case (.double(let x), .uint(let y)), (.uint(let y), .double(let x)): return .double(x + Double(y))
        case (.bool(let x), .bool(let y)): return .bool(x || y)
        case (.array(let x), .array(let y)) where x.count == y.count:
            return .array(zip(x, y).map { add($0, $1) })
        case (.object(let x), .object(let y)) where x.map(\.0) == y.map(\.0):
            return .object(zip(x, y).map { ($0.0, add($0.1, $1.1)) })
        default:
            return a == b ? a : .null
        }
    }
}

import BPFKernel
import BPFObject
import CoreMetrics
import DepotStore
import Synchronization

/// What the depot measures about its own work, through swift-metrics handles made once from one
/// factory (the process's `MetricsSystem.factory` unless a test passes its own), plus the state
/// `GET /metrics` reads on MHD's thread without waiting for SQLite: which variables each load
/// exports and how many objects are stored.
public final class DepotMetrics: Sendable {
    /// A histogram of kernel load times (BPF_MAP_CREATE … BPF_PROG_LOAD, the verifier included),
    /// `result` = `loaded` or `failed`.
    public static let loadDurationLabel = "bpfdepot_load_duration_seconds"
    public static let verifierRejectionsLabel = "bpfdepot_verifier_rejections_total"
    /// Failed kernel loads, `reason` = one of `failureReasons`.
    public static let loadFailuresLabel = "bpfdepot_load_failures_total"
    /// Buckets a Prometheus factory should use for `loadDurationLabel`: a load takes from about
    /// a millisecond (a small program) to many seconds (a verifier walking a big one).
    public static let loadDurationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
    ]
    /// The bounded set of `reason` values: one per kind of `LoaderError`.
    public static let failureReasons = [
        "verifier", "map", "program", "arena", "extern", "kconfig", "relocation", "attach_target",
        "image", "program_section", "pin", "other",
    ]

    private let loaded: Timer
    private let failed: Timer
    private let verifierRejections: Counter
    private let failures: [String: Counter]
    /// Export lists by load id, filled from the store on first use after a start.
    let exports = Mutex<[Int64: [String]]>([:])
    /// The stored-object count, forgotten on every change (the generation tells a count taken
    /// before a change from one taken after it).
    private let objectCount = Mutex<(generation: UInt64, value: Int?)>((0, nil))

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        loaded = Timer(label: Self.loadDurationLabel, dimensions: [("result", "loaded")], factory: factory)
        failed = Timer(label: Self.loadDurationLabel, dimensions: [("result", "failed")], factory: factory)
        verifierRejections = Counter(label: Self.verifierRejectionsLabel, factory: factory)
        var failures: [String: Counter] = [:]
        for reason in Self.failureReasons {
            failures[reason] = Counter(label: Self.loadFailuresLabel, dimensions: [("reason", reason)], factory: factory)
        }
        self.failures = failures
    }

    // MARK: recording (called by Depot)

    func loadSucceeded(since start: ContinuousClock.Instant) {
        loaded.recordNanoseconds(Self.nanoseconds(start.duration(to: .now)))
    }

    func loadFailed(_ error: LoaderError, since start: ContinuousClock.Instant) {
        failed.recordNanoseconds(Self.nanoseconds(start.duration(to: .now)))
        let reason = Self.reason(error)
        if reason == "verifier" { verifierRejections.increment() }
        failures[reason]?.increment()
    }

    func objectsChanged() {
        objectCount.withLock { $0 = ($0.generation &+ 1, nil) }
    }

    /// The number of stored objects: remembered, or counted once after a change.
    func objectsStored(_ store: DepotStore) -> Int? {
        let (generation, value) = objectCount.withLock { $0 }
        if let value { return value }
        guard let counted = try? store.objectCount() else { return nil }
        objectCount.withLock { if $0.generation == generation { $0.value = counted } }
        return counted
    }

    static func reason(_ error: LoaderError) -> String {
        switch error {
        case .verifier, .program(_, .verifier): return "verifier"
        case .map: return "map"
        case .program: return "program"
        case .arena, .arenaAddressInUse: return "arena"
        case .kernelLacks: return "kernel_feature"
        case .extern: return "extern"
        case .kconfig: return "kconfig"
        case .relocation: return "relocation"
        case .attachTarget: return "attach_target"
        case .image: return "image"
        case .unknownProgramSection: return "program_section"
        case .pin: return "pin"
        case .unknownVariable, .unknownProgram, .readOnly, .outOfRange, .unloaded: return "other"
        }
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        let (seconds, attoseconds) = d.components
        return seconds.multipliedReportingOverflow(by: 1_000_000_000).partialValue &+ attoseconds / 1_000_000_000
    }
}

/// One exported number: `bpfdepot_variable{load="<loadID>", name="<name>"} <value>`.
public struct ExportedSample: Sendable, Equatable {
    public let loadID: Int64
    /// The variable's name, then `.member` and `[index]` down to the number.
    public let name: String
    public let value: Double
}

/// What `GET /metrics` shows of the depot at one moment.
public struct DepotMetricsSnapshot: Sendable {
    /// Nil when the store could not be read.
    public let objectsStored: Int?
    public let loadsActive: Int
    /// By load id, then in each load's export order (names sorted, fields in type order).
    public let variables: [ExportedSample]
    /// Run statistics of every program of every live load, by load id.
    public var programs: [ProgramSample] = []
    /// Entries of exported maps, by load id, then map, then the kernel's key order.
    public var maps: [MapSample] = []
    /// Exported maps with more entries than the load's series budget left room for.
    public var truncatedMaps: [(loadID: Int64, map: String)] = []
}

/// One exported number of a map entry: `bpfdepot_map_value{load, map, <key labels>, field}`.
public struct MapSample: Sendable, Equatable {
    public let loadID: Int64
    public let map: String
    /// The key as labels: `key` for a scalar key, `key_<member>` for each member of a struct key.
    public let keyLabels: [(String, String)]
    /// The value's numeric leaf: `value` for a scalar value, else `.member` / `[i]` paths.
    public let field: String
    public let value: Double

    public static func == (a: MapSample, b: MapSample) -> Bool {
        a.loadID == b.loadID && a.map == b.map && a.field == b.field && a.value == b.value
            && a.keyLabels.map(\.0) == b.keyLabels.map(\.0) && a.keyLabels.map(\.1) == b.keyLabels.map(\.1)
    }
}

extension Depot {
    /// Series one load may export; an export list needing more is refused.
    public static let maxExportedSeriesPerLoad = 1000

    /// Stored export names of maps carry this prefix (a C variable name cannot hold a colon), so
    /// variables and maps share the load's one export list.
    static let mapExportPrefix = "map:"

    /// The variables of a live load exported as gauges, by name.
    public func exports(loadID: Int64) throws(DepotError) -> [String] {
        try exportLists(loadID: loadID).variables
    }

    /// The variables and the maps a live load exports, each sorted by name.
    public func exportLists(loadID: Int64) throws(DepotError) -> (variables: [String], maps: [String]) {
        _ = try loaded(loadID)
        return Self.split(try exportList(loadID))
    }

    static func split(_ names: [String]) -> (variables: [String], maps: [String]) {
        var variables: [String] = [], maps: [String] = []
        for n in names {
            if n.hasPrefix(mapExportPrefix) { maps.append(String(n.dropFirst(mapExportPrefix.count))) } else { variables.append(n) }
        }
        return (variables, maps)
    }

    /// Replaces a live load's exported variables (an empty list stops exporting). Every name must
    /// be a variable of the load with at least one numeric field, and the load's series stay
    /// within `maxExportedSeriesPerLoad`.
    public func setExports(loadID: Int64, names: [String]) throws(DepotError) -> [String] {
        try setExports(loadID: loadID, variables: names, maps: []).variables
    }

    /// Replaces both lists. Each map must be one whose entries can be read by key; its entries
    /// are exported at scrape time while the load's series budget (`maxExportedSeriesPerLoad`,
    /// shared with the variables) lasts, and the rest of a map's entries are left out (the
    /// `bpfdepot_map_series_truncated` gauge says which maps were cut).
    public func setExports(loadID: Int64, variables: [String], maps: [String]) throws(DepotError) -> (variables: [String], maps: [String]) {
        let obj = try loaded(loadID)
        try checkExports(variables, of: obj.spec)
        for m in maps {
            guard let map = liveMap(obj, m) else { throw .unknownMap(name: m, loadID: loadID) }
            guard map.supportsLookup else { throw .mapNotReadable(map: m, type: map.spec.type.name) }
        }
        let names = variables + maps.map { Self.mapExportPrefix + $0 }
        let stored: [String]
        do { stored = try store.setExports(loadID: loadID, names: names) } catch { throw .store(error) }
        metrics.exports.withLock { $0[loadID] = stored }
        return Self.split(stored)
    }

    /// `load(objectID:revision:)` exporting `names` from the start; the names are checked before
    /// anything goes into the kernel, and a load whose list cannot be saved is undone.
    public func load(objectID: String, revision: Int?, exporting names: [String], links: [LinkRequest] = [],
                     attachAll: Bool = false) throws(DepotError) -> LoadView {
        if names.isEmpty { return try load(objectID: objectID, revision: revision, links: links, attachAll: attachAll) }
        try checkExports(names, of: try spec(objectID, revision: revision).0)
        let view = try load(objectID: objectID, revision: revision, links: links, attachAll: attachAll)
        do {
            let stored = try store.setExports(loadID: view.record.id, names: names)
            metrics.exports.withLock { $0[view.record.id] = stored }
        } catch {
            try? unload(id: view.record.id)
            throw .store(error)
        }
        return view
    }

    /// Counts and live exported values, read from mapped memory now. A load unloaded meanwhile
    /// is left out; so is a variable that cannot be read at this moment.
    public func metricsSnapshot() -> DepotMetricsSnapshot {
        let objects = live.withLock { $0 }
        var samples: [ExportedSample] = []
        var mapSamples: [MapSample] = []
        var truncated: [(Int64, String)] = []
        for (id, obj) in objects.sorted(by: { $0.key < $1.key }) {
            guard let all = try? exportList(id), !all.isEmpty, let btf = obj.spec.btf else { continue }
            let (names, mapNames) = Self.split(all)
            let fields = BTFNumericFields(btf: btf)
            var values: [(name: String, value: Double)] = []
            for name in names {
                guard let v = obj.spec.variable(named: name), let bytes = try? obj.read(variable: name) else { continue }
                var one: [(name: String, value: Double)] = []
                guard (try? fields.append(v.btfTypeID, bytes[...], name: name, limit: Self.maxExportedSeriesPerLoad - values.count,
                                          into: &one)) != nil else { continue }
                values += one
            }
            samples += values.map { ExportedSample(loadID: id, name: $0.name, value: $0.value) }
            var budget = Self.maxExportedSeriesPerLoad - values.count
            for m in mapNames {
                guard let map = liveMap(obj, m), map.supportsLookup else { continue }
                let (series, cut) = mapSeries(loadID: id, map: map, name: m, btf: btf, budget: budget)
                budget -= series.count
                mapSamples += series
                if cut { truncated.append((id, m)) }
            }
        }
        // Forget the lists of loads gone since (a later read finds them in the store anyway).
        let liveIDs = live.withLock { Set($0.keys) }
        metrics.exports.withLock { cache in
            if cache.keys.contains(where: { !liveIDs.contains($0) }) { cache = cache.filter { liveIDs.contains($0.key) } }
        }
        var snapshot = DepotMetricsSnapshot(objectsStored: metrics.objectsStored(store), loadsActive: objects.count, variables: samples,
                                            programs: programSamples())
        snapshot.maps = mapSamples
        snapshot.truncatedMaps = truncated.map { (loadID: $0.0, map: $0.1) }
        return snapshot
    }

    /// The cached list, or the stored one (read once per load after a start: a load adopted
    /// after a restart keeps what it exported).
    private func exportList(_ loadID: Int64) throws(DepotError) -> [String] {
        if let cached = metrics.exports.withLock({ $0[loadID] }) { return cached }
        let stored: [String]
        do { stored = try store.exports(loadID: loadID) } catch { throw .store(error) }
        // Only if still missing: a list set meanwhile is newer than what was read.
        return metrics.exports.withLock { cache in
            if let newer = cache[loadID] { return newer }
            cache[loadID] = stored
            return stored
        }
    }

    private func checkExports(_ names: [String], of spec: ObjectSpec) throws(DepotError) {
        var total = 0
        for name in Set(names).sorted() {
            guard let v = spec.variable(named: name) else { throw .unknownVariable(name: name, objectID: spec.name) }
            guard let btf = spec.btf else { throw .liveValue(name: name, reason: "the object has no BTF to read numbers with") }
            let limit = Self.maxExportedSeriesPerLoad - total
            let n: Int
            do { n = try BTFNumericFields(btf: btf).count(v.btfTypeID, limit: limit) } catch {
                if case .tooMany = error {
                    throw .liveValue(name: name, reason: "the export list needs more than the \(Self.maxExportedSeriesPerLoad) series a load may export")
                }
                throw .liveValue(name: name, reason: "\(error)")
            }
            guard n > 0 else {
                throw .liveValue(name: name, reason: "expected a variable with a numeric field to export, found a \(v.typeName)")
            }
            total += n
        }
    }
}

extension Depot {
    /// A map's entries as series, walking pages until `budget` series are made. `cut` is true
    /// when entries were left out for the budget.
    func mapSeries(loadID: Int64, map: LoadedMap, name: String, btf: BTF, budget: Int) -> (series: [MapSample], cut: Bool) {
        var out: [MapSample] = []
        var cursor: MapCursor?
        let cpus = LoadedMap.possibleCPUs ?? 1
        repeat {
            guard out.count < budget else { return (out, true) }
            guard let page = try? map.page(limit: 256, after: cursor) else { return (out, false) }
            for e in page.entries {
                let entry = Self.entryJSON(e, map: map, btf: btf, cpus: cpus)
                let key = entry["key"] ?? .null
                let value = map.isPerCPU ? (entry["sum"] ?? .null) : (entry["value"] ?? .null)
                var labels: [(String, String)] = []
                Self.keyLabels(key, prefix: "key", into: &labels)
                var leaves: [(String, Double)] = []
                Self.numericLeaves(value, path: "", into: &leaves)
                if out.count + leaves.count > budget { return (out, true) }
                out += leaves.map { MapSample(loadID: loadID, map: name, keyLabels: labels, field: $0.0.isEmpty ? "value" : $0.0, value: $0.1) }
            }
            cursor = page.next
        } while cursor != nil
        return (out, false)
    }

    /// A key as Prometheus labels: scalars as one label, struct members as `key_<member>`,
    /// arrays of scalars joined with commas.
    static func keyLabels(_ v: JSONValue, prefix: String, into out: inout [(String, String)]) {
        switch v {
        case .object(let members):
            for (k, m) in members { keyLabels(m, prefix: prefix + "_" + k, into: &out) }
        case .array(let items) where items.allSatisfy({ if case .object = $0 { return false }; if case .array = $0 { return false }; return true }):
            out.append((prefix, items.map(labelText).joined(separator: ",")))
        case .array(let items):
            for (i, m) in items.enumerated() { keyLabels(m, prefix: prefix + "_\(i)", into: &out) }
        default:
            out.append((prefix, labelText(v)))
        }
    }

    static func labelText(_ v: JSONValue) -> String {
        if case .string(let s) = v { return s }
        return v.text
    }

    /// Every number (and bool, as 0 or 1) in a value, with its path.
    static func numericLeaves(_ v: JSONValue, path: String, into out: inout [(String, Double)]) {
        switch v {
        case .int(let i): out.append((path, Double(i)))
        case .uint(let u): out.append((path, Double(u)))
        case .double(let d): out.append((path, d))
        case .bool(let b): out.append((path, b ? 1 : 0))
        case .object(let members):
            for (k, m) in members { numericLeaves(m, path: path.isEmpty ? k : path + "." + k, into: &out) }
        case .array(let items):
            for (i, m) in items.enumerated() { numericLeaves(m, path: path + "[\(i)]", into: &out) }
        default: break
        }
    }
}

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
}

extension Depot {
    /// Series one load may export; an export list needing more is refused.
    public static let maxExportedSeriesPerLoad = 1000

    /// The variables of a live load exported as gauges, by name.
    public func exports(loadID: Int64) throws(DepotError) -> [String] {
        _ = try loaded(loadID)
        return try exportList(loadID)
    }

    /// Replaces a live load's exported variables (an empty list stops exporting). Every name must
    /// be a variable of the load with at least one numeric field, and the load's series stay
    /// within `maxExportedSeriesPerLoad`.
    public func setExports(loadID: Int64, names: [String]) throws(DepotError) -> [String] {
        let obj = try loaded(loadID)
        try checkExports(names, of: obj.spec)
        let stored: [String]
        do { stored = try store.setExports(loadID: loadID, names: names) } catch { throw .store(error) }
        metrics.exports.withLock { $0[loadID] = stored }
        return stored
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
        for (id, obj) in objects.sorted(by: { $0.key < $1.key }) {
            guard let names = try? exportList(id), !names.isEmpty, let btf = obj.spec.btf else { continue }
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
        }
        // Forget the lists of loads gone since (a later read finds them in the store anyway).
        let liveIDs = live.withLock { Set($0.keys) }
        metrics.exports.withLock { cache in
            if cache.keys.contains(where: { !liveIDs.contains($0) }) { cache = cache.filter { liveIDs.contains($0.key) } }
        }
        return DepotMetricsSnapshot(objectsStored: metrics.objectsStored(store), loadsActive: objects.count, variables: samples,
                                    programs: programSamples())
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

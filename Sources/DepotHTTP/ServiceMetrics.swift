import DepotCore
import Prometheus
import Synchronization

/// The service's Prometheus registry and what writes into it: request counters and latency
/// histograms (recorded by the dispatcher), the swift-metrics factory the depot records through,
/// and the gauges `GET /metrics` sets when scraped.
///
/// Each server (each test) gets its own; `MetricsSystem.bootstrap` is left to the executable, once.
public final class ServiceMetrics: Sendable {
    public static let requestsLabel = "bpfdepot_http_requests_total"
    public static let requestDurationLabel = "bpfdepot_http_request_duration_seconds"
    public static let objectsStoredLabel = "bpfdepot_objects_stored"
    public static let loadsActiveLabel = "bpfdepot_loads_active"
    public static let variableLabel = "bpfdepot_variable"
    public static let mapLabel = "bpfdepot_map_value"
    public static let mapTruncatedLabel = "bpfdepot_map_series_truncated"
    public static let programRunsLabel = "bpfdepot_program_runs_total"
    public static let watchersLabel = "bpfdepot_watchers"
    public static let programRunSecondsLabel = "bpfdepot_program_run_seconds_total"
    public static let programRecursionMissesLabel = "bpfdepot_program_recursion_misses_total"
    /// `Content-Type` of the text exposition format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    /// From a live-variable read answered on MHD's thread (tens of microseconds) to a big
    /// object's verifier run (seconds).
    public static let requestDurationBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]
    /// The route label of requests that match no route (so a scanner cannot grow the label set).
    public static let unmatchedRoute = "unmatched"

    public let registry: PrometheusCollectorRegistry
    /// Open event streams and long polls of the server recording into this registry.
    private let watchers = Atomic<Int>(0)

    func setWatchers(_ n: Int) { watchers.store(n, ordering: .relaxed) }
    public var openWatchers: Int { watchers.load(ordering: .relaxed) }
    /// A swift-metrics factory writing into `registry`, with this service's histogram buckets.
    public let factory: PrometheusMetricsFactory

    private struct RequestKey: Hashable {
        let route: String
        let method: String
        let status: Int

        /// Lengths and the status only: hashing the route's bytes on every request cost more
        /// than the few keys that share these (told apart by `==`, which finds the same route
        /// string by identity first).
        func hash(into hasher: inout Hasher) {
            hasher.combine(route.utf8.count)
            hasher.combine(method.utf8.count)
            hasher.combine(status)
        }
    }

    private struct RequestHandles {
        let count: Counter
        let duration: DurationHistogram
    }

    /// Handles by (route, method, status), made on first use: later requests only hash the key.
    private let handles = Mutex<[RequestKey: RequestHandles]>([:])
    private let objectsStored: Gauge
    private let loadsActive: Gauge

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[DepotMetrics.loadDurationLabel] = DepotMetrics.loadDurationBuckets
        self.factory = factory
        objectsStored = registry.makeGauge(descriptor: Self.descriptor(Self.objectsStoredLabel, "Objects in the database."))
        loadsActive = registry.makeGauge(descriptor: Self.descriptor(Self.loadsActiveLabel, "Loads this process holds in the kernel."))
    }

    /// The method's label: methods outside the standard seven are counted as `OTHER` (the
    /// method token is the client's choice). A switch, not a `Set`: comparing small strings
    /// costs less than hashing one, on every request.
    private static func methodLabel(_ method: HTTPMethod) -> String {
        switch method.rawValue {
        case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS": method.rawValue
        default: "OTHER"
        }
    }

    /// Counts one answered request. The lock covers a dictionary lookup only.
    func recordRequest(route: String, method: HTTPMethod, status: Int, nanoseconds: Int64) {
        let key = RequestKey(route: route, method: Self.methodLabel(method), status: status)
        let h = handles.withLock { cache in
            if let h = cache[key] { return h }
            let labels = [("route", key.route), ("method", key.method), ("status", String(key.status))]
            let h = RequestHandles(
                count: registry.makeCounter(
                    descriptor: Self.descriptor(Self.requestsLabel, "HTTP requests answered, by route template, method and status."),
                    labels: labels),
                duration: registry.makeDurationHistogram(
                    descriptor: Self.descriptor(Self.requestDurationLabel, "Time from a request's first line to its response being queued."),
                    labels: labels, buckets: Self.requestDurationBuckets))
            cache[key] = h
            return h
        }
        h.count.increment()
        h.duration.record(.nanoseconds(nanoseconds))
    }

    /// A whole metric name (swift-prometheus would join namespace, name and unit with `_`).
    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// The text exposition of everything: the registry, with the depot's gauges set from
    /// `snapshot`, then the exported variables.
    func exposition(_ snapshot: DepotMetricsSnapshot) -> [UInt8] {
        if let n = snapshot.objectsStored { objectsStored.set(to: Double(n)) }
        loadsActive.set(to: Double(snapshot.loadsActive))
        var out: [UInt8] = []
        out.reserveCapacity(16 << 10)
        registry.emit(into: &out)
        // swift-prometheus has no scrape-time collectors, so the exported variables go through a
        // registry of their own, made for this scrape: a series disappears with its load or
        // export list instead of lingering in the long-lived registry.
        if !snapshot.variables.isEmpty {
            let variables = PrometheusCollectorRegistry()
            let help = Self.descriptor(Self.variableLabel, "Live value of a numeric field of an exported BPF variable, read at scrape time.")
            for s in snapshot.variables {
                variables.makeGauge(descriptor: help, labels: [("load", String(s.loadID)), ("name", s.name)]).set(to: s.value)
            }
            variables.emit(into: &out)
        }
        // The kernel's own counters, read at scrape time in the same way.
        if !snapshot.maps.isEmpty || !snapshot.truncatedMaps.isEmpty {
            let maps = PrometheusCollectorRegistry()
            let help = Self.descriptor(Self.mapLabel, "Live value of a numeric field of an entry of an exported BPF map (per-CPU values summed), read at scrape time.")
            for s in snapshot.maps {
                maps.makeGauge(descriptor: help, labels: [("load", String(s.loadID)), ("map", s.map)] + s.keyLabels + [("field", s.field)]).set(to: s.value)
            }
            let cut = Self.descriptor(Self.mapTruncatedLabel, "1 when an exported map had more entries than the load's series budget left room for.")
            for (load, map) in snapshot.truncatedMaps {
                maps.makeGauge(descriptor: cut, labels: [("load", String(load)), ("map", map)]).set(to: 1.0)
            }
            maps.emit(into: &out)
        }
        out += Array("""
            # HELP \(Self.watchersLabel) Open event streams and long polls.
            # TYPE \(Self.watchersLabel) gauge
            \(Self.watchersLabel) \(openWatchers)

            """.utf8)
        if !snapshot.programs.isEmpty {
            let programs = PrometheusCollectorRegistry()
            let runs = Self.descriptor(Self.programRunsLabel, "Runs of a loaded BPF program (the kernel counts while statistics are enabled).")
            let seconds = Self.descriptor(Self.programRunSecondsLabel, "Time spent running a loaded BPF program.")
            let misses = Self.descriptor(Self.programRecursionMissesLabel, "Runs of a loaded BPF program skipped because it was already running on the CPU.")
            for p in snapshot.programs {
                let labels = [("load", String(p.loadID)), ("program", p.program)]
                programs.makeCounter(descriptor: runs, labels: labels).increment(by: Int64(clamping: p.runCount))
                programs.makeCounter(descriptor: seconds, labels: labels).increment(by: Double(p.runTimeNs) / 1e9)
                programs.makeCounter(descriptor: misses, labels: labels).increment(by: Int64(clamping: p.recursionMisses))
            }
            programs.emit(into: &out)
        }
        return out
    }
}

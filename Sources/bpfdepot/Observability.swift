import ArgumentParser
import DepotCore
import DepotHTTP
import Logging
import Metrics
import Prometheus

/// The process-wide logging and metrics backends, set up once by `serve`.
enum Observability {
    /// Bootstraps swift-log (one line per event on stderr, through `output`, which the caller
    /// closes on its way out) and swift-metrics (a Prometheus registry, shown at `GET /metrics`).
    /// Both systems accept one bootstrap per process.
    static func bootstrap(format: LineLogHandler.Format, level: Logger.Level, output: LogOutput) -> ServiceMetrics {
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, format: format, level: level, output: output) }
        let metrics = ServiceMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        return metrics
    }
}

extension LineLogHandler.Format: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

import DepotHTTP
import Foundation
import Logging
import Synchronization
import Testing

/// One sample line of the Prometheus text format, parsed independently of swift-prometheus.
struct MetricSample: Equatable {
    var name: String
    var labels: [String: String]
    var value: Double
}

/// A scrape of `GET /metrics`.
struct Scrape {
    let text: String
    let samples: [MetricSample]

    init(_ text: String) {
        self.text = text
        samples = text.split(separator: "\n").compactMap { Self.parse(Substring($0)) }
    }

    /// The sample with exactly these labels, or nil.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    /// Like `value`, 0 when the series does not exist yet (a counter nothing has touched).
    func count(_ name: String, _ labels: [String: String] = [:]) -> Double {
        value(name, labels) ?? 0
    }

    func all(_ name: String) -> [MetricSample] { samples.filter { $0.name == name } }

    /// `name{labels} value`; nil for comments, blank and malformed lines.
    static func parse(_ line: Substring) -> MetricSample? {
        if line.hasPrefix("#") || line.isEmpty { return nil }
        var i = line.startIndex
        while i < line.endIndex, line[i] != "{", line[i] != " " { i = line.index(after: i) }
        let name = String(line[line.startIndex..<i])
        var labels: [String: String] = [:]
        if i < line.endIndex, line[i] == "{" {
            i = line.index(after: i)
            while i < line.endIndex, line[i] != "}" {
                guard let eq = line[i...].firstIndex(of: "=") else { return nil }
                let key = String(line[i..<eq])
                i = line.index(after: eq)
                guard i < line.endIndex, line[i] == "\"" else { return nil }
                i = line.index(after: i)
                var value = ""
                while i < line.endIndex, line[i] != "\"" {
                    if line[i] == "\\" {
                        i = line.index(after: i)
                        guard i < line.endIndex else { return nil }
                        value.append(line[i] == "n" ? "\n" : line[i])
                    } else {
                        value.append(line[i])
                    }
                    i = line.index(after: i)
                }
                guard i < line.endIndex else { return nil }
                i = line.index(after: i)  // closing quote
                labels[key] = value
                if i < line.endIndex, line[i] == "," { i = line.index(after: i) }
            }
            guard i < line.endIndex else { return nil }
            i = line.index(after: i)  // }
        }
        let rest = line[i...].trimmingCharacters(in: .whitespaces)
        guard let value = Double(rest.split(separator: " ").first.map(String.init) ?? "") else { return nil }
        return MetricSample(name: name, labels: labels, value: value)
    }
}

extension ServiceClient {
    func scrape(sourceLocation: SourceLocation = #_sourceLocation) throws -> Scrape {
        let r = try get("/metrics")
        #expect(r.status == 200, sourceLocation: sourceLocation)
        #expect(r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8", sourceLocation: sourceLocation)
        return Scrape(r.text)
    }
}

/// A swift-log backend that keeps every event, for tests that read what was logged.
final class CapturedLogs: Sendable {
    struct Line: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    private let lines = Mutex<[Line]>([])

    var all: [Line] { lines.withLock { $0 } }

    func logger(level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: "test.http") { _ in Handler(sink: self) }
        logger.logLevel = level
        return logger
    }

    fileprivate func append(_ line: Line) { lines.withLock { $0.append(line) } }

    private struct Handler: LogHandler {
        let sink: CapturedLogs
        var logLevel: Logger.Level = .info
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var all: [String: String] = [:]
            for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new }) {
                all[k] = "\(v)"
            }
            sink.append(Line(level: event.level, message: event.message.description, metadata: all))
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BPFObject
import Logging

/// A swift-log handler that writes each event as one line to a file descriptor (stderr by
/// default): a JSON object (`--log-format json`, for log shippers) or `key=value` text.
///
/// A line is one `write(2)` and no lock is taken: lines from MHD's threads and the workers do not
/// wait for each other (a pipe keeps writes up to PIPE_BUF whole; longer lines may interleave).
///
///     {"timestamp":"2025-11-25T09:14:03.512Z","level":"info","label":"bpfdepot.http",
///      "message":"GET /v1/loads/7/variables 200","metadata":{"request_id":"…","status":200,…}}
public struct LineLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        case json, text
    }

    public let label: String
    public let format: Format
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let fd: Int32

    public init(label: String, format: Format, level: Logger.Level = .info, fileDescriptor: Int32 = 2,
                metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.fd = fileDescriptor
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let own = event.metadata { all.merge(own) { _, new in new } }
        if let error = event.error { all["error"] = .string("\(error)") }
        var line = Self.render(format: format, timestamp: Self.now(), level: event.level, label: label,
                               message: event.message.description, metadata: all)
        line.append("\n")
        line.withUTF8 { buf in
            guard var p = buf.baseAddress else { return }
            var left = buf.count
            while left > 0 {
                let n = Glibc.write(fd, p, left)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return }
                p += n
                left -= n
            }
        }
    }

    /// One line, without its newline.
    public static func render(format: Format, timestamp: String, level: Logger.Level, label: String, message: String,
                              metadata: Logger.Metadata) -> String {
        let keys = metadata.keys.sorted()
        switch format {
        case .json:
            var members: [(String, JSONValue)] = [
                ("timestamp", .string(timestamp)), ("level", .string(level.rawValue)),
                ("label", .string(label)), ("message", .string(message)),
            ]
            if !metadata.isEmpty {
                members.append(("metadata", .object(keys.compactMap { k in metadata[k].map { (k, json($0)) } })))
            }
            return JSONValue.object(members).text
        case .text:
            var line = "\(timestamp) \(level.rawValue) \(label): \(message)"
            for k in keys {
                guard let v = metadata[k] else { continue }
                line += " \(k)=" + textValue(v)
            }
            return line
        }
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let s): return .string(s)
        case .stringConvertible(let c):
            switch c {
            case let i as Int: return .int(Int64(i))
            case let i as Int64: return .int(i)
            case let u as UInt64: return .uint(u)
            case let u as UInt: return .uint(UInt64(u))
            case let d as Double where d.isFinite: return .double(d)
            case let b as Bool: return .bool(b)
            default: return .string(c.description)
            }
        case .array(let items): return .array(items.map(json))
        case .dictionary(let d): return .object(d.keys.sorted().compactMap { k in d[k].map { (k, json($0)) } })
        }
    }

    /// Bare when it is one plain word, JSON-quoted otherwise, so a line splits unambiguously.
    static func textValue(_ value: Logger.Metadata.Value) -> String {
        let s: String
        switch value {
        case .string(let v): s = v
        case .stringConvertible(let c): s = c.description
        case .array, .dictionary: return json(value).text
        }
        let plain = !s.isEmpty && s.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "=") }
        return plain ? s : JSONValue.string(s).text
    }

    /// UTC, milliseconds: `2025-11-25T09:14:03.512Z`.
    static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T"
            + "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }
}

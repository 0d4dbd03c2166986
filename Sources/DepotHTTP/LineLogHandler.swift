#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// A swift-log handler that writes each event as one line to a file descriptor (stderr by
/// default): a JSON object (`--log-format json`, for log shippers) or `key=value` text.
///
/// Lines go to a `LogOutput`: one `write(2)` per line (`fileDescriptor:`), or a shared buffer
/// flushed when full, every second and on shutdown (`output:`; what `serve` uses). Lines are
/// rendered before the output's lock is taken, so threads only wait for each other's append.
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
    public let output: LogOutput

    /// One `write(2)` per line to `fileDescriptor`.
    public init(label: String, format: Format, level: Logger.Level = .info, fileDescriptor: Int32 = 2,
                metadataProvider: Logger.MetadataProvider? = nil) {
        self.init(label: label, format: format, level: level, output: .unbuffered(fileDescriptor: fileDescriptor),
                  metadataProvider: metadataProvider)
    }

    /// Lines go to `output` (shared by every handler of the process, so their order holds).
    public init(label: String, format: Format, level: Logger.Level = .info, output: LogOutput,
                metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.output = output
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Most events come with no handler metadata or provider: use theirs as it is.
        var all = event.metadata ?? [:]
        if !metadata.isEmpty || metadataProvider != nil {
            var merged = metadata
            if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
            merged.merge(all) { _, new in new }
            all = merged
        }
        if let error = event.error { all["error"] = .string("\(error)") }
        var line: [UInt8] = []
        line.reserveCapacity(320)
        Self.render(into: &line, format: format, timestamp: nil, level: event.level, label: label,
                    message: event.message.description, metadata: all)
        line.append(0x0a)
        line.withUnsafeBytes { output.write($0, urgent: event.level >= .warning) }
    }

    /// Whether an access line can skip swift-log's metadata dictionary: this handler adds no
    /// metadata of its own, so `render(access:)` gives exactly the bytes `log` would.
    var rendersAccessLinesDirectly: Bool { metadata.isEmpty && metadataProvider == nil }

    /// Writes an access line at `info` (the caller checked the level): the same bytes as
    /// `log` with the line's fields as metadata (see `AccessLine.metadata`), without building
    /// the dictionary, sorting its keys or formatting numbers through `String`.
    func logAccess(_ access: AccessLine) {
        // A line on the stack (no array grows, no String is made); one that does not fit, in
        // room for the longest line its fields can make (every byte escaped as `\u00XX`).
        let written = write(access, capacity: 1000) || {
            let strings = label.utf8.count + 2 * access.method.utf8.count + 2 * access.route.utf8.count
                + access.path.utf8.count + access.requestID.utf8.count
            return write(access, capacity: 320 + 6 * strings)
        }()
        if !written {  // cannot happen with the capacity above; the generic path if it does
            log(event: LogEvent(level: .info, message: Logger.Message(stringLiteral: access.message), metadata: access.metadata,
                                source: "DepotHTTP", file: #fileID, function: #function, line: #line))
        }
    }

    private func write(_ access: AccessLine, capacity: Int) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buf in
            guard let base = buf.baseAddress else { return false }
            var w = LineWriter(base: base, capacity: buf.count)
            Self.render(into: &w, format: format, level: .info, label: label, access: access)
            w.put(0x0a)
            guard !w.overflowed else { return false }
            output.write(UnsafeRawBufferPointer(start: base, count: w.count))
            return true
        }
    }

    /// One access line, without its newline, as `render(into:…metadata:)` renders
    /// `access.message` with `access.metadata`.
    static func render(into w: inout LineWriter, format: Format, level: Logger.Level, label: String, access a: AccessLine) {
        // Keys in sorted order, as the generic path sorts them.
        switch format {
        case .json:
            w.put(#"{"timestamp":""#)
            putNow(&w)
            w.put(#"","level":""#)
            w.put(level.rawValue)
            w.put(#"","label":"#)
            w.putJSONString(label)
            w.put(#","message":""#)
            w.putJSONEscaped(a.method)
            w.put(UInt8(ascii: " "))
            w.putJSONEscaped(a.route)
            w.put(UInt8(ascii: " "))
            w.putDecimal(a.status)
            w.put(#"","metadata":{"bytes":"#)
            w.putDecimal(a.bytes)
            w.put(#","duration_ms":"#)
            w.putMilliseconds(a.nanoseconds)
            w.put(#","method":"#)
            w.putJSONString(a.method)
            w.put(#","path":"#)
            w.putJSONString(a.path)
            w.put(#","request_id":"#)
            w.putJSONString(a.requestID)
            w.put(#","route":"#)
            w.putJSONString(a.route)
            w.put(#","status":"#)
            w.putDecimal(a.status)
            w.put("}}")
        case .text:
            putNow(&w)
            w.put(UInt8(ascii: " "))
            w.put(level.rawValue)
            w.put(UInt8(ascii: " "))
            w.put(label)
            w.put(": ")
            w.put(a.method)
            w.put(UInt8(ascii: " "))
            w.put(a.route)
            w.put(UInt8(ascii: " "))
            w.putDecimal(a.status)
            w.put(" bytes=")
            w.putDecimal(a.bytes)
            w.put(" duration_ms=")
            w.putMilliseconds(a.nanoseconds)
            w.put(" method=")
            w.putTextString(a.method)
            w.put(" path=")
            w.putTextString(a.path)
            w.put(" request_id=")
            w.putTextString(a.requestID)
            w.put(" route=")
            w.putTextString(a.route)
            w.put(" status=")
            w.putDecimal(a.status)
        }
    }

    /// `appendNow` into a writer.
    static func putNow(_ w: inout LineWriter) {
        withNow { second, milliseconds in
            w.put(second)
            w.putDigits(milliseconds, minimumWidth: 3)
        }
        w.put(UInt8(ascii: "Z"))
    }

    private static func appendDigits(_ value: UInt, minimumWidth: Int, _ out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for UInt.max's 20 digits
        withUnsafeMutableBytes(of: &digits) { buf in
            var v = value
            var i = buf.count
            repeat {
                i -= 1
                buf[i] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: v % 10)
                v /= 10
            } while v > 0 || buf.count - i < minimumWidth
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i...]))
        }
    }

    /// One line, without its newline (`timestamp` as given).
    public static func render(format: Format, timestamp: String, level: Logger.Level, label: String, message: String,
                              metadata: Logger.Metadata) -> String {
        var out: [UInt8] = []
        render(into: &out, format: format, timestamp: timestamp, level: level, label: label, message: message, metadata: metadata)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the line as bytes: no intermediate strings or JSON trees (an access line per
    /// request is on the hot path). A nil `timestamp` is now.
    static func render(into out: inout [UInt8], format: Format, timestamp: String?, level: Logger.Level, label: String,
                       message: String, metadata: Logger.Metadata) {
        let keys = metadata.keys.sorted()
        switch format {
        case .json:
            out.append(contentsOf: #"{"timestamp":""#.utf8)
            if let timestamp { out.append(contentsOf: timestamp.utf8) } else { appendNow(&out) }
            out.append(contentsOf: #"","level":""#.utf8)
            out.append(contentsOf: level.rawValue.utf8)
            out.append(contentsOf: #"","label":"#.utf8)
            appendJSONString(label, &out)
            out.append(contentsOf: #","message":"#.utf8)
            appendJSONString(message, &out)
            if !metadata.isEmpty {
                out.append(contentsOf: #","metadata":{"#.utf8)
                for (i, k) in keys.enumerated() {
                    guard let v = metadata[k] else { continue }
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    appendJSONString(k, &out)
                    out.append(UInt8(ascii: ":"))
                    appendJSON(v, &out)
                }
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "}"))
        case .text:
            if let timestamp { out.append(contentsOf: timestamp.utf8) } else { appendNow(&out) }
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: level.rawValue.utf8)
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: label.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: message.utf8)
            for k in keys {
                guard let v = metadata[k] else { continue }
                out.append(UInt8(ascii: " "))
                out.append(contentsOf: k.utf8)
                out.append(UInt8(ascii: "="))
                appendText(v, &out)
            }
        }
    }

    static func appendJSON(_ value: Logger.Metadata.Value, _ out: inout [UInt8]) {
        switch value {
        case .string(let s):
            appendJSONString(s, &out)
        case .stringConvertible(let c):
            // Numbers and bools go out as themselves, anything else as its text.
            let d = c.description
            if isJSONLiteral(d) { out.append(contentsOf: d.utf8) } else { appendJSONString(d, &out) }
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendJSON(item, &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary(let d):
            out.append(UInt8(ascii: "{"))
            for (i, k) in d.keys.sorted().enumerated() {
                guard let v = d[k] else { continue }
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendJSONString(k, &out)
                out.append(UInt8(ascii: ":"))
                appendJSON(v, &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Bare when it is one plain word, JSON-quoted otherwise, so a line splits unambiguously.
    static func appendText(_ value: Logger.Metadata.Value, _ out: inout [UInt8]) {
        let s: String
        switch value {
        case .string(let v): s = v
        case .stringConvertible(let c): s = c.description
        case .array, .dictionary:
            appendJSON(value, &out)
            return
        }
        appendTextString(s, &out)
    }

    static func appendTextString(_ s: String, _ out: inout [UInt8]) {
        func isPlain(_ b: UInt8) -> Bool { b > 0x20 && b < 0x7f && b != UInt8(ascii: "\"") && b != UInt8(ascii: "=") }
        // Over the contiguous bytes when there are some: four fields of every access line.
        let plain = !s.isEmpty && (s.utf8.withContiguousStorageIfAvailable { $0.allSatisfy(isPlain) } ?? s.utf8.allSatisfy(isPlain))
        if plain { out.append(contentsOf: s.utf8) } else { appendJSONString(s, &out) }
    }

    /// `-12`, `0.035`, `1e3`, `true`, `false`: text JSON reads as a number or bool.
    static func isJSONLiteral(_ s: String) -> Bool {
        if s == "true" || s == "false" { return true }
        var digits = 0, seenDot = false, seenExp = false, previous: UInt8 = 0
        for (i, b) in s.utf8.enumerated() {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits += 1
            case UInt8(ascii: "-") where i == 0 || previous == UInt8(ascii: "e") || previous == UInt8(ascii: "E"): break
            case UInt8(ascii: "+") where previous == UInt8(ascii: "e") || previous == UInt8(ascii: "E"): break
            case UInt8(ascii: ".") where !seenDot && !seenExp && digits > 0: seenDot = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                guard !seenExp, digits > 0 else { return false }
                seenExp = true
            default: return false
            }
            previous = b
        }
        return digits > 0 && previous >= UInt8(ascii: "0") && previous <= UInt8(ascii: "9")
    }

    static func appendJSONString(_ s: String, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        appendJSONEscaped(s, &out)
        out.append(UInt8(ascii: "\""))
    }

    /// The inside of a JSON string (`LineWriter`'s escaper, into the array).
    static func appendJSONEscaped(_ s: String, _ out: inout [UInt8]) {
        var s = s
        s.withUTF8 { bytes in
            // At most 6 bytes (`\u00XX`) for each one.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(1, bytes.count * 6)) { buf in
                guard let base = buf.baseAddress else { return }
                var w = LineWriter(base: base, capacity: buf.count)
                w.putJSONEscaped(bytes)
                out.append(contentsOf: UnsafeBufferPointer(start: base, count: w.count))
            }
        }
    }

    /// UTC, milliseconds: `2025-11-25T09:14:03.512Z`.
    /// `2025-11-25T09:14:03.` of the second last rendered: `gmtime_r` (which takes glibc's
    /// time-zone lock) and its digits once per second instead of once per access line.
    private static let lastSecond = Mutex<(second: Int, text: [UInt8])>((second: -1, text: []))

    static func appendNow(_ out: inout [UInt8]) {
        withNow { second, milliseconds in
            out.append(contentsOf: second)
            appendDigits(milliseconds, minimumWidth: 3, &out)
        }
        out.append(UInt8(ascii: "Z"))
    }

    /// Calls `body` with the current second's `YYYY-MM-DDTHH:MM:SS.` (made once per second)
    /// and the milliseconds.
    static func withNow(_ body: (UnsafeRawBufferPointer, UInt) -> Void) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let second = ts.tv_sec
        lastSecond.withLock { last in
            if last.second != second {
                last.text.removeAll(keepingCapacity: true)
                appendSecond(second, &last.text)
                last.second = second
            }
            return last.text.withUnsafeBytes { body($0, UInt(ts.tv_nsec / 1_000_000)) }
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.` of `second` (UTC).
    private static func appendSecond(_ second: Int, _ out: inout [UInt8]) {
        var t = second
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func digits(_ v: Int32, _ width: Int) { appendDigits(UInt(clamping: v), minimumWidth: width, &out) }
        digits(tm.tm_year + 1900, 4); out.append(UInt8(ascii: "-"))
        digits(tm.tm_mon + 1, 2); out.append(UInt8(ascii: "-"))
        digits(tm.tm_mday, 2); out.append(UInt8(ascii: "T"))
        digits(tm.tm_hour, 2); out.append(UInt8(ascii: ":"))
        digits(tm.tm_min, 2); out.append(UInt8(ascii: ":"))
        digits(tm.tm_sec, 2); out.append(UInt8(ascii: "."))
    }
}

/// The fields of one access line (`HTTPDispatcher`): its message is `GET /route 200`, its
/// metadata `metadata`.
struct AccessLine {
    var requestID: String
    var method: String
    var route: String
    var path: String
    var status: Int
    var nanoseconds: UInt64
    var bytes: Int

    var message: String { "\(method) \(route) \(status)" }

    /// What the line carries as swift-log metadata (the generic path, and the fast path's spec).
    var metadata: Logger.Metadata {
        [
            "request_id": .string(requestID),
            "method": .string(method),
            "route": .string(route),
            "path": .string(path),
            "status": .stringConvertible(status),
            "duration_ms": .stringConvertible(Milliseconds(nanoseconds: nanoseconds)),
            "bytes": .stringConvertible(bytes),
        ]
    }
}

/// Bytes written into a fixed buffer, for a line rendered on every request: memcpy instead of
/// growing an array. A write that does not fit in `capacity` is dropped whole and sets
/// `overflowed`.
struct LineWriter {
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    private(set) var count = 0
    private(set) var overflowed = false

    init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    mutating func put(_ b: UInt8) {
        guard count < capacity else { overflowed = true; return }
        base[count] = b
        count += 1
    }

    mutating func put(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count <= capacity - count else { overflowed = true; return }
        if let from = bytes.baseAddress {
            UnsafeMutableRawPointer(base + count).copyMemory(from: from, byteCount: bytes.count)
        }
        count += bytes.count
    }

    mutating func put(_ s: StaticString) {
        put(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    mutating func put(_ s: String) {
        if let done: Void = s.utf8.withContiguousStorageIfAvailable({ put(UnsafeRawBufferPointer($0)) }) { return done }
        var s = s
        s.withUTF8 { put(UnsafeRawBufferPointer($0)) }
    }

    mutating func putDecimal(_ value: Int) {
        if value < 0 { put(UInt8(ascii: "-")) }
        putDigits(value.magnitude, minimumWidth: 1)
    }

    /// `Milliseconds(nanoseconds:).description`: `12.345`.
    mutating func putMilliseconds(_ nanoseconds: UInt64) {
        let us = nanoseconds / 1000
        putDigits(UInt(us / 1000), minimumWidth: 1)
        put(UInt8(ascii: "."))
        putDigits(UInt(us % 1000), minimumWidth: 3)
    }

    mutating func putDigits(_ value: UInt, minimumWidth: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for UInt.max's 20 digits
        withUnsafeMutableBytes(of: &digits) { buf in
            var v = value
            var i = buf.count
            repeat {
                i -= 1
                buf[i] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: v % 10)
                v /= 10
            } while v > 0 || buf.count - i < min(minimumWidth, buf.count)
            put(UnsafeRawBufferPointer(rebasing: buf[i...]))
        }
    }

    /// `LineLogHandler.appendTextString`: bare when one plain word, JSON-quoted otherwise.
    mutating func putTextString(_ s: String) {
        var s = s
        s.withUTF8 { bytes in
            var plain = !bytes.isEmpty
            var i = 0
            while plain && i < bytes.count {
                let b = bytes[i]
                plain = b > 0x20 && b < 0x7f && b != UInt8(ascii: "\"") && b != UInt8(ascii: "=")
                i += 1
            }
            if plain {
                put(UnsafeRawBufferPointer(bytes))
            } else {
                putJSONString(bytes)
            }
        }
    }

    mutating func putJSONString(_ s: String) {
        var s = s
        s.withUTF8 { putJSONString($0) }
    }

    mutating func putJSONEscaped(_ s: String) {
        var s = s
        s.withUTF8 { putJSONEscaped($0) }
    }

    private mutating func putJSONString(_ bytes: UnsafeBufferPointer<UInt8>) {
        put(UInt8(ascii: "\""))
        putJSONEscaped(bytes)
        put(UInt8(ascii: "\""))
    }

    /// `LineLogHandler.appendJSONEscaped`: runs of bytes that need no escape are copied whole.
    mutating func putJSONEscaped(_ bytes: UnsafeBufferPointer<UInt8>) {
        let backslash = UInt8(ascii: "\\")
        var run = 0
        for (i, b) in bytes.enumerated() {
            let escape: StaticString?
            switch b {
            case UInt8(ascii: "\""): escape = #"\""#
            case backslash: escape = #"\\"#
            case 0x0a: escape = #"\n"#
            case 0x0d: escape = #"\r"#
            case 0x09: escape = #"\t"#
            case 0..<0x20: escape = ""
            default: continue
            }
            put(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[run..<i]))
            run = i + 1
            if let escape, escape.utf8CodeUnitCount > 0 {
                put(escape)
            } else {
                put(#"\u00"#)
                put(Self.hexDigits[Int(b >> 4)])
                put(Self.hexDigits[Int(b & 0xf)])
            }
        }
        put(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[run...]))
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}

#if canImport(Glibc)
import Glibc
#endif

/// What the dispatcher needs, once a response is ready, to count and log its request exactly once.
struct RequestTrace: Sendable {
    /// Echoed as `X-Request-Id` and on every log line about the request.
    var id: String
    var method: HTTPMethod
    /// The route's pattern (`/v1/loads/{id}`), or `ServiceMetrics.unmatchedRoute`.
    var route: String
    /// The raw request target; logs show its path.
    var target: String
    /// The target's path once the request is parsed (saves splitting the target again).
    var parsedPath: String?
    /// `CLOCK_MONOTONIC` nanoseconds when the request line came in.
    var started: UInt64
    /// The peer's address and the credential's name, for the audit trail.
    var remote: String?
    var client: String?

    init(id: String = "", method: HTTPMethod = .GET, route: String = ServiceMetrics.unmatchedRoute, target: String,
         started: UInt64 = MonotonicClock.nanoseconds()) {
        self.id = id
        self.method = method
        self.route = route
        self.target = target
        self.started = started
    }

    var path: String { parsedPath ?? String(RequestTarget.split(target).path) }
}

/// Request ids: a client's own `X-Request-Id` is kept when it is safe to echo and to log.
enum RequestID {
    static let maxLength = 64

    /// `header` if it is 1 to 64 characters of `A-Z a-z 0-9 . _ -`, else nil (generate one).
    static func accepted(_ header: String?) -> String? {
        guard let header, !header.isEmpty, header.utf8.count <= maxLength else { return nil }
        for b in header.utf8 where !isAllowed(b) { return nil }
        return header
    }

    /// `accepted` of a header field's C string, checked before a `String` is made of it.
    static func accepted(_ field: UnsafePointer<CChar>?) -> String? {
        guard let field else { return nil }
        var n = 0
        while field[n] != 0 {
            guard n < maxLength, isAllowed(UInt8(bitPattern: field[n])) else { return nil }
            n += 1
        }
        return n == 0 ? nil : String(cString: field)
    }

    private static func isAllowed(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}

enum MonotonicClock {
    static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

/// A duration in milliseconds with microsecond digits (`0.035`), formatted without floating point.
struct Milliseconds: CustomStringConvertible, Sendable {
    let nanoseconds: UInt64

    var description: String {
        let us = nanoseconds / 1000
        let frac = String(us % 1000)
        return String(us / 1000) + "." + String(repeating: "0", count: 3 - frac.utf8.count) + frac
    }
}

/// An entity tag (RFC 9110 §8.8.3): `"opaque"` or weak `W/"opaque"`.
public struct EntityTag: Sendable, Hashable, CustomStringConvertible {
    /// The text between the quotes.
    public var opaque: String
    public var isWeak: Bool

    /// `opaque` must not contain `"`; such characters are dropped so the header stays valid.
    public init(_ opaque: String, weak: Bool = false) {
        // On the UTF-8 view: `String.contains(_:)` with Foundation in the module goes through
        // NSString (3 % of a live-variable request).
        self.opaque = opaque.utf8.contains(UInt8(ascii: "\"")) ? opaque.filter { $0 != "\"" } : opaque
        self.isWeak = weak
    }

    /// `value` in lowercase hex without leading zeros, as `String(value, radix: 16)` writes it
    /// (a live read's tag, on every poll: one allocation, no quote to filter out).
    public init(hex value: UInt64, weak: Bool = false) {
        let digits = max(1, (64 - value.leadingZeroBitCount + 3) / 4)
        self.opaque = String(unsafeUninitializedCapacity: digits) { buf in
            for i in 0..<digits {
                let nibble = UInt8(truncatingIfNeeded: value >> (4 * UInt64(digits - 1 - i))) & 0xf
                buf[i] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            }
            return digits
        }
        self.isWeak = weak
    }

    /// The header form: `"opaque"` or `W/"opaque"`.
    public var headerValue: String {
        // One allocation (`a + b + c` makes two); a poll builds this on every request.
        var s = ""
        s.reserveCapacity(opaque.utf8.count + 4)
        s += isWeak ? "W/\"" : "\""
        s += opaque
        s += "\""
        return s
    }

    public var description: String { headerValue }

    /// Weak comparison (§8.8.3.2): opaque parts equal, weakness ignored. Used by If-None-Match.
    public func weaklyMatches(_ other: EntityTag) -> Bool { opaque == other.opaque }

    /// Strong comparison: both strong and equal. Used by If-Match.
    public func stronglyMatches(_ other: EntityTag) -> Bool {
        !isWeak && !other.isWeak && opaque == other.opaque
    }
}

/// The value of an `If-Match` or `If-None-Match` header: `*` or a list of entity tags.
public enum EntityTagCondition: Sendable, Equatable {
    case any
    case tags([EntityTag])

    /// Parses `*` or `#entity-tag`. Nil when the value is malformed.
    public init?(headerValue: String) {
        let trimmed = headerValue.trimmingOWS
        if trimmed == "*" { self = .any; return }
        var tags: [EntityTag] = []
        var rest = Substring(trimmed)
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" || $0 == "," }
            if rest.isEmpty { break }
            var weak = false
            if rest.hasPrefix("W/") {
                weak = true
                rest = rest.dropFirst(2)
            }
            guard rest.first == "\"" else { return nil }
            rest = rest.dropFirst()
            guard let close = rest.firstIndex(of: "\"") else { return nil }
            tags.append(EntityTag(String(rest[..<close]), weak: weak))
            rest = rest[rest.index(after: close)...]
            let afterTag = rest.drop { $0 == " " || $0 == "\t" }
            guard afterTag.isEmpty || afterTag.first == "," else { return nil }
            rest = afterTag
        }
        guard !tags.isEmpty else { return nil }
        self = .tags(tags)
    }

    /// The `If-None-Match` condition of `headers`, all its lines combined; nil when absent or
    /// malformed.
    public init?(ifNoneMatchIn headers: HTTPHeaders) {
        let values = headers.values(for: "If-None-Match")
        guard !values.isEmpty else { return nil }
        self.init(headerValue: values.joined(separator: ","))
    }

    /// If-None-Match semantics: `*` matches any current representation; tags compare weakly.
    public func matchesWeakly(_ tag: EntityTag?) -> Bool {
        guard let tag else { return false }
        switch self {
        case .any: return true
        case .tags(let list): return list.contains { $0.weaklyMatches(tag) }
        }
    }

    /// If-Match semantics: `*` matches any current representation; tags compare strongly.
    public func matchesStrongly(_ tag: EntityTag?) -> Bool {
        guard let tag else { return false }
        switch self {
        case .any: return true
        case .tags(let list): return list.contains { $0.stronglyMatches(tag) }
        }
    }
}

extension HTTPRequest {
    /// The `If-None-Match` condition; all header lines combined. Nil when absent or malformed
    /// (a malformed If-None-Match is ignored: the client then just gets the full response).
    public var ifNoneMatch: EntityTagCondition? { EntityTagCondition(ifNoneMatchIn: headers) }

    /// The `If-Match` condition, nil when absent. A malformed value is a 400: a client that
    /// asked for a guarded write must not get an unguarded one.
    public func ifMatch() throws(HTTPProblem) -> EntityTagCondition? {
        let values = headers.values(for: "If-Match")
        guard !values.isEmpty else { return nil }
        let joined = values.joined(separator: ",")
        guard let condition = EntityTagCondition(headerValue: joined) else {
            throw HTTPProblem(
                status: .badRequest, type: "invalid-precondition",
                detail: "expected if-match to be * or a list of quoted entity tags, found \(joined)")
        }
        return condition
    }

    /// Throws 412 when the request carries `If-Match` and `current` (nil: the resource does not
    /// exist) does not satisfy it.
    public func checkIfMatch(current: EntityTag?) throws(HTTPProblem) {
        guard let condition = try ifMatch() else { return }
        guard condition.matchesStrongly(current) else {
            throw HTTPProblem(
                status: .preconditionFailed, type: "precondition-failed",
                detail: "expected the current entity tag to match if-match, found "
                    + (current.map(\.headerValue) ?? "no current representation"),
                extensions: current.map { [("etag", .string($0.headerValue))] } ?? [])
        }
    }

    /// True for a GET/HEAD whose `If-None-Match` covers `current`: answer 304.
    public func isNotModified(current: EntityTag) -> Bool {
        guard method == .GET || method == .HEAD, let condition = ifNoneMatch else { return false }
        return condition.matchesWeakly(current)
    }
}

extension HTTPResponse {
    /// 304 with the `ETag` it confirms and no body.
    public static func notModified(etag: EntityTag) -> HTTPResponse {
        HTTPResponse(status: .notModified, headers: ["ETag": etag.headerValue])
    }

    /// Conditional GET for pollers: 304 when `If-None-Match` covers `etag`, otherwise
    /// `make()` with `ETag` set. `make` only runs when the client needs the body.
    public static func conditional(
        _ request: HTTPRequest, etag: EntityTag, _ make: () throws -> HTTPResponse
    ) rethrows -> HTTPResponse {
        if request.isNotModified(current: etag) { return notModified(etag: etag) }
        var response = try make()
        response.headers.set("ETag", etag.headerValue)
        return response
    }
}

extension String {
    var trimmingOWS: Substring {
        let s = self.drop { $0 == " " || $0 == "\t" }
        guard let last = s.lastIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        return s[...last]
    }
}

import BPFObject

/// An RFC 9457 problem: `type`, `title`, `status`, `detail`, plus our own members.
///
/// Each layer keeps its own error enum with context and maps it here once, by conforming to
/// `HTTPProblemConvertible`. Details are lowercase and say what was expected and what was found.
public struct HTTPProblem: Error, Sendable, Equatable {
    /// Problem type URIs are `urn:bpfdepot:problem:<slug>`: absolute (RFC 9457 §3.1.1 advises
    /// against relative ones) and not pretending to be a page someone can fetch.
    public static let typePrefix = "urn:bpfdepot:problem:"

    public var type: String
    public var title: String
    public var status: HTTPStatus
    public var detail: String
    /// Extra members, in order, after the standard four.
    public var extensions: [(String, JSONValue)]
    /// Headers the status calls for (`Allow` on 405, `WWW-Authenticate` on 401, ...).
    public var headers: HTTPHeaders

    /// - Parameter type: a slug such as `not-found`; it becomes `urn:bpfdepot:problem:not-found`.
    /// - Parameter title: defaults to the status reason phrase.
    public init(
        status: HTTPStatus, type: String, title: String? = nil, detail: String,
        extensions: [(String, JSONValue)] = [], headers: HTTPHeaders = [:]
    ) {
        self.type = Self.typePrefix + type
        self.title = title ?? status.reasonPhrase
        self.status = status
        self.detail = detail
        self.extensions = extensions
        self.headers = headers
    }

    /// The problem document.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("type", .string(type)),
            ("title", .string(title)),
            ("status", .int(Int64(status.rawValue))),
            ("detail", .string(detail)),
        ]
        let reserved: Set<String> = ["type", "title", "status", "detail"]
        members += extensions.filter { !reserved.contains($0.0) }
        return .object(members)
    }

    public static func == (a: HTTPProblem, b: HTTPProblem) -> Bool {
        a.json == b.json && a.headers == b.headers
    }
}

/// Errors that know which problem a client should see. Anything else thrown by a handler
/// becomes a 500 whose detail does not leak the error's text.
public protocol HTTPProblemConvertible: Error {
    var problem: HTTPProblem { get }
}

extension HTTPProblem: HTTPProblemConvertible {
    public var problem: HTTPProblem { self }
}

extension HTTPProblem {
    static func notFound(path: String) -> HTTPProblem {
        HTTPProblem(
            status: .notFound, type: "not-found",
            detail: "expected a known resource path, found \"\(path)\"")
    }

    static func methodNotAllowed(_ method: HTTPMethod, path: String, allowed: [HTTPMethod]) -> HTTPProblem {
        let list = allowed.map(\.rawValue).joined(separator: ", ")
        return HTTPProblem(
            status: .methodNotAllowed, type: "method-not-allowed",
            detail: "expected one of \(list) for \"\(path)\", found \(method.rawValue)",
            extensions: [("allowed", .array(allowed.map { .string($0.rawValue) }))],
            headers: ["Allow": list])
    }

    static func unauthorized(_ why: String, scheme: String = "Bearer") -> HTTPProblem {
        HTTPProblem(
            status: .unauthorized, type: "unauthorized", detail: why,
            headers: ["WWW-Authenticate": scheme])
    }

    /// A verified client certificate whose subject has no line in the tokens file.
    static func certificateWithoutScope(subject: String, needed: Scope) -> HTTPProblem {
        HTTPProblem(
            status: .forbidden, type: "forbidden",
            detail: "expected a client certificate whose subject has a 'subject:' line in the tokens file, found '\(subject.prefix(200))'",
            extensions: [("requiredScope", .string(needed.description)), ("client", .string(subject))])
    }

    static func forbidden(needed: Scope, client: Client) -> HTTPProblem {
        HTTPProblem(
            status: .forbidden, type: "forbidden",
            detail: "expected a credential with scope '\(needed)' or more, found '\(client.name)' with scope '\(client.scope)'",
            extensions: [("requiredScope", .string(needed.description)), ("scope", .string(client.scope.description)),
                         ("client", .string(client.name))])
    }

    static func contentTooLarge(limit: Int, found: String) -> HTTPProblem {
        HTTPProblem(
            status: .contentTooLarge, type: "content-too-large",
            detail: "expected a request body of at most \(limit) bytes, found \(found)",
            extensions: [("max_body_bytes", .int(Int64(limit)))])
    }

    static func badRequest(_ detail: String) -> HTTPProblem {
        HTTPProblem(status: .badRequest, type: "bad-request", detail: detail)
    }

    static func tooManyConnections(limit: Int, open: Int) -> HTTPProblem {
        HTTPProblem(
            status: .serviceUnavailable, type: "too-many-connections",
            detail: "expected at most \(limit) open connections, found \(open): retry later",
            headers: ["Retry-After": "1"])
    }

    static func rateLimited(rate: Int) -> HTTPProblem {
        HTTPProblem(
            status: .tooManyRequests, type: "rate-limited",
            detail: "expected at most \(rate) requests per second from one client, found more: slow down",
            headers: ["Retry-After": "1"])
    }

    static func unavailable(_ detail: String) -> HTTPProblem {
        HTTPProblem(
            status: .serviceUnavailable, type: "unavailable", detail: detail,
            headers: ["Retry-After": "1"])
    }

    static func internalError(requestID: String) -> HTTPProblem {
        HTTPProblem(
            status: .internalServerError, type: "internal",
            detail: "expected the handler to succeed, found an unexpected error (request \(requestID))")
    }
}

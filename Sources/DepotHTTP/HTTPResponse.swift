import BPFObject

/// A complete response. MHD adds `Content-Length` and `Date`; do not set them.
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Set by `watching(_:)`: answer by watching (an event stream or a long poll), not now.
    public var watch: WatchSpec?
    /// What the request changed, for its audit row (a live write's old and new values); nil:
    /// the request body stands for it.
    public var auditChange: JSONValue?
    /// Set once the request's audit row is written (so it is written once).
    var audited = false

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// `application/json` with the compact text of `value`.
    public static func json(_ value: JSONValue, status: HTTPStatus = .ok, headers: HTTPHeaders = [:]) -> HTTPResponse {
        var h = headers
        h.reserveCapacity(h.count + extraFields)
        h.set("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: h, body: value.utf8)
    }

    /// Raw bytes, `application/octet-stream` unless told otherwise.
    public static func bytes(
        _ body: [UInt8], contentType: String = "application/octet-stream", status: HTTPStatus = .ok,
        headers: HTTPHeaders = [:]
    ) -> HTTPResponse {
        var h = headers
        h.reserveCapacity(h.count + extraFields)
        h.set("Content-Type", contentType)
        return HTTPResponse(status: status, headers: h, body: body)
    }

    /// `text/plain; charset=utf-8`.
    public static func text(_ text: String, status: HTTPStatus = .ok, headers: HTTPHeaders = [:]) -> HTTPResponse {
        bytes(Array(text.utf8), contentType: "text/plain; charset=utf-8", status: status, headers: headers)
    }

    /// `application/problem+json`, with the headers the problem carries.
    public static func problem(_ problem: HTTPProblem) -> HTTPResponse {
        var h = problem.headers
        h.reserveCapacity(h.count + extraFields)
        h.set("Content-Type", "application/problem+json")
        return HTTPResponse(status: problem.status, headers: h, body: problem.json.utf8)
    }

    public static func problem(
        status: HTTPStatus, type: String, title: String? = nil, detail: String,
        extensions: [(String, JSONValue)] = []
    ) -> HTTPResponse {
        problem(HTTPProblem(status: status, type: type, title: title, detail: detail, extensions: extensions))
    }

    public static var noContent: HTTPResponse { HTTPResponse(status: .noContent) }

    /// Fields a response usually gains after its constructor: Content-Type, ETag, X-Request-Id.
    private static let extraFields = 3
}

/// Query parameters in request order, percent-decoded (`+` as space).
public struct QueryParameters: Sendable, Equatable, Sequence {
    public private(set) var pairs: [(name: String, value: String)]

    public init(_ pairs: [(String, String)] = []) {
        self.pairs = pairs.map { (name: $0.0, value: $0.1) }
    }

    /// The first value of `name`, or nil.
    public subscript(name: String) -> String? {
        pairs.first { $0.name == name }?.value
    }

    public func values(for name: String) -> [String] {
        pairs.filter { $0.name == name }.map(\.value)
    }

    public var isEmpty: Bool { pairs.isEmpty }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        pairs.makeIterator()
    }

    public static func == (a: QueryParameters, b: QueryParameters) -> Bool {
        a.pairs.count == b.pairs.count && zip(a.pairs, b.pairs).allSatisfy { $0 == $1 }
    }
}

/// One complete request as a handler sees it: the body is fully read.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The path as the client sent it (still percent-encoded), without the query.
    public var path: String
    /// The path split at `/`, each segment percent-decoded.
    public var pathSegments: [String]
    public var query: QueryParameters
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// `host:port` of the peer (`[v6]:port` for IPv6), when known.
    public var remoteAddress: String?
    /// Who presented the request's credential (nil when the server has none).
    public var client: Client?
    /// The TLS client certificate, when the server asks for one (`--tls-client-ca`).
    public var peer: PeerCertificate?
    /// Echoed as `X-Request-Id` on the response.
    public var id: String
    /// Values of the route's `{name}` segments, filled in by the router.
    public var pathParameters: [String: String] = [:]
    /// The route's pattern once routed (`/v1/loads/{id}`).
    public var route: String?

    /// Builds a request from a raw request target such as `/objects/a%20b?x=1`.
    /// Returns nil when the path has a malformed percent escape.
    public init?(
        method: HTTPMethod, target: String, headers: HTTPHeaders = [:], body: [UInt8] = [],
        remoteAddress: String? = nil, id: String = "local"
    ) {
        let (rawPath, rawQuery) = RequestTarget.split(target)
        guard let segments = RequestTarget.segments(rawPath) else { return nil }
        self.init(
            method: method, path: String(rawPath), pathSegments: segments,
            query: QueryParameters(RequestTarget.queryParameters(rawQuery)),
            headers: headers, body: body, remoteAddress: remoteAddress, id: id)
    }

    public init(
        method: HTTPMethod, path: String, pathSegments: [String], query: QueryParameters,
        headers: HTTPHeaders, body: [UInt8], remoteAddress: String?, id: String
    ) {
        self.method = method
        self.path = path
        self.pathSegments = pathSegments
        self.query = query
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
        self.id = id
    }

    /// The value of a `{name}` route segment. Asking for a name the route does not declare is a
    /// programming error; it becomes a 500 problem rather than a crash.
    public func pathParameter(_ name: String) throws(HTTPProblem) -> String {
        guard let v = pathParameters[name] else {
            throw HTTPProblem(
                status: .internalServerError, type: "internal",
                detail: "route has no path parameter named \"\(name)\"")
        }
        return v
    }

    /// The body as UTF-8 text, or a 400 problem saying it is not.
    public func bodyText() throws(HTTPProblem) -> String {
        guard let s = String(validating: body, as: UTF8.self) else {
            throw HTTPProblem(
                status: .badRequest, type: "invalid-body",
                detail: "expected a utf-8 request body, found \(body.count) bytes that are not utf-8")
        }
        return s
    }
}

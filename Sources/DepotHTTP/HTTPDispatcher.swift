import BPFObject
import DepotStore
import Logging

/// What every request goes through before and after its handler: routing, the bearer token,
/// the body limit, the `X-Request-Id` header, and the request's count, latency and access line.
///
/// The server calls `admit` as soon as the headers are in (so a 401/404/405/413 never waits for
/// a body) and `finish` on every response, exactly once per request. `respond(to:)` runs the
/// whole path synchronously, which is how tests exercise it without a socket.
public struct HTTPDispatcher: Sendable {
    public let router: Router
    /// The tokens requests must carry (nil: no authentication, loopback only).
    public let credentials: Credentials?
    /// `GET /metrics` without a credential even when there are credentials (`--public-metrics`).
    public let publicMetrics: Bool
    /// Every route but the open ones needs a verified client certificate (`--tls-client-ca`).
    public let requiresClientCertificates: Bool
    public let maxBodyBytes: Int
    /// Where audit rows go (every mutation, and every request refused for its credential).
    public let audit: (@Sendable (AuditRecord) -> Void)?
    /// Request counts and latencies by route pattern, method and status; nil: not counted.
    public let metrics: ServiceMetrics?
    /// One access line per request (info; error with the problem's detail for 5xx) and a
    /// handler's unexpected errors, each with `request_id`. Nil: unexpected errors go to stderr.
    public let logger: Logger?
    /// `logger`'s handler when access lines can be rendered without swift-log's metadata
    /// dictionary (a `LineLogHandler` with no metadata of its own): the same bytes, a fifth of
    /// the instructions.
    private let accessLines: LineLogHandler?

    public init(router: Router, bearerToken: BearerToken? = nil, credentials: Credentials? = nil, publicMetrics: Bool = false,
                requiresClientCertificates: Bool = false,
                maxBodyBytes: Int = HTTPServerConfiguration.defaultMaxBodyBytes,
                metrics: ServiceMetrics? = nil, logger: Logger? = nil, audit: (@Sendable (AuditRecord) -> Void)? = nil) {
        self.router = router
        self.audit = audit
        self.credentials = credentials ?? bearerToken.flatMap { Credentials(token: String(decoding: $0.bytes, as: UTF8.self)) }
        self.publicMetrics = publicMetrics
        self.requiresClientCertificates = requiresClientCertificates
        self.maxBodyBytes = maxBodyBytes
        self.metrics = metrics
        self.logger = logger
        if let line = logger?.handler as? LineLogHandler, line.rendersAccessLinesDirectly {
            accessLines = line
        } else {
            accessLines = nil
        }
    }

    enum Admission {
        /// Answer with this; no handler runs.
        case reject(HTTPProblem)
        /// Read the body, then run this handler (the request's path parameters are set).
        case accept(HTTPHandler)
    }

    /// Decides from the request head alone. Sets `head.pathParameters` on success. `route` is the
    /// pattern of the route the path belongs to (even when refused), or "unmatched".
    func admit(_ head: inout HTTPRequest) -> (Admission, route: String) {
        let (match, pattern) = router.resolve(head.method, segments: head.pathSegments)
        let route = pattern ?? ServiceMetrics.unmatchedRoute
        head.route = route
        if isGuarded, let needed = requiredScope(head.method, route: route) {
            switch authorize(needed, authorization: head.headers["Authorization"], peer: head.peer) {
            case .allowed(let client):
                head.client = client
            case .refused(let problem, let client):
                head.client = client
                return (.reject(problem), route)
            }
        }
        if let declared = head.headers["Content-Length"], let n = Int(declared.trimmingOWS), n > maxBodyBytes {
            return (.reject(.contentTooLarge(limit: maxBodyBytes, found: "a content-length of \(n)")), route)
        }
        switch match {
        case .notFound:
            return (.reject(.notFound(path: head.path)), route)
        case .methodNotAllowed(let allowed):
            return (.reject(.methodNotAllowed(head.method, path: head.path, allowed: allowed)), route)
        case .found(let handler, let parameters):
            head.pathParameters = parameters
            return (.accept(handler), route)
        }
    }

    /// Routes that answer without a credential: liveness, and the page (which holds no data;
    /// its API calls carry the token).
    static let openRoutes: Set<String> = ["/healthz", "/ui", "/ui/app.js", "/ui/app.css", "/openapi.yaml"]
    /// Deletes that need `admin`: objects, unloads, detaches.
    static let adminDeletes: Set<String> = ["/v1/objects/{id}", "/v1/loads/{id}", "/v1/links/{id}"]
    static let adminReads: Set<String> = ["/v1/audit"]

    /// Whether requests need a credential at all (tokens, or client certificates).
    var isGuarded: Bool { credentials != nil || requiresClientCertificates }

    enum Authorization {
        case allowed(Client)
        /// 401 or 403; the client when one was recognised (for the audit row).
        case refused(HTTPProblem, Client?)
    }

    /// Who a request is and whether it may do what needs `needed`.
    ///
    /// Without client certificates, the bearer token decides. With them (`--tls-client-ca`),
    /// a certificate that verifies against the CA is needed first; a bearer token presented
    /// with it then names the client (a pipeline's token on a machine's certificate), and
    /// otherwise the certificate's subject does, with the scope of its `subject:` line (or
    /// `admin` when there is no tokens file: the CA alone decides).
    func authorize(_ needed: Scope, authorization: String?, peer: PeerCertificate?) -> Authorization {
        let client: Client
        if requiresClientCertificates {
            switch peer ?? .none {
            case .none:
                return .refused(.unauthorized("expected a client certificate signed by the configured CA, found none", scheme: "TLS-Client-Certificate"), nil)
            case .invalid(let reason):
                return .refused(.unauthorized("expected a client certificate signed by the configured CA, found one that does not verify: \(reason)",
                                              scheme: "TLS-Client-Certificate"), nil)
            case .verified(let subject):
                if authorization != nil, let credentials {
                    switch credentials.identify(authorization: authorization) {
                    case .failure(let f): return .refused(.unauthorized(f.reason), nil)
                    case .success(let c): client = c
                    }
                } else if let c = credentials?.identify(subject: subject) ?? (credentials == nil ? Client(name: subject, scope: .admin) : nil) {
                    client = c
                } else {
                    return .refused(.certificateWithoutScope(subject: subject, needed: needed), nil)
                }
            }
        } else if let credentials {
            switch credentials.identify(authorization: authorization) {
            case .failure(let f): return .refused(.unauthorized(f.reason), nil)
            case .success(let c): client = c
            }
        } else {
            return .refused(.unauthorized("expected a credential, found a server with none configured"), nil)
        }
        return client.scope < needed ? .refused(.forbidden(needed: needed, client: client), client) : .allowed(client)
    }

    /// The scope a request needs when the server has credentials; nil when it needs none.
    func requiredScope(_ method: HTTPMethod, route: String) -> Scope? {
        if Self.openRoutes.contains(route) { return nil }
        if route == "/metrics" { return publicMetrics ? nil : .read }
        if Self.adminReads.contains(route) { return .admin }
        if !method.isMutating { return .read }
        if method == .DELETE && Self.adminDeletes.contains(route) { return .admin }
        return .write
    }

    /// A GET route's fast path (see `FastPath`), tried once a request passed every check that
    /// comes before routing and announces no body: its answer and the route's pattern, or nil
    /// to admit the request the ordinary way. The body limit cannot refuse such a request, and
    /// a credential is checked here as the ordinary path checks it, so the route's handler is
    /// what would answer it. `authorization` is the request's first Authorization field.
    func fastAnswer(target: String, connection: OpaquePointer, authorization: UnsafePointer<CChar>?,
                    peer: PeerCertificate? = nil) -> (PreparedResponse, route: String)? {
        var target = target
        guard let (fast, parameters, pattern) = target.withUTF8({ router.fastRoute(target: $0) }) else { return nil }
        // With credentials the read must carry one; without, the ordinary path says why (401).
        if isGuarded, let needed = requiredScope(.GET, route: pattern) {
            let field = authorization.map { String(cString: $0) }
            guard case .allowed = authorize(needed, authorization: field, peer: peer) else { return nil }
        }
        guard let answer = fast(FastRequest(parameters: parameters, connection: connection)) else { return nil }
        return (answer, pattern)
    }

    /// The route label of a request refused before routing (shutting down, over a limit).
    func route(_ method: HTTPMethod, target: String) -> String {
        guard let segments = RequestTarget.segments(RequestTarget.split(target).path) else { return ServiceMetrics.unmatchedRoute }
        return router.resolve(method, segments: segments).pattern ?? ServiceMetrics.unmatchedRoute
    }

    /// Runs a handler, logging an unexpected error with the request id.
    func run(_ body: @Sendable (HTTPRequest) throws -> HTTPResponse, _ request: HTTPRequest) -> HTTPResponse {
        var response = Router.run(body, request, logger: logger)
        if let audit, request.method.isMutating {
            audit(AuditTrail.record(request, response))
            response.audited = true
        }
        return response
    }

    /// Stamps the request id on a response, counts the request and writes its access line.
    /// Called once per request, when its response is about to be queued.
    func finish(_ response: HTTPResponse, _ trace: RequestTrace) -> HTTPResponse {
        var r = response
        if let audit, !r.audited, r.status == .unauthorized || r.status == .forbidden || trace.method.isMutating {
            audit(AuditTrail.record(trace, r))
            r.audited = true
        }
        r.headers.set("X-Request-Id", trace.id)
        account(r, trace)
        return r
    }

    /// Counts a request and writes its access line (`finish` without the audit row and the
    /// request id: a prepared answer of a fast path, which adds the id as it is sent).
    func account(_ r: HTTPResponse, _ trace: RequestTrace) {
        let elapsed = MonotonicClock.nanoseconds() &- trace.started
        metrics?.recordRequest(route: trace.route, method: trace.method, status: r.status.rawValue,
                               nanoseconds: Int64(clamping: elapsed))
        if let logger { access(logger, r, trace, elapsed) }
    }

    private func access(_ logger: Logger, _ r: HTTPResponse, _ trace: RequestTrace, _ elapsed: UInt64) {
        let failed = r.status.rawValue >= 500
        guard logger.logLevel <= (failed ? .error : .info) else { return }
        let line = AccessLine(requestID: trace.id, method: trace.method.rawValue, route: trace.route, path: trace.path,
                              status: r.status.rawValue, nanoseconds: elapsed, bytes: r.body.count)
        if !failed, let accessLines {
            accessLines.logAccess(line)
            return
        }
        var metadata = line.metadata
        let message = Logger.Message(stringLiteral: line.message)
        if failed {
            if let detail = (try? JSONValue(parsing: r.body))?["detail"], case .string(let text) = detail {
                metadata["problem"] = .string(text)
            }
            logger.error(message, metadata: metadata)
        } else {
            logger.info(message, metadata: metadata)
        }
    }

    /// The whole pipeline, synchronously, on the calling thread (deferred handlers included).
    public func respond(to request: HTTPRequest) -> HTTPResponse {
        var request = request
        request.id = RequestID.accepted(request.headers["X-Request-Id"]) ?? request.id
        var trace = RequestTrace(id: request.id, method: request.method, target: request.path)
        trace.parsedPath = request.path
        trace.remote = request.remoteAddress
        let (admission, route) = admit(&request)
        trace.route = route
        trace.client = request.client?.name ?? request.peer?.subject
        switch admission {
        case .reject(let problem):
            return finish(.problem(problem), trace)
        case .accept(let handler):
            if request.body.count > maxBodyBytes {
                let problem = HTTPProblem.contentTooLarge(limit: maxBodyBytes, found: "\(request.body.count) bytes")
                return finish(.problem(problem), trace)
            }
            return finish(run(handler.body, request), trace)
        }
    }
}

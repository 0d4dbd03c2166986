/// What every request goes through before and after its handler: routing, the bearer token,
/// the body limit, and the `X-Request-Id` header.
///
/// The server calls `admit` as soon as the headers are in (so a 401/404/405/413 never waits for
/// a body) and `finish` on every response. `respond(to:)` runs the whole path synchronously,
/// which is how tests exercise it without a socket.
public struct HTTPDispatcher: Sendable {
    public let router: Router
    public let bearerToken: BearerToken?
    public let maxBodyBytes: Int

    public init(router: Router, bearerToken: BearerToken? = nil, maxBodyBytes: Int = HTTPServerConfiguration.defaultMaxBodyBytes) {
        self.router = router
        self.bearerToken = bearerToken
        self.maxBodyBytes = maxBodyBytes
    }

    enum Admission {
        /// Answer with this; no handler runs.
        case reject(HTTPProblem)
        /// Read the body, then run this handler (the request's path parameters are set).
        case accept(HTTPHandler)
    }

    /// Decides from the request head alone. Sets `head.pathParameters` on success.
    func admit(_ head: inout HTTPRequest) -> Admission {
        if let token = bearerToken, head.method.isMutating,
           let why = token.rejection(ofAuthorization: head.headers["Authorization"]) {
            return .reject(.unauthorized(why))
        }
        if let declared = head.headers["Content-Length"], let n = Int(declared.trimmingOWS), n > maxBodyBytes {
            return .reject(.contentTooLarge(limit: maxBodyBytes, found: "a content-length of \(n)"))
        }
        switch router.match(head.method, segments: head.pathSegments) {
        case .notFound:
            return .reject(.notFound(path: head.path))
        case .methodNotAllowed(let allowed):
            return .reject(.methodNotAllowed(head.method, path: head.path, allowed: allowed))
        case .found(let handler, let parameters):
            head.pathParameters = parameters
            return .accept(handler)
        }
    }

    /// Stamps the request id on a response.
    func finish(_ response: HTTPResponse, requestID: String) -> HTTPResponse {
        var r = response
        r.headers.set("X-Request-Id", requestID)
        return r
    }

    /// The whole pipeline, synchronously, on the calling thread (deferred handlers included).
    public func respond(to request: HTTPRequest) -> HTTPResponse {
        var request = request
        switch admit(&request) {
        case .reject(let problem):
            return finish(.problem(problem), requestID: request.id)
        case .accept(let handler):
            if request.body.count > maxBodyBytes {
                let problem = HTTPProblem.contentTooLarge(limit: maxBodyBytes, found: "\(request.body.count) bytes")
                return finish(.problem(problem), requestID: request.id)
            }
            return finish(Router.run(handler.body, request), requestID: request.id)
        }
    }
}

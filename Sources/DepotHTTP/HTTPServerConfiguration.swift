#if canImport(Glibc)
import Glibc
#endif

/// How the server listens and what it accepts.
public struct HTTPServerConfiguration: Sendable {
    public static let defaultMaxBodyBytes = 64 << 20
    public static let defaultConnectionLimit = 1024
    public static let defaultConnectionTimeoutSeconds = 60
    public static let defaultHeaderTimeoutSeconds = 30
    public static let defaultMaxWatchers = 1024

    /// A numeric IP address (or `localhost`) and a port; port 0 asks the kernel for a free one.
    public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: UInt16

        public init(host: String, port: UInt16) {
            self.host = host
            self.port = port
        }

        /// Parses `127.0.0.1:8080`, `[::1]:8080`, `localhost:0`.
        public init?(parsing text: String) {
            let hostPart: Substring
            let portPart: Substring
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else { return nil }
                hostPart = text[text.index(after: text.startIndex)..<close]
                let rest = text[text.index(after: close)...]
                guard rest.first == ":" else { return nil }
                portPart = rest.dropFirst()
            } else {
                guard let colon = text.lastIndex(of: ":") else { return nil }
                hostPart = text[..<colon]
                portPart = text[text.index(after: colon)...]
                if hostPart.contains(":") { return nil }  // bare IPv6 needs brackets
            }
            guard !hostPart.isEmpty, let port = UInt16(portPart) else { return nil }
            self.init(host: String(hostPart), port: port)
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// The socket address to bind, or nil when `host` is not a numeric address or `localhost`.
        var socketAddress: SocketAddress? { SocketAddress(host: host, port: port) }
    }

    /// TLS from PEM text (Debian's libmicrohttpd uses GnuTLS).
    public struct TLS: Sendable {
        public var certificatePEM: String
        public var privateKeyPEM: String
        /// CA certificates (PEM) client certificates must chain to (`--tls-client-ca`): then
        /// every route but the open ones needs a verified client certificate.
        public var clientCAPEM: String?

        public init(certificatePEM: String, privateKeyPEM: String, clientCAPEM: String? = nil) {
            self.certificatePEM = certificatePEM
            self.privateKeyPEM = privateKeyPEM
            self.clientCAPEM = clientCAPEM
        }
    }

    /// Whether requests need a verified client certificate.
    public var requiresClientCertificates: Bool { tls?.clientCAPEM != nil }

    public var listen: ListenAddress
    /// Requests whose body is larger get 413.
    public var maxBodyBytes: Int
    /// MHD's polling threads; they also run `.immediate` handlers.
    public var threadPoolSize: Int
    /// Threads that run `.deferred` handlers.
    public var workerThreads: Int
    /// Deferred requests waiting for a worker beyond this get 503.
    public var maxQueuedDeferred: Int
    /// Open connections beyond this get 503 (MHD's hard limit is a little higher, so the 503
    /// can be sent).
    public var connectionLimit: Int
    /// Idle seconds before MHD closes a connection (suspended connections do not time out).
    public var connectionTimeoutSeconds: Int
    /// Seconds a connection has to deliver a complete request head, from its accept or its
    /// previous response (a slowloris client is cut off); 0: no deadline.
    public var headerTimeoutSeconds: Int = defaultHeaderTimeoutSeconds
    /// Requests per second per client address (bursts of twice that); 0: no limit.
    public var requestsPerSecondPerClient: Int = 0
    /// Open event streams and long polls at most; more are answered 503.
    public var maxWatchers: Int = defaultMaxWatchers
    /// An event stream quiet this long gets a comment line (proxies and clients see it alive;
    /// a client gone meanwhile is noticed).
    public var watchHeartbeat: Duration = .seconds(15)
    /// When set, POST/PUT/PATCH/DELETE need `Authorization: Bearer <token>`.
    public var bearerToken: String?
    /// Named tokens with scopes (`--tokens-file`); with `bearerToken` too, these win.
    public var credentials: Credentials?
    /// `GET /metrics` open even with credentials (`--public-metrics`).
    public var publicMetrics = false
    public var tls: TLS?
    /// How long `stop()` waits for in-flight deferred requests.
    public var stopGraceSeconds: Double
    /// Let MHD print its own diagnostics to stderr.
    public var logMHDErrors: Bool

    public init(
        listen: ListenAddress = ListenAddress(host: "127.0.0.1", port: 8080),
        maxBodyBytes: Int = defaultMaxBodyBytes,
        threadPoolSize: Int = HTTPServerConfiguration.onlineCores,
        workerThreads: Int = HTTPServerConfiguration.onlineCores,
        maxQueuedDeferred: Int = 1024,
        connectionLimit: Int = defaultConnectionLimit,
        connectionTimeoutSeconds: Int = defaultConnectionTimeoutSeconds,
        bearerToken: String? = nil,
        tls: TLS? = nil,
        stopGraceSeconds: Double = 30,
        logMHDErrors: Bool = false
    ) {
        self.listen = listen
        self.maxBodyBytes = maxBodyBytes
        self.threadPoolSize = threadPoolSize
        self.workerThreads = workerThreads
        self.maxQueuedDeferred = maxQueuedDeferred
        self.connectionLimit = connectionLimit
        self.connectionTimeoutSeconds = connectionTimeoutSeconds
        self.bearerToken = bearerToken
        self.tls = tls
        self.stopGraceSeconds = stopGraceSeconds
        self.logMHDErrors = logMHDErrors
    }

    public static var onlineCores: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Refuses settings the server must not run with; above all, a non-loopback address without
    /// a bearer token (anyone on the network could load BPF programs).
    public func validate() throws(HTTPConfigurationError) {
        guard let address = listen.socketAddress else {
            throw .invalidHost(listen.host)
        }
        if let token = bearerToken, token.isEmpty { throw .emptyBearerToken }
        if !address.isLoopback && bearerToken == nil && credentials == nil && !requiresClientCertificates {
            throw .nonLoopbackWithoutToken(listen: listen.description)
        }
        let limits: [(String, Int, ClosedRange<Int>)] = [
            ("max_body_bytes", maxBodyBytes, 0...Int(Int32.max)),
            ("thread_pool_size", threadPoolSize, 1...1024),
            ("worker_threads", workerThreads, 1...1024),
            ("max_queued_deferred", maxQueuedDeferred, 1...1_000_000),
            ("connection_limit", connectionLimit, 1...1_000_000),
            ("connection_timeout_seconds", connectionTimeoutSeconds, 0...86_400),
            ("header_timeout_seconds", headerTimeoutSeconds, 0...86_400),
            ("requests_per_second_per_client", requestsPerSecondPerClient, 0...1_000_000),
            ("max_watchers", maxWatchers, 0...1_000_000),
        ]
        for (name, value, range) in limits where !range.contains(value) {
            throw .invalidLimit(name: name, value: value, expected: range)
        }
        if !(stopGraceSeconds >= 0 && stopGraceSeconds <= 86_400) {
            throw .invalidStopGrace(stopGraceSeconds)
        }
    }
}

public enum HTTPConfigurationError: Error, Equatable, CustomStringConvertible {
    /// Binding beyond loopback needs a bearer token.
    case nonLoopbackWithoutToken(listen: String)
    /// The host is not a numeric IPv4/IPv6 address or `localhost`.
    case invalidHost(String)
    case emptyBearerToken
    case invalidLimit(name: String, value: Int, expected: ClosedRange<Int>)
    case invalidStopGrace(Double)

    public var description: String {
        switch self {
        case .nonLoopbackWithoutToken(let listen):
            "expected a bearer token when listening beyond loopback, found none for \(listen)"
        case .invalidHost(let host):
            "expected a numeric ipv4/ipv6 address or localhost to listen on, found \"\(host)\""
        case .emptyBearerToken:
            "expected a non-empty bearer token, found an empty one"
        case .invalidLimit(let name, let value, let expected):
            "expected \(name) in \(expected.lowerBound)...\(expected.upperBound), found \(value)"
        case .invalidStopGrace(let seconds):
            "expected stop_grace_seconds in 0...86400, found \(seconds)"
        }
    }
}

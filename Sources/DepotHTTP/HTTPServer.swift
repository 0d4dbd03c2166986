#if canImport(Glibc)
import Glibc
#endif
import CMicroHTTPD
import DepotStore
import Logging
import Synchronization

public enum HTTPServerError: Error, Equatable, CustomStringConvertible {
    case configuration(HTTPConfigurationError)
    case alreadyStarted
    case workerThreadsUnavailable
    /// MHD_start_daemon returned NULL (address in use, TLS material rejected, ...).
    case daemonDidNotStart(listen: String, errno: Int32)

    public var description: String {
        switch self {
        case .configuration(let e): e.description
        case .alreadyStarted: "expected a server that was not started yet, found one already started"
        case .workerThreadsUnavailable: "expected to start worker threads, found none could be created"
        case .daemonDidNotStart(let listen, let code):
            "expected libmicrohttpd to listen on \(listen), found it refused (errno \(code): \(String(cString: strerror(code))))"
        }
    }
}

/// libmicrohttpd in the mode measured fastest here: its own epoll threads (a pool, one per core
/// by default) run the access handler; `.deferred` routes suspend the connection and run on a
/// worker pool; responses are always queued on MHD's thread.
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    public let dispatcher: HTTPDispatcher

    private struct Running: @unchecked Sendable {
        let daemon: OpaquePointer
        let core: Unmanaged<ServerCore>
        let port: UInt16
        /// PEM text handed to MHD; freed after MHD_stop_daemon.
        let tlsStrings: [UnsafeMutablePointer<CChar>]
    }

    private enum State {
        case idle, running(Running), stopped
    }

    private let state = Mutex<State>(.idle)

    /// `metrics`: where request counts and latencies go; `logger`: access lines and errors.
    /// `audit`: where each mutation's audit row goes (`Depot.recordAudit`); nil: no trail.
    public init(configuration: HTTPServerConfiguration, router: Router, metrics: ServiceMetrics? = nil, logger: Logger? = nil,
                audit: (@Sendable (AuditRecord) -> Void)? = nil) {
        self.configuration = configuration
        self.dispatcher = HTTPDispatcher(
            router: router, bearerToken: configuration.bearerToken.flatMap(BearerToken.init),
            credentials: configuration.credentials, publicMetrics: configuration.publicMetrics,
            requiresClientCertificates: configuration.requiresClientCertificates,
            maxBodyBytes: configuration.maxBodyBytes, metrics: metrics, logger: logger, audit: audit)
    }

    deinit { stop() }

    /// The bound port (useful with port 0), nil unless running.
    public var port: UInt16? {
        state.withLock {
            if case .running(let r) = $0 { return r.port }
            return nil
        }
    }

    /// The watch thread's rounds (wakeups with something due) and resource reads so far; nil
    /// when not running. For tests and benchmarks.
    var watchCounters: (rounds: UInt64, reads: UInt64)? {
        state.withLock {
            guard case .running(let r) = $0 else { return nil }
            let hub = r.core.takeUnretainedValue().watches
            return (hub.rounds.load(ordering: .relaxed), hub.reads.load(ordering: .relaxed))
        }
    }

    /// Validates the configuration and starts listening; returns once the socket is bound.
    public func start() throws(HTTPServerError) {
        do throws(HTTPConfigurationError) {
            try configuration.validate()
        } catch {
            throw .configuration(error)
        }
        // validate() has just checked this parses.
        guard let address = configuration.listen.socketAddress else {
            throw .configuration(.invalidHost(configuration.listen.host))
        }
        let result: Result<Running, HTTPServerError> = state.withLock { state in
            guard case .idle = state else { return .failure(.alreadyStarted) }
            Self.ignoreSIGPIPE()
            guard let pool = WorkerPool(threadCount: configuration.workerThreads, queueLimit: configuration.maxQueuedDeferred) else {
                return .failure(.workerThreadsUnavailable)
            }
            let connections = ConnectionGuard(headerTimeoutSeconds: configuration.headerTimeoutSeconds,
                                              softLimit: configuration.connectionLimit)
            let metrics = dispatcher.metrics
            let watches = WatchHub(limit: configuration.maxWatchers, heartbeat: configuration.watchHeartbeat,
                                   gauge: metrics.map { m in { @Sendable n in m.setWatchers(n) } })
            let core = Unmanaged.passRetained(ServerCore(
                dispatcher: dispatcher, pool: pool, connections: connections,
                rateLimiter: RateLimiter(requestsPerSecond: configuration.requestsPerSecondPerClient), watches: watches))
            var tlsStrings: [UnsafeMutablePointer<CChar>] = []
            let daemon = address.withSockaddr { sockaddr -> OpaquePointer? in
                var flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue
                    | MHD_ALLOW_SUSPEND_RESUME.rawValue
                if address.isIPv6 { flags |= MHD_USE_IPv6.rawValue }
                if configuration.logMHDErrors { flags |= MHD_USE_ERROR_LOG.rawValue }
                var options: [MHD_OptionItem] = [
                    MHD_OptionItem(option: .THREAD_POOL_SIZE, value: configuration.threadPoolSize, ptr_value: nil),
                    MHD_OptionItem(option: .CONNECTION_LIMIT, value: ConnectionGuard.hardLimit(forSoft: configuration.connectionLimit), ptr_value: nil),
                    MHD_OptionItem(option: .CONNECTION_TIMEOUT, value: configuration.connectionTimeoutSeconds, ptr_value: nil),
                    MHD_OptionItem(option: .SOCK_ADDR, value: 0, ptr_value: UnsafeMutableRawPointer(sockaddr)),
                ]
                if let tls = configuration.tls, let cert = strdup(tls.certificatePEM), let key = strdup(tls.privateKeyPEM) {
                    tlsStrings = [cert, key]
                    flags |= MHD_USE_TLS.rawValue
                    options.append(MHD_OptionItem(option: .HTTPS_MEM_CERT, value: 0, ptr_value: UnsafeMutableRawPointer(cert)))
                    options.append(MHD_OptionItem(option: .HTTPS_MEM_KEY, value: 0, ptr_value: UnsafeMutableRawPointer(key)))
                    // With a trust list MHD asks every client for a certificate; whether one is
                    // needed, and whether it verifies, is decided per request (ServerCore.peer).
                    if let ca = tls.clientCAPEM, let trust = strdup(ca) {
                        tlsStrings.append(trust)
                        options.append(MHD_OptionItem(option: .HTTPS_MEM_TRUST, value: 0, ptr_value: UnsafeMutableRawPointer(trust)))
                    }
                }
                options.append(MHD_OptionItem(option: .END, value: 0, ptr_value: nil))
                return cmhd_start_daemon(
                    flags, accessHandlerCallback, core.toOpaque(), requestCompletedCallback, core.toOpaque(),
                    uriLogCallback, nil, notifyConnectionCallback, core.toOpaque(), options)
            }
            guard let daemon else {
                let code = errno
                connections.stop()
                pool.shutdown()
                core.release()
                tlsStrings.forEach { free($0) }
                return .failure(.daemonDidNotStart(listen: configuration.listen.description, errno: code))
            }
            connections.start()
            let running = Running(daemon: daemon, core: core, port: cmhd_daemon_bind_port(daemon), tlsStrings: tlsStrings)
            state = .running(running)
            return .success(running)
        }
        if case .failure(let error) = result { throw error }
    }

    /// Stops accepting, lets in-flight deferred requests finish and send their responses (up to
    /// `stopGraceSeconds`), then stops MHD. Requests that arrive meanwhile on open keep-alive
    /// connections get 503 with `Connection: close`. Safe to call more than once.
    public func stop() {
        let running: Running? = state.withLock { state in
            guard case .running(let r) = state else { return nil }
            state = .stopped
            return r
        }
        guard let running else { return }
        let core = running.core.takeUnretainedValue()
        core.stopping.store(true, ordering: .sequentiallyConsistent)
        let listenFD = MHD_quiesce_daemon(running.daemon)

        // Event streams end and long polls are answered; their connections must be resumed
        // and done before MHD stops.
        core.watches.stop()
        let deadline = Self.monotonicSeconds() + configuration.stopGraceSeconds
        while (core.inFlightDeferred.load(ordering: .sequentiallyConsistent) > 0 || core.watches.count > 0)
            && Self.monotonicSeconds() < deadline {
            usleep(2_000)
        }
        let left = core.inFlightDeferred.load(ordering: .sequentiallyConsistent) + core.watches.count
        if left > 0 {
            // MHD_stop_daemon with suspended connections is undefined behaviour; leaving the
            // daemon running (and leaking it) is the lesser harm for a process about to exit.
            StandardError.write("bpfdepot: \(left) deferred requests or watches still running after \(configuration.stopGraceSeconds)s; leaving the http daemon running\n")
            return
        }
        MHD_stop_daemon(running.daemon)
        core.connections.stop()
        if listenFD >= 0 { close(listenFD) }
        core.pool.shutdown()
        running.core.release()
        running.tlsStrings.forEach { free($0) }
    }

    /// A peer that closes early must not kill the process with SIGPIPE. Ignoring (rather than
    /// blocking in one thread's mask) covers every thread, including ones started earlier.
    private static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }

    private static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

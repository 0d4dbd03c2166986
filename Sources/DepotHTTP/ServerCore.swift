#if canImport(Glibc)
import Glibc
#endif
import CMicroHTTPD
import Synchronization

/// What MHD's callbacks reach through their `cls` pointer while the daemon runs.
final class ServerCore: Sendable {
    let dispatcher: HTTPDispatcher
    let pool: WorkerPool
    let connections: ConnectionGuard
    let rateLimiter: RateLimiter
    /// Event streams and long polls, checked by one thread of their own.
    let watches: WatchHub
    /// Client certificates by connection (nil unless the server asks for them).
    let peers: PeerCertificates?
    let stopping = Atomic<Bool>(false)
    /// Deferred requests suspended or not yet completed; `stop()` waits for zero, because
    /// MHD_stop_daemon with suspended connections is undefined behaviour.
    let inFlightDeferred = Atomic<Int>(0)
    private let requestCounter = Atomic<UInt64>(0)
    /// The high 32 bits of every request id.
    private let requestIDPrefix: UInt64

    /// How much of an oversized chunked body is read and dropped so the client can see its 413;
    /// past this the connection is closed. (With Content-Length, 413 goes out before any body.)
    static let discardAllowance = 8 << 20

    init(dispatcher: HTTPDispatcher, pool: WorkerPool, connections: ConnectionGuard, rateLimiter: RateLimiter, watches: WatchHub) {
        self.dispatcher = dispatcher
        self.watches = watches
        self.pool = pool
        self.connections = connections
        self.rateLimiter = rateLimiter
        self.peers = dispatcher.requiresClientCertificates ? PeerCertificates() : nil
        self.requestIDPrefix = UInt64(UInt32.random(in: .min ... .max)) << 32
    }

    /// 16 hex digits: a random per-server prefix (ids from restarts do not collide) and a counter.
    /// Used when the client sent no usable `X-Request-Id` of its own.
    func nextRequestID() -> String {
        let n = requestCounter.add(1, ordering: .relaxed).newValue
        let v = requestIDPrefix | (n & 0xffff_ffff)
        return String(unsafeUninitializedCapacity: 16) { buf in
            for i in 0..<16 {
                let nibble = UInt8(truncatingIfNeeded: v >> (60 - 4 * i)) & 0xf
                buf[i] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            }
            return 16
        }
    }

    // MARK: access handler

    /// One access-handler call. MHD calls it: once when the headers are in, once per body chunk
    /// (`uploadSize` > 0; we must consume it), once with size 0 when the request is complete,
    /// and once more after MHD_resume_connection.
    func handle(
        _ connection: OpaquePointer, _ exchange: Exchange, method: UnsafePointer<CChar>,
        upload: UnsafePointer<CChar>?, uploadSize: UnsafeMutablePointer<Int>
    ) -> MHD_Result {
        let size = uploadSize.pointee
        /// An answer known before the body: chunks are read and dropped, and the answer goes
        /// out on the call that ends the request.
        func afterBody(_ answer: () -> MHD_Result) -> MHD_Result {
            if size > 0 {
                uploadSize.pointee = 0
                return .YES
            }
            exchange.phase = .answered
            return answer()
        }
        switch exchange.phase {
        case .new:
            return admit(connection, exchange, method: method)

        case .reading(var request, let handler):
            if size > 0 {
                uploadSize.pointee = 0
                guard let upload else { return .NO }
                let limit = dispatcher.maxBodyBytes
                if exchange.body.count + size > limit {
                    exchange.discarded = exchange.body.count + size
                    exchange.body = []
                    exchange.phase = .discarding(
                        .contentTooLarge(limit: limit, found: "more than \(limit) bytes"))
                    return .YES
                }
                UnsafeRawBufferPointer(start: upload, count: size).withMemoryRebound(to: UInt8.self) {
                    exchange.body.append(contentsOf: $0)
                }
                return .YES
            }
            request.body = exchange.body
            exchange.body = []
            switch handler {
            case .immediate(let body):
                exchange.phase = .answered
                return deliver(dispatcher.run(body, request), exchange, on: connection)
            case .deferred(let body):
                return suspend(connection, exchange, running: body, request)
            }

        case .discarding(let problem):
            if size > 0 {
                exchange.discarded += size
                uploadSize.pointee = 0
                return exchange.discarded > dispatcher.maxBodyBytes + Self.discardAllowance ? .NO : .YES
            }
            exchange.phase = .answered
            return queue(.problem(problem), exchange, on: connection, close: true)

        case .rejected(let problem):
            return afterBody { queue(.problem(problem), exchange, on: connection, close: exchange.closeAfter || stopping.load(ordering: .relaxed)) }

        case .ready(let response):
            return afterBody { queue(response, exchange, on: connection) }

        case .prepared(let prepared):
            return afterBody { queue(prepared, exchange, on: connection) }

        case .suspended:
            guard let response = exchange.result.withLock({ $0.take() }) else {
                return .YES  // not resumed by us; nothing to answer yet
            }
            exchange.phase = .answered
            return deliver(response, exchange, on: connection)

        case .answered:
            if size > 0 { uploadSize.pointee = 0 }
            return .YES
        }
    }

    /// First call: the head is complete. Refusals that would otherwise wait for a body are
    /// answered right away (MHD then skips the body and closes the connection); everything else
    /// waits for the next call, because queueing on the first call turns keep-alive off.
    private func admit(_ connection: OpaquePointer, _ exchange: Exchange, method: UnsafePointer<CChar>) -> MHD_Result {
        connections.headReceived(connection)
        // The fields admission needs, in one pass over MHD's list; the rest only when a request
        // goes the ordinary way (`headers`, below).
        var head = cmhd_head()
        cmhd_scan_head(connection, &head)
        exchange.trace.id = RequestID.accepted(head.request_id) ?? nextRequestID()
        exchange.trace.method = Self.method(method)
        let hasBody = head.transfer_encodings > 0 || head.content_length.map { Int(String(cString: $0).trimmingOWS) != 0 } ?? false
        let peer = peers?.certificate(of: connection)
        // The peer's text form only when something uses it (the rate limiter, a handler): a
        // fast path needs neither.
        var described: String??
        func remote() -> String? {
            if let described { return described }
            let text = cmhd_connection_client_address(connection).flatMap(SocketAddress.describe)
            described = .some(text)
            return text
        }

        let verdict: HTTPProblem?
        if stopping.load(ordering: .relaxed) {
            verdict = .unavailable("expected a running server, found one shutting down")
            exchange.trace.route = dispatcher.route(exchange.trace.method, target: exchange.rawTarget)
        } else if connections.isOverSoftLimit {
            verdict = .tooManyConnections(limit: connections.softLimit, open: connections.openConnections)
            exchange.closeAfter = true
            exchange.trace.route = dispatcher.route(exchange.trace.method, target: exchange.rawTarget)
        } else if rateLimiter.isEnabled, !rateLimiter.allow(RateLimiter.client(of: remote())) {
            verdict = .rateLimited(rate: Int(rateLimiter.rate))
            exchange.trace.route = dispatcher.route(exchange.trace.method, target: exchange.rawTarget)
        } else if !hasBody, exchange.trace.method == .GET,
                  let (prepared, route) = dispatcher.fastAnswer(target: exchange.rawTarget, connection: connection,
                                                                authorization: head.authorization, peer: peer) {
            exchange.trace.route = route
            exchange.trace.parsedPath = exchange.rawTarget  // a fast path's target has no query
            exchange.phase = .prepared(prepared)
            return .YES
        } else if var request = HTTPRequest(
            method: exchange.trace.method, target: exchange.rawTarget, headers: Self.headers(of: connection),
            remoteAddress: remote(), id: exchange.trace.id)
        {
            exchange.trace.remote = request.remoteAddress
            request.peer = peer
            let (admission, route) = dispatcher.admit(&request)
            exchange.trace.route = route
            exchange.trace.parsedPath = request.path
            exchange.trace.client = request.client?.name ?? peer?.subject
            switch admission {
            case .reject(let problem):
                verdict = problem
            case .accept(let handler):
                if let declared = request.headers["Content-Length"].flatMap({ Int($0.trimmingOWS) }), declared > 0 {
                    exchange.body.reserveCapacity(declared)
                }
                exchange.phase = .reading(request, handler)
                return .YES
            }
        } else {
            verdict = .badRequest("expected a request path with valid percent escapes, found \"\(exchange.rawTarget.prefix(200))\"")
        }
        guard let verdict else { return .YES }
        if hasBody {
            exchange.phase = .answered
            return queue(.problem(verdict), exchange, on: connection, close: true)
        }
        exchange.phase = .rejected(verdict)
        return .YES
    }

    /// Hands a deferred handler to the pool. Suspend first, then submit: a fast worker could
    /// otherwise resume a connection that is not suspended yet.
    private func suspend(
        _ connection: OpaquePointer, _ exchange: Exchange,
        running body: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse, _ request: HTTPRequest
    ) -> MHD_Result {
        exchange.phase = .suspended
        exchange.isDeferred = true
        inFlightDeferred.add(1, ordering: .sequentiallyConsistent)
        MHD_suspend_connection(connection)
        let suspended = SuspendedConnection(raw: connection)
        let dispatcher = self.dispatcher
        let accepted = pool.submit {
            let response = dispatcher.run(body, request)
            exchange.result.withLock { $0 = response }
            MHD_resume_connection(suspended.raw)
        }
        if !accepted {
            exchange.result.withLock {
                $0 = .problem(.unavailable("expected a free worker for slow requests, found the queue full (\(pool.queueLimit) waiting)"))
            }
            MHD_resume_connection(connection)
        }
        return .YES
    }

    // MARK: watching

    /// Queues `response`, or starts watching when the handler asked for that.
    private func deliver(_ response: HTTPResponse, _ exchange: Exchange, on connection: OpaquePointer) -> MHD_Result {
        guard let spec = response.watch else { return queue(response, exchange, on: connection) }
        let now = WatchHub.now()
        switch spec.mode {
        case .stream(let interval, let event, let lastEventID, let endData):
            let stream = EventStream(spec: spec, hub: watches, interval: interval, event: event, lastEventID: lastEventID,
                                     endData: endData, now: now)
            let suspended = SuspendedConnection(raw: connection)
            let socket = cmhd_connection_fd(connection)
            stream.state.withLock { $0.connection = suspended; $0.socket = socket }
            guard watches.add(stream) else { return queue(.problem(tooManyWatchers()), exchange, on: connection) }
            // The first event, before any byte goes out; the watch thread checks from then on.
            let first = stream.poll(now: now, heartbeat: watches.heartbeat) { $0.read() }
            watches.schedule(stream, next: first.next)
            let context = Unmanaged.passRetained(stream).toOpaque()
            guard let mhd = MHD_create_response_from_callback(UInt64.max, 4096, eventStreamReader, context, eventStreamFree) else {
                Unmanaged<EventStream>.fromOpaque(context).release()
                watches.remove(stream)
                return .NO
            }
            defer { MHD_destroy_response(mhd) }
            var head = response
            head.watch = nil
            head.headers.set("Content-Type", "text/event-stream")
            head.headers.set("Cache-Control", "no-store")
            head.headers.set("X-Accel-Buffering", "no")
            head = dispatcher.finish(head, exchange.trace)
            for (name, value) in head.headers where Self.isSendable(name: name, value: value) {
                _ = name.withCString { n in value.withCString { v in MHD_add_response_header(mhd, n, v) } }
            }
            cmhd_connection_no_timeout(connection)
            return MHD_queue_response(connection, UInt32(head.status.rawValue), mhd)
        case .longPoll(let wait, let clientTag, let interval):
            if !exchange.isDeferred {
                exchange.isDeferred = true
                inFlightDeferred.add(1, ordering: .sequentiallyConsistent)
            }
            exchange.phase = .suspended
            MHD_suspend_connection(connection)
            var headers = response.headers
            headers.remove("Content-Type")
            let poll = LongPoll(spec: spec, clientTag: clientTag, interval: EventStream.nanoseconds(interval),
                                deadline: now &+ EventStream.nanoseconds(wait), exchange: exchange,
                                connection: SuspendedConnection(raw: connection), socket: cmhd_connection_fd(connection),
                                headers: headers, now: now)
            if !watches.add(poll) {
                exchange.result.withLock { $0 = .problem(tooManyWatchers()) }
                MHD_resume_connection(connection)
            }
            return .YES
        }
    }

    private func tooManyWatchers() -> HTTPProblem {
        if stopping.load(ordering: .relaxed) { return .unavailable("expected a running server, found one shutting down") }
        return .unavailable("expected fewer than \(watches.limit) open watches (serve --max-watchers), found the limit reached")
    }

    // MARK: MHD plumbing

    private func queue(
        _ response: HTTPResponse, _ exchange: Exchange, on connection: OpaquePointer, close: Bool = false
    ) -> MHD_Result {
        let response = dispatcher.finish(response, exchange.trace)
        let created = response.body.withUnsafeBytes { buf in
            MHD_create_response_from_buffer(buf.count, UnsafeMutableRawPointer(mutating: buf.baseAddress), .RESPMEM_MUST_COPY)
        }
        guard let mhd = created else { return .NO }
        defer { MHD_destroy_response(mhd) }
        for (name, value) in response.headers where Self.isSendable(name: name, value: value) {
            // withCString: passing the Strings directly copies short ones into a heap array.
            _ = name.withCString { n in value.withCString { v in MHD_add_response_header(mhd, n, v) } }
        }
        if close { _ = MHD_add_response_header(mhd, "Connection", "close") }
        return MHD_queue_response(connection, UInt32(clamping: response.status.rawValue), mhd)
    }

    /// A fast path's prepared answer: its fields as prepared, then this request's id. A refusal
    /// (which has an audit row to write) goes the ordinary way.
    ///
    /// This thread's kept MHD response of it is queued again with this request's id put in
    /// place of the last one (`cmhd_kept`); MHD copies the fields into the connection's buffer
    /// before this callback's thread handles anything else. The first time on a thread, the
    /// response is made and kept.
    private func queue(_ prepared: PreparedResponse, _ exchange: Exchange, on connection: OpaquePointer) -> MHD_Result {
        let response = prepared.response
        if response.status == HTTPStatus.unauthorized || response.status == HTTPStatus.forbidden || response.watch != nil {
            return queue(response, exchange, on: connection)
        }
        let status = UInt32(clamping: response.status.rawValue)
        if let kept = prepared.kept, let mhd = cmhd_kept_get(kept) {
            guard exchange.trace.id.withCString({ cmhd_response_replace_header(mhd, "X-Request-Id", $0) }) != 0 else { return .NO }
            dispatcher.account(response, exchange.trace)
            return MHD_queue_response(connection, status, mhd)
        }
        let created = response.body.withUnsafeBytes { buf in
            MHD_create_response_from_buffer(buf.count, UnsafeMutableRawPointer(mutating: buf.baseAddress), .RESPMEM_MUST_COPY)
        }
        guard let mhd = created else { return .NO }
        prepared.forEachField { name, value in _ = MHD_add_response_header(mhd, name, value) }
        _ = exchange.trace.id.withCString { MHD_add_response_header(mhd, "X-Request-Id", $0) }
        // Kept: the reference passes to `prepared`; else this request's response only.
        let keptIt = prepared.kept.map { cmhd_kept_put($0, mhd) != 0 } ?? false
        defer { if !keptIt { MHD_destroy_response(mhd) } }
        dispatcher.account(response, exchange.trace)
        return MHD_queue_response(connection, status, mhd)
    }

    /// The method of a request line; the common ones without making a string.
    private static func method(_ name: UnsafePointer<CChar>) -> HTTPMethod {
        // Byte by byte, stopping at the first difference: never past the terminating NUL.
        if name[0] == 0x47 && name[1] == 0x45 && name[2] == 0x54 && name[3] == 0 { return .GET }
        return HTTPMethod(rawValue: String(cString: name))
    }

    /// Header fields a handler may set: no CR/LF/NUL (response splitting), and not the framing
    /// fields MHD computes itself.
    static func isSendable(name: String, value: String) -> Bool {
        if name.isEmpty || HTTPHeaders.same(name, "Content-Length") || HTTPHeaders.same(name, "Transfer-Encoding") {
            return false
        }
        func bad(_ b: UInt8) -> Bool { b == 0x0d || b == 0x0a || b == 0 }
        func badInName(_ b: UInt8) -> Bool { bad(b) || b == UInt8(ascii: ":") || b == UInt8(ascii: " ") }
        // Over contiguous bytes when possible: every header of every response passes here.
        let nameBad = name.utf8.withContiguousStorageIfAvailable { $0.contains(where: badInName) } ?? name.utf8.contains(where: badInName)
        let valueBad = value.utf8.withContiguousStorageIfAvailable { $0.contains(where: bad) } ?? value.utf8.contains(where: bad)
        return !nameBad && !valueBad
    }

    static func headers(of connection: OpaquePointer) -> HTTPHeaders {
        var headers = HTTPHeaders()
        withUnsafeMutablePointer(to: &headers) { p in
            _ = MHD_get_connection_values(connection, .HEADER_KIND, { cls, _, key, value in
                guard let cls, let key else { return .YES }
                cls.assumingMemoryBound(to: HTTPHeaders.self).pointee
                    .add(String(cString: key), value.map { String(cString: $0) } ?? "")
                return .YES
            }, p)
        }
        return headers
    }
}

// MARK: C entry points

/// MHD_OPTION_URI_LOG_CALLBACK: the raw request target, before MHD percent-decodes it. Its
/// return value becomes `*con_cls`.
let uriLogCallback: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, OpaquePointer?) -> UnsafeMutableRawPointer? = { _, uri, _ in
    let target = uri.map { String(cString: $0) } ?? "/"
    return Unmanaged.passRetained(Exchange(rawTarget: target)).toOpaque()
}

let accessHandlerCallback: MHD_AccessHandlerCallback = { cls, connection, url, method, _, upload, uploadSize, conCls in
    guard let cls, let connection, let method, let uploadSize, let conCls else { return .NO }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    let exchange: Exchange
    if let existing = conCls.pointee {
        exchange = Unmanaged<Exchange>.fromOpaque(existing).takeUnretainedValue()
    } else {
        // The URI log callback always runs first; this only guards against a future MHD.
        exchange = Exchange(rawTarget: url.map { String(cString: $0) } ?? "/")
        conCls.pointee = Unmanaged.passRetained(exchange).toOpaque()
    }
    return core.handle(connection, exchange, method: method, upload: upload, uploadSize: uploadSize)
}

/// MHD_OPTION_NOTIFY_COMPLETED: the response is sent or the connection failed; drop the state.
let requestCompletedCallback: MHD_RequestCompletedCallback = { cls, connection, conCls, _ in
    guard let cls else { return }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    if let connection { core.connections.requestFinished(connection) }
    guard let conCls, let raw = conCls.pointee else { return }
    conCls.pointee = nil
    let exchange = Unmanaged<Exchange>.fromOpaque(raw).takeRetainedValue()
    if exchange.isDeferred {
        core.inFlightDeferred.subtract(1, ordering: .sequentiallyConsistent)
    }
}

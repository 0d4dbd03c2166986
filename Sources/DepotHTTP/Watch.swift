#if canImport(Glibc)
import Glibc
#endif
import CMicroHTTPD
import Synchronization

/// What a watched resource is now: a tag of its bytes and how to render it, or gone for good
/// (a load unloaded). Made and used on the watch thread only.
public enum WatchState {
    case value(tag: EntityTag, render: () -> HTTPResponse)
    case ended
}

/// A route's request to answer by watching instead of at once: a `text/event-stream` of the
/// resource's changes, or a long poll that answers when the tag differs from the client's.
/// A handler returns it inside an `HTTPResponse` (`HTTPResponse.watching`); the server holds the
/// connection suspended meanwhile, so a watcher costs neither an MHD thread nor a worker.
public struct WatchSpec: Sendable {
    public enum Mode: Sendable {
        /// `event`: the SSE event name of each change; `lastEventID`: the client's
        /// `Last-Event-ID` (no first event when it is the current tag); `endData`: the data of
        /// the final `unloaded` event.
        case stream(interval: Duration, event: String, lastEventID: String?, endData: [UInt8])
        /// Answer 200 when the tag is no longer `clientTag`, or 304 after `wait`.
        case longPoll(wait: Duration, clientTag: EntityTag, interval: Duration)
    }

    public let mode: Mode
    public let read: @Sendable () -> WatchState

    public init(mode: Mode, read: @escaping @Sendable () -> WatchState) {
        self.mode = mode
        self.read = read
    }

    /// The shortest interval a client may ask for.
    public static let minimumInterval: Duration = .milliseconds(50)
    public static let maximumInterval: Duration = .seconds(60)
    public static let defaultInterval: Duration = .seconds(1)
    /// The longest `Prefer: wait=N`.
    public static let maximumWait: Duration = .seconds(60)
}

extension HTTPResponse {
    /// A response the server answers by watching (see `WatchSpec`). `headers` go on the stream's
    /// 200, or on the long poll's eventual answer.
    public static func watching(_ spec: WatchSpec, headers: HTTPHeaders = [:]) -> HTTPResponse {
        var r = HTTPResponse(status: .ok, headers: headers)
        r.watch = spec
        return r
    }
}

/// One open `text/event-stream`: bytes waiting for MHD, and whether its connection is suspended
/// because there were none. Shared by MHD's thread (the content reader) and the watch thread.
final class EventStream: @unchecked Sendable {
    struct State {
        var pending: [UInt8] = []
        var sent = 0
        var suspended = false
        /// No more events: end the stream once `pending` is sent.
        var ending = false
        var lastTag: String?
        var nextCheck: UInt64
        var lastWrite: UInt64
        var connection: SuspendedConnection?
        /// The connection's socket, to notice a client that left while the stream waits.
        var socket: Int32 = -1
        var freed = false
    }

    let spec: WatchSpec
    let hub: WatchHub
    let interval: UInt64
    let event: String
    let endData: [UInt8]
    let state: Mutex<State>

    init(spec: WatchSpec, hub: WatchHub, interval: Duration, event: String, lastEventID: String?, endData: [UInt8], now: UInt64) {
        self.spec = spec
        self.hub = hub
        self.interval = Self.nanoseconds(interval)
        self.event = event
        self.endData = endData
        self.state = Mutex(State(lastTag: lastEventID, nextCheck: now, lastWrite: now))
    }

    /// Unsent bytes one stream may hold; past that its client is too slow and the stream ends.
    static let maxBacklog = 1 << 20

    static func nanoseconds(_ d: Duration) -> UInt64 {
        let (s, a) = d.components
        return UInt64(max(0, s)) &* 1_000_000_000 &+ UInt64(max(0, a / 1_000_000_000))
    }

    static func frame(id: String?, event: String, data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 64)
        if let id { out += Array("id: \(id)\n".utf8) }
        out += Array("event: \(event)\n".utf8)
        // Compact JSON has no newlines; split anyway so any body stays one event.
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            out += Array("data: ".utf8)
            out += line
            out.append(UInt8(ascii: "\n"))
        }
        out.append(UInt8(ascii: "\n"))
        return out
    }

    /// Checks the resource; queues an event if it changed, a heartbeat if the stream was quiet
    /// too long, or the end. Returns the connection to resume, if it was waiting for bytes.
    func poll(now: UInt64, heartbeat: UInt64) -> SuspendedConnection? {
        let due = state.withLock { s -> Bool in
            guard !s.ending, !s.freed, now >= s.nextCheck else { return false }
            s.nextCheck = now &+ interval
            return true
        }
        guard due else { return nil }
        // MHD does not watch a suspended connection's socket: a client that went away is
        // noticed here, and the stream ended so MHD frees it.
        let (waiting, socket) = state.withLock { ($0.suspended, $0.socket) }
        if waiting, socket >= 0, Self.peerClosed(socket) {
            return end()
        }
        var bytes: [UInt8] = []
        var end = false
        let last = state.withLock { $0.lastTag }
        switch spec.read() {
        case .value(let tag, let render):
            if tag.headerValue != last {
                bytes = Self.frame(id: tag.headerValue, event: event, data: render().body)
                state.withLock { $0.lastTag = tag.headerValue }
            }
        case .ended:
            bytes = Self.frame(id: nil, event: "unloaded", data: endData)
            end = true
        }
        return state.withLock { s -> SuspendedConnection? in
            if bytes.isEmpty, now &- s.lastWrite >= heartbeat { bytes = Array(": heartbeat\n\n".utf8) }
            guard !bytes.isEmpty || end else { return nil }
            if s.sent == s.pending.count { s.pending.removeAll(keepingCapacity: true); s.sent = 0 }
            if s.pending.count - s.sent + bytes.count > Self.maxBacklog {
                // A client that stopped reading: end its stream rather than queue without bound
                // (it reconnects with Last-Event-ID and gets the current value at once).
                s.ending = true
                bytes = []
            }
            s.pending += bytes
            s.lastWrite = now
            if end { s.ending = true }
            guard s.suspended else { return nil }
            s.suspended = false
            return s.connection
        }
    }

    /// True when the peer has closed its side (a zero-byte read) or the socket failed.
    static func peerClosed(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if n == 0 { return true }
        if n < 0 { return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR }
        return false
    }

    /// Ends the stream (server stopping, client gone); the connection to resume if it waits.
    func end() -> SuspendedConnection? {
        state.withLock { s in
            s.ending = true
            guard s.suspended else { return nil }
            s.suspended = false
            return s.connection
        }
    }

    /// MHD's content reader: hand out queued bytes; with none, suspend until the watch thread
    /// queues some (returning 0 in MHD's internal polling mode would make it spin).
    func read(into buffer: UnsafeMutablePointer<CChar>, max: Int) -> Int {
        state.withLock { s in
            let left = s.pending.count - s.sent
            if left > 0 {
                let n = min(left, max)
                s.pending.withUnsafeBytes { src in
                    UnsafeMutableRawPointer(buffer).copyMemory(from: src.baseAddress! + s.sent, byteCount: n)
                }
                s.sent += n
                return n
            }
            if s.ending { return -1 }  // MHD_CONTENT_READER_END_OF_STREAM
            guard let c = s.connection else { return -2 }
            s.suspended = true
            MHD_suspend_connection(c.raw)
            return 0
        }
    }
}

/// A suspended long poll: its exchange gets the answer before the connection is resumed.
final class LongPoll: @unchecked Sendable {
    let spec: WatchSpec
    let clientTag: EntityTag
    let interval: UInt64
    let deadline: UInt64
    let exchange: Exchange
    let connection: SuspendedConnection
    let headers: HTTPHeaders
    var nextCheck: UInt64

    init(spec: WatchSpec, clientTag: EntityTag, interval: UInt64, deadline: UInt64, exchange: Exchange,
         connection: SuspendedConnection, headers: HTTPHeaders, now: UInt64) {
        self.spec = spec
        self.clientTag = clientTag
        self.interval = interval
        self.deadline = deadline
        self.exchange = exchange
        self.connection = connection
        self.headers = headers
        self.nextCheck = now
    }

    /// The answer when it is time to give one.
    func poll(now: UInt64) -> HTTPResponse? {
        guard now >= nextCheck else { return nil }
        nextCheck = now &+ interval
        switch spec.read() {
        case .value(let tag, let render):
            if !clientTag.weaklyMatches(tag) {
                var r = render()
                if !r.headers.contains("ETag") { r.headers.set("ETag", tag.headerValue) }
                for (k, v) in headers where !r.headers.contains(k) { r.headers.set(k, v) }
                return r
            }
            if now >= deadline {
                var r = HTTPResponse.notModified(etag: tag)
                for (k, v) in headers where !r.headers.contains(k) { r.headers.set(k, v) }
                return r
            }
            return nil
        case .ended:
            return .problem(.init(status: .conflict, type: "not-loaded", detail: "the watched load was unloaded"))
        }
    }
}

/// Every watcher of one server, checked by one thread: streams and long polls due at their
/// interval. Nothing here blocks MHD's threads or the worker pool.
final class WatchHub: @unchecked Sendable {
    let limit: Int
    let heartbeat: UInt64
    private let lock = Mutex<(streams: [ObjectIdentifier: EventStream], polls: [ObjectIdentifier: LongPoll], stopped: Bool)>(([:], [:], false))
    private let gauge: (@Sendable (Int) -> Void)?
    private var thread: pthread_t?
    private let running = Atomic<Bool>(false)
    /// The watch thread's sleep between rounds: half the shortest interval.
    static let tick: UInt32 = 25_000

    init(limit: Int, heartbeat: Duration, gauge: (@Sendable (Int) -> Void)?) {
        self.limit = limit
        self.heartbeat = EventStream.nanoseconds(heartbeat)
        self.gauge = gauge
    }

    static func now() -> UInt64 { MonotonicClock.nanoseconds() }

    var count: Int { lock.withLock { $0.streams.count + $0.polls.count } }

    private func startIfNeeded() {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var tid = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        if pthread_create(&tid, nil, { arg in
            guard let arg else { return nil }
            let hub = Unmanaged<WatchHub>.fromOpaque(arg).takeRetainedValue()
            hub.loop()
            return nil
        }, context) == 0 {
            thread = tid
        } else {
            Unmanaged<WatchHub>.fromOpaque(context).release()
            running.store(false, ordering: .releasing)
        }
    }

    /// Registers a stream; false when the limit is reached or the server stops.
    func add(_ stream: EventStream) -> Bool {
        register { $0.streams[ObjectIdentifier(stream)] = stream }
    }

    /// Registers a long poll; false when the limit is reached or the server stops.
    func add(_ poll: LongPoll) -> Bool {
        register { $0.polls[ObjectIdentifier(poll)] = poll }
    }

    private func register(_ insert: (inout (streams: [ObjectIdentifier: EventStream], polls: [ObjectIdentifier: LongPoll], stopped: Bool)) -> Void) -> Bool {
        let (ok, n) = lock.withLock { s -> (Bool, Int) in
            guard !s.stopped, s.streams.count + s.polls.count < limit else { return (false, 0) }
            insert(&s)
            return (true, s.streams.count + s.polls.count)
        }
        if ok { gauge?(n); startIfNeeded() }
        return ok
    }

    /// MHD freed the stream's response: the client is gone or the stream ended.
    func remove(_ stream: EventStream) {
        stream.state.withLock { $0.freed = true }
        let n = lock.withLock { s -> Int in
            s.streams[ObjectIdentifier(stream)] = nil
            return s.streams.count + s.polls.count
        }
        gauge?(n)
    }

    private func loop() {
        while true {
            let (streams, polls, stopped) = lock.withLock { ($0.streams.values.map { $0 }, $0.polls.values.map { $0 }, $0.stopped) }
            if stopped && streams.isEmpty && polls.isEmpty { break }
            let now = Self.now()
            for s in streams {
                if let c = s.poll(now: now, heartbeat: heartbeat) { MHD_resume_connection(c.raw) }
            }
            var answered: [LongPoll] = []
            for p in polls {
                if let r = p.poll(now: now) {
                    answered.append(p)
                    finish(p, r)
                }
            }
            if !answered.isEmpty {
                let n = lock.withLock { s -> Int in
                    for p in answered { s.polls[ObjectIdentifier(p)] = nil }
                    return s.streams.count + s.polls.count
                }
                gauge?(n)
            }
            usleep(Self.tick)
        }
        running.store(false, ordering: .releasing)
    }

    private func finish(_ poll: LongPoll, _ response: HTTPResponse) {
        poll.exchange.result.withLock { $0 = response }
        MHD_resume_connection(poll.connection.raw)
    }

    /// Ends every stream and answers every long poll (503); later registrations are refused.
    func stop() {
        let (streams, polls) = lock.withLock { s -> ([EventStream], [LongPoll]) in
            s.stopped = true
            let p = Array(s.polls.values)
            s.polls = [:]
            return (Array(s.streams.values), p)
        }
        for s in streams { if let c = s.end() { MHD_resume_connection(c.raw) } }
        for p in polls {
            finish(p, .problem(.unavailable("expected a running server, found one shutting down")))
        }
        gauge?(count)
    }
}

// MARK: C entry points

/// MHD's content reader for event streams; `cls` is a retained `EventStream`.
let eventStreamReader: MHD_ContentReaderCallback = { cls, _, buffer, max in
    guard let cls, let buffer else { return -2 }
    let stream = Unmanaged<EventStream>.fromOpaque(cls).takeUnretainedValue()
    return stream.read(into: buffer, max: max)
}

/// MHD frees an event stream's response: the connection is done with it.
let eventStreamFree: MHD_ContentReaderFreeCallback = { cls in
    guard let cls else { return }
    let stream = Unmanaged<EventStream>.fromOpaque(cls).takeRetainedValue()
    stream.hub.remove(stream)
}

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
    /// Names what `read` reads (e.g. the path and the query without `watch` and `interval`):
    /// watchers with the same key checked in the same round share one read and one rendering.
    /// nil: never shared.
    public let key: String?

    public init(mode: Mode, key: String? = nil, read: @escaping @Sendable () -> WatchState) {
        self.mode = mode
        self.key = key
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

    /// What one check of a stream did: the connection to resume (it was waiting for bytes), and
    /// when the stream is next due (nil: it ends, nothing more to check).
    struct Outcome {
        var resume: SuspendedConnection?
        var next: UInt64?
    }

    /// Checks the resource when the interval is up (queueing an event if it changed, or the
    /// end), and queues a heartbeat when the stream was quiet for `heartbeat` ns, whatever the
    /// interval. `snapshot` reads the resource (shared by watchers of the same thing).
    func poll(now: UInt64, heartbeat: UInt64, snapshot: (WatchSpec) -> WatchState) -> Outcome {
        let (check, waiting, socket, last) = state.withLock { s -> (Bool?, Bool, Int32, String?) in
            guard !s.ending, !s.freed else { return (nil, false, -1, nil) }
            let check = now >= s.nextCheck
            if check {
                // On the interval's own cadence, not the round's: a round that ran a little late
                // or early does not drift the checks (1 s stays 1 s). Behind by a whole
                // interval (a stalled thread), start over from now.
                let next = s.nextCheck &+ interval
                s.nextCheck = next > now ? next : now &+ interval
            }
            return (check, s.suspended, s.socket, s.lastTag)
        }
        guard let check else { return Outcome(resume: nil, next: nil) }
        // MHD does not watch a suspended connection's socket: a client that went away is
        // noticed here, and the stream ended so MHD frees it.
        if waiting, socket >= 0, Self.peerClosed(socket) {
            return Outcome(resume: end(), next: nil)
        }
        var bytes: [UInt8] = []
        var end = false
        if check {
            switch snapshot(spec) {
            case .value(let tag, let render):
                if tag.headerValue != last {
                    bytes = Self.frame(id: tag.headerValue, event: event, data: render().body)
                }
            case .ended:
                bytes = Self.frame(id: nil, event: "unloaded", data: endData)
                end = true
            }
        }
        return state.withLock { s -> Outcome in
            if bytes.isEmpty, now &- s.lastWrite >= heartbeat { bytes = Array(": heartbeat\n\n".utf8) }
            if !bytes.isEmpty || end {
                if s.sent == s.pending.count { s.pending.removeAll(keepingCapacity: true); s.sent = 0 }
                if s.pending.count - s.sent + bytes.count > Self.maxBacklog {
                    // A client that stopped reading: end its stream rather than queue without
                    // bound (it reconnects with Last-Event-ID and gets the current value at once).
                    s.ending = true
                    bytes = []
                } else if check, let id = Self.eventID(bytes) {
                    s.lastTag = id
                }
                s.pending += bytes
                s.lastWrite = now
                if end { s.ending = true }
            }
            let next = s.ending ? nil : min(s.nextCheck, s.lastWrite &+ heartbeat)
            guard s.suspended, !s.pending.isEmpty || s.ending else { return Outcome(resume: nil, next: next) }
            s.suspended = false
            return Outcome(resume: s.connection, next: next)
        }
    }

    /// The `id:` of a frame made by `frame`, if it has one.
    private static func eventID(_ frame: [UInt8]) -> String? {
        let prefix = Array("id: ".utf8)
        guard frame.starts(with: prefix), let eol = frame.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        return String(decoding: frame[prefix.count..<eol], as: UTF8.self)
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
                    guard let base = src.baseAddress else { return }
                    UnsafeMutableRawPointer(buffer).copyMemory(from: base + s.sent, byteCount: n)
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
/// Checked on the watch thread only.
final class LongPoll: @unchecked Sendable {
    let spec: WatchSpec
    let clientTag: EntityTag
    let interval: UInt64
    let deadline: UInt64
    let exchange: Exchange
    let connection: SuspendedConnection
    /// The connection's socket, to notice a client that gave up waiting.
    let socket: Int32
    let headers: HTTPHeaders
    var nextCheck: UInt64

    init(spec: WatchSpec, clientTag: EntityTag, interval: UInt64, deadline: UInt64, exchange: Exchange,
         connection: SuspendedConnection, socket: Int32, headers: HTTPHeaders, now: UInt64) {
        self.spec = spec
        self.clientTag = clientTag
        self.interval = interval
        self.deadline = deadline
        self.exchange = exchange
        self.connection = connection
        self.socket = socket
        self.headers = headers
        self.nextCheck = now
    }

    /// The answer when it is time to give one (nil: ask again at `nextDue`).
    func poll(now: UInt64, snapshot: (WatchSpec) -> WatchState) -> HTTPResponse? {
        guard now >= nextCheck || now >= deadline else { return nil }
        nextCheck = now &+ interval
        if socket >= 0, EventStream.peerClosed(socket) {
            // Nobody to answer: resume so MHD notices the closed socket and frees it.
            return .notModified(etag: clientTag)
        }
        switch snapshot(spec) {
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

    var nextDue: UInt64 { min(nextCheck, deadline) }
}

/// Watchers due at some time, soonest first: a binary min-heap. Entries of watchers that went
/// away stay until they come up and are then dropped.
struct WatchTimers {
    enum Watcher {
        case stream(EventStream)
        case poll(LongPoll)

        var id: ObjectIdentifier {
            switch self {
            case .stream(let s): ObjectIdentifier(s)
            case .poll(let p): ObjectIdentifier(p)
            }
        }
    }

    struct Entry {
        var due: UInt64
        var order: UInt64
        var watcher: Watcher

        func precedes(_ o: Entry) -> Bool { due != o.due ? due < o.due : order < o.order }
    }

    private(set) var heap: [Entry] = []
    private var counter: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    var soonest: UInt64? { heap.first?.due }

    mutating func insert(_ w: Watcher, due: UInt64) {
        counter &+= 1
        heap.append(Entry(due: due, order: counter, watcher: w))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].precedes(heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    /// The soonest entry if it is due at or before `time`.
    mutating func pop(dueBy time: UInt64) -> Entry? {
        guard let first = heap.first, first.due <= time else { return nil }
        let last = heap.removeLast()
        if heap.isEmpty { return first }
        heap[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count, heap[l].precedes(heap[m]) { m = l }
            if r < heap.count, heap[r].precedes(heap[m]) { m = r }
            if m == i { break }
            heap.swapAt(i, m)
            i = m
        }
        return first
    }

    mutating func removeAll() { heap.removeAll() }
}

/// Every watcher of one server, checked by one timer thread: it sleeps until the soonest watcher
/// is due (not at all while there are none) and checks only those, and watchers of the same
/// resource due together share one read. Nothing here blocks MHD's threads or the worker pool.
final class WatchHub: @unchecked Sendable {
    struct State {
        var streams: [ObjectIdentifier: EventStream] = [:]
        var polls: [ObjectIdentifier: LongPoll] = [:]
        var timers = WatchTimers()
        var stopped = false
        var count: Int { streams.count + polls.count }
    }

    let limit: Int
    let heartbeat: UInt64
    private let lock = Mutex<State>(State())
    private let gauge: (@Sendable (Int) -> Void)?
    private let running = Atomic<Bool>(false)
    /// A pipe that wakes the timer thread: a watcher was added or removed, or the server stops.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    /// Checks due within one grain of each other happen in one round (one wakeup), so the
    /// thread wakes at most 1 s / grain times a second however many watchers there are.
    static let grain: UInt64 = 20_000_000
    /// Wakeups of the timer thread so far (for tests and benchmarks).
    let rounds = Atomic<UInt64>(0)
    /// Reads of watched resources so far: watchers of one resource due together share one.
    let reads = Atomic<UInt64>(0)

    init(limit: Int, heartbeat: Duration, gauge: (@Sendable (Int) -> Void)?) {
        self.limit = limit
        self.heartbeat = EventStream.nanoseconds(heartbeat)
        self.gauge = gauge
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
        }
        (wakeRead, wakeWrite) = (fds[0], fds[1])
    }

    deinit {
        if wakeRead >= 0 { close(wakeRead) }
        if wakeWrite >= 0 { close(wakeWrite) }
    }

    static func now() -> UInt64 { MonotonicClock.nanoseconds() }

    var count: Int { lock.withLock { $0.count } }

    private func wake() {
        guard wakeWrite >= 0 else { return }
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)  // a full pipe already wakes it
    }

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
            pthread_detach(tid)
        } else {
            Unmanaged<WatchHub>.fromOpaque(context).release()
            running.store(false, ordering: .releasing)
        }
    }

    /// Registers a stream whose first check is done (its next one at `next`); false when the
    /// limit is reached or the server stops.
    func add(_ stream: EventStream) -> Bool {
        register { $0.streams[ObjectIdentifier(stream)] = stream }
    }

    /// Starts checking a stream `add` registered, from `next` on (nil: it ended already).
    func schedule(_ stream: EventStream, next: UInt64?) {
        guard let next else { return }
        lock.withLock { s in
            guard s.streams[ObjectIdentifier(stream)] != nil else { return }
            s.timers.insert(.stream(stream), due: next)
        }
        wake()
    }

    /// Registers a long poll, first checked at once; false when the limit is reached or the
    /// server stops.
    func add(_ poll: LongPoll) -> Bool {
        register {
            $0.polls[ObjectIdentifier(poll)] = poll
            $0.timers.insert(.poll(poll), due: poll.nextDue)
        }
    }

    private func register(_ insert: (inout State) -> Void) -> Bool {
        let (ok, n) = lock.withLock { s -> (Bool, Int) in
            guard !s.stopped, s.count < limit else { return (false, 0) }
            insert(&s)
            return (true, s.count)
        }
        if ok { gauge?(n); startIfNeeded(); wake() }
        return ok
    }

    /// MHD freed the stream's response: the client is gone or the stream ended.
    func remove(_ stream: EventStream) {
        stream.state.withLock { $0.freed = true }
        let (n, stopped) = lock.withLock { s -> (Int, Bool) in
            s.streams[ObjectIdentifier(stream)] = nil
            return (s.count, s.stopped)
        }
        gauge?(n)
        if stopped { wake() }  // the thread ends once the last one is gone
    }

    private func loop() {
        var snapshots: [String: WatchState] = [:]
        let snapshot = { [self] (spec: WatchSpec) -> WatchState in
            if let key = spec.key, let known = snapshots[key] { return known }
            reads.add(1, ordering: .relaxed)
            var state = spec.read()
            guard let key = spec.key else { return state }
            if case .value(let tag, let render) = state {
                // Rendered once, however many watchers of this resource see a change.
                let once = RenderOnce(render)
                state = .value(tag: tag, render: { once.response })
            }
            snapshots[key] = state
            return state
        }
        while true {
            // Everything due within a grain of now, taken off the heap.
            let (due, exit) = lock.withLock { s -> ([WatchTimers.Watcher], Bool) in
                if s.stopped && s.count == 0 {
                    s.timers.removeAll()
                    return ([], true)
                }
                var due: [WatchTimers.Watcher] = []
                let horizon = Self.now() &+ Self.grain
                while let e = s.timers.pop(dueBy: horizon) {
                    switch e.watcher {
                    case .stream(let st) where s.streams[ObjectIdentifier(st)] != nil: due.append(e.watcher)
                    case .poll(let p) where s.polls[ObjectIdentifier(p)] != nil: due.append(e.watcher)
                    default: break
                    }
                }
                return (due, false)
            }
            if exit { break }
            if !due.isEmpty {
                rounds.add(1, ordering: .relaxed)
                // A watcher due a little later is checked now rather than costing a wakeup of
                // its own: `now` is the end of this round's grain.
                let now = Self.now() &+ Self.grain
                var again: [(WatchTimers.Watcher, UInt64)] = []
                var answers: [(LongPoll, HTTPResponse)] = []
                for w in due {
                    switch w {
                    case .stream(let st):
                        let o = st.poll(now: now, heartbeat: heartbeat, snapshot: snapshot)
                        if let c = o.resume { MHD_resume_connection(c.raw) }
                        if let next = o.next { again.append((w, next)) }
                    case .poll(let p):
                        // A long poll's deadline is kept exactly: the clock, not the round's end.
                        if let r = p.poll(now: Self.now(), snapshot: snapshot) {
                            answers.append((p, r))
                        } else {
                            again.append((w, p.nextDue))
                        }
                    }
                }
                snapshots.removeAll(keepingCapacity: true)
                // A long poll is answered by whoever takes it out of the table: this thread or
                // `stop()`, never both (a connection is resumed once).
                let (claimed, n) = lock.withLock { s -> ([(LongPoll, HTTPResponse)], Int) in
                    let claimed = answers.filter { s.polls.removeValue(forKey: ObjectIdentifier($0.0)) != nil }
                    for (w, next) in again { s.timers.insert(w, due: next) }
                    return (claimed, s.count)
                }
                for (p, r) in claimed {
                    p.exchange.result.withLock { $0 = r }
                    MHD_resume_connection(p.connection.raw)
                }
                if !claimed.isEmpty { gauge?(n) }
            }
            sleepUntilDue()
        }
        running.store(false, ordering: .releasing)
    }

    /// Sleeps until the soonest watcher is due or `wake()` is called.
    private func sleepUntilDue() {
        let soonest = lock.withLock { $0.timers.soonest }
        var timeout: Int32 = -1
        if let soonest {
            let now = Self.now()
            guard soonest > now else { return }
            // Rounded up: waking a little late is fine, waking early costs a round for nothing.
            let ms = (soonest - now + 999_999) / 1_000_000
            timeout = Int32(min(ms, 60_000))
        }
        if wakeRead < 0 {
            usleep(UInt32(Self.grain / 1000))
            return
        }
        var fds = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
        if poll(&fds, 1, timeout) > 0 {
            var drain = [UInt8](repeating: 0, count: 256)
            while drain.withUnsafeMutableBytes({ read(wakeRead, $0.baseAddress, $0.count) }) > 0 {}
        }
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
            p.exchange.result.withLock { $0 = .problem(.unavailable("expected a running server, found one shutting down")) }
            MHD_resume_connection(p.connection.raw)
        }
        gauge?(count)
        wake()
    }
}

/// A response rendered at most once, on the watch thread.
private final class RenderOnce {
    private var render: (() -> HTTPResponse)?
    private var made: HTTPResponse?

    init(_ render: @escaping () -> HTTPResponse) { self.render = render }

    var response: HTTPResponse {
        if let made { return made }
        let r = render?() ?? HTTPResponse(status: .internalServerError)
        made = r
        render = nil
        return r
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

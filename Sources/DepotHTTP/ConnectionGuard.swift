#if canImport(Glibc)
import Glibc
#endif
import CMicroHTTPD
import Synchronization

/// The connection limits MHD does not enforce in a way a client can see or a slow client cannot
/// dodge:
///
/// - **Head deadline.** MHD's connection timeout is an idle timeout: a client that sends one
///   header byte every few seconds (slowloris) keeps its connection forever. Here every
///   connection must deliver a complete request head within `headerTimeout` of being accepted,
///   or of its previous response (so an idle keep-alive connection is also released then).
///   A reaper thread shuts late sockets down (`shutdown(2)`, under the lock that the close
///   notification also takes, so the fd is still the connection's own); MHD sees EOF and closes.
/// - **Soft connection limit.** Beyond `softLimit` open connections, requests get a 503
///   problem with `Connection: close` instead of a silent close; MHD's own hard limit sits a
///   little higher, so the 503 can still be delivered.
final class ConnectionGuard: Sendable {
    /// One connection's deadline. Kept in the registry (for the reaper) and, unretained, in
    /// MHD's socket context of the connection, so a request reaches its own slot without the
    /// registry's lock.
    private final class Slot: Sendable {
        let fd: Int32
        /// `MonotonicClock` nanoseconds by which the next head must be in.
        let deadline: Atomic<UInt64>
        let awaitingHead = Atomic<Bool>(true)

        init(fd: Int32, deadline: UInt64) {
            self.fd = fd
            self.deadline = Atomic(deadline)
        }
    }

    let headerTimeout: Double
    private let headerTimeoutNanoseconds: UInt64
    let softLimit: Int
    private let entries = Mutex<[UInt: Slot]>([:])
    private let open = Atomic<Int>(0)
    /// Connections cut off for a late head, since start.
    let cutOff = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)

    init(headerTimeoutSeconds: Int, softLimit: Int) {
        self.headerTimeout = Double(headerTimeoutSeconds)
        self.headerTimeoutNanoseconds = UInt64(max(0, headerTimeoutSeconds)) * 1_000_000_000
        self.softLimit = softLimit
    }

    /// MHD's hard limit for a soft one: headroom to answer the excess with 503.
    static func hardLimit(forSoft soft: Int) -> Int { soft + max(16, soft / 8) }

    var openConnections: Int { open.load(ordering: .relaxed) }
    var isOverSoftLimit: Bool { open.load(ordering: .relaxed) > softLimit }

    private static func key(_ c: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(c))) }

    /// `context`: MHD's socket context of the connection, where its slot goes.
    func started(_ connection: OpaquePointer, context: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) {
        open.add(1, ordering: .relaxed)
        guard headerTimeout > 0 else { return }
        let fd = cmhd_connection_fd(connection)
        guard fd >= 0 else { return }
        let slot = Slot(fd: fd, deadline: MonotonicClock.nanoseconds() &+ headerTimeoutNanoseconds)
        entries.withLock { $0[Self.key(connection)] = slot }
        context?.pointee = Unmanaged.passUnretained(slot).toOpaque()
    }

    func closed(_ connection: OpaquePointer, context: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) {
        open.subtract(1, ordering: .relaxed)
        guard headerTimeout > 0 else { return }
        context?.pointee = nil
        entries.withLock { _ = $0.removeValue(forKey: Self.key(connection)) }
    }

    /// The connection's slot; nil without a head deadline. Valid until `closed`, which MHD
    /// calls after the connection's last request.
    private func slot(_ connection: OpaquePointer) -> Slot? {
        guard headerTimeout > 0, let raw = cmhd_connection_socket_context(connection) else { return nil }
        return Unmanaged<Slot>.fromOpaque(raw).takeUnretainedValue()
    }

    /// The head of a request is in: no deadline until its response is done.
    func headReceived(_ connection: OpaquePointer) {
        slot(connection)?.awaitingHead.store(false, ordering: .releasing)
    }

    /// A response is done: the next head (on a keep-alive connection) is due in `headerTimeout`.
    func requestFinished(_ connection: OpaquePointer) {
        guard let slot = slot(connection) else { return }
        slot.deadline.store(MonotonicClock.nanoseconds() &+ headerTimeoutNanoseconds, ordering: .relaxed)
        slot.awaitingHead.store(true, ordering: .releasing)
    }

    /// Starts the reaper thread (only when a head deadline is set).
    func start() {
        guard headerTimeout > 0 else { return }
        var tid = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, nil, { arg in
            guard let arg else { return nil }
            Unmanaged<ConnectionGuard>.fromOpaque(arg).takeRetainedValue().reap()
            return nil
        }, context)
        if rc == 0 { pthread_detach(tid) } else { Unmanaged<ConnectionGuard>.fromOpaque(context).release() }
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    private func reap() {
        let tick = useconds_t(max(50_000, min(500_000, Int(headerTimeout * 1_000_000 / 4))))
        while !stopped.load(ordering: .relaxed) {
            usleep(tick)
            let now = MonotonicClock.nanoseconds()
            entries.withLock { entries in
                for slot in entries.values where slot.awaitingHead.load(ordering: .acquiring)
                    && slot.deadline.load(ordering: .relaxed) <= now {
                    // Once; MHD's close notification removes the slot. Under the lock the close
                    // notification also takes, so the fd is still this connection's own.
                    guard slot.awaitingHead.exchange(false, ordering: .acquiringAndReleasing) else { continue }
                    shutdown(slot.fd, Int32(SHUT_RDWR))
                    cutOff.add(1, ordering: .relaxed)
                }
            }
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Requests per second per client address (token bucket, bursts of twice the rate); the excess
/// gets 429. Off when the rate is 0. Client addresses are the peer's IP, so clients behind one
/// proxy share a bucket.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    let rate: Double
    let burst: Double
    private let buckets = Mutex<[String: Bucket]>([:])

    init(requestsPerSecond: Int) {
        rate = Double(requestsPerSecond)
        burst = Double(requestsPerSecond) * 2
    }

    var isEnabled: Bool { rate > 0 }

    /// Takes a token for `client`; false when its bucket is empty.
    func allow(_ client: String) -> Bool {
        guard rate > 0 else { return true }
        let now = ConnectionGuard.now()
        return buckets.withLock { buckets in
            if buckets.count > 100_000 {
                // Forget clients whose buckets have refilled: they are indistinguishable from new ones.
                buckets = buckets.filter { now - $0.value.updated < burst / rate }
            }
            var b = buckets[client] ?? Bucket(tokens: burst, updated: now)
            b.tokens = min(burst, b.tokens + (now - b.updated) * rate)
            b.updated = now
            let ok = b.tokens >= 1
            if ok { b.tokens -= 1 }
            buckets[client] = b
            return ok
        }
    }

    /// The peer's IP without its port: `127.0.0.1:5000` → `127.0.0.1`, `[::1]:5000` → `::1`.
    static func client(of remote: String?) -> String {
        guard let remote else { return "?" }
        if remote.hasPrefix("["), let close = remote.firstIndex(of: "]") {
            return String(remote[remote.index(after: remote.startIndex)..<close])
        }
        if let colon = remote.lastIndex(of: ":") { return String(remote[..<colon]) }
        return remote
    }
}

/// MHD_OPTION_NOTIFY_CONNECTION: a connection was accepted or is being closed (before its
/// socket is closed).
let notifyConnectionCallback: MHD_NotifyConnectionCallback = { cls, connection, context, code in
    guard let cls, let connection else { return }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    switch code.rawValue {
    case 0: core.connections.started(connection, context: context)  // MHD_CONNECTION_NOTIFY_STARTED
    case 1:                                                         // MHD_CONNECTION_NOTIFY_CLOSED
        core.connections.closed(connection, context: context)
        core.peers?.forget(connection)
    default: break
    }
}

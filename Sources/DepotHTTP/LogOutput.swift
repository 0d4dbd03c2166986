#if canImport(Glibc)
import Glibc
#endif

/// Where `LineLogHandler` writes its lines: a file descriptor, either one `write(2)` per line or
/// through an in-memory buffer (like nginx's `access_log … buffer= flush=`).
///
/// Buffered, a line is appended under a lock and the buffer goes out in one `write(2)` when it
/// holds `bufferBytes`, when a line at `warning` or above arrives (diagnostics are not held
/// back), every `flushIntervalMilliseconds` from a timer thread, and on `flush()`/`close()`
/// (`serve` calls `close()` on its way out, SIGTERM included). At one access line per request
/// the write per line was a fifth of a live-variable read's CPU (bench/FINDINGS.md).
///
/// Writes happen under the lock, so lines leave in the order they were appended and are never
/// split, whatever their length.
public final class LogOutput: @unchecked Sendable {
    public static let defaultBufferBytes = 64 << 10
    public static let defaultFlushIntervalMilliseconds = 1000

    public let fileDescriptor: Int32
    /// 0: unbuffered (one write per line).
    public let bufferBytes: Int
    public let flushIntervalMilliseconds: Int

    // `buffer`, `closed` and `flusher` are guarded by `mutex`.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var buffer: [UInt8] = []
    private var closed = false
    private var flusher: pthread_t?

    /// One write per line: what a test reading a pipe line by line wants.
    public static func unbuffered(fileDescriptor: Int32 = 2) -> LogOutput {
        LogOutput(fileDescriptor: fileDescriptor, bufferBytes: 0)
    }

    /// `bufferBytes` 0 writes every line at once (no timer thread). A `flushIntervalMilliseconds`
    /// of 0 with a buffer flushes only when full, on urgent lines and on `flush()`/`close()`.
    public init(fileDescriptor: Int32 = 2, bufferBytes: Int = defaultBufferBytes,
                flushIntervalMilliseconds: Int = defaultFlushIntervalMilliseconds) {
        self.fileDescriptor = fileDescriptor
        self.bufferBytes = max(0, bufferBytes)
        self.flushIntervalMilliseconds = max(0, flushIntervalMilliseconds)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        guard self.bufferBytes > 0 else { return }
        buffer.reserveCapacity(self.bufferBytes + 1024)
        guard self.flushIntervalMilliseconds > 0 else { return }
        var tid = pthread_t()
        // The thread holds its own reference until `close()` ends it.
        let context = Unmanaged.passRetained(self).toOpaque()
        if pthread_create(&tid, nil, { arg in
            guard let arg else { return nil }
            Unmanaged<LogOutput>.fromOpaque(arg).takeRetainedValue().runFlusher()
            return nil
        }, context) == 0 {
            flusher = tid
        } else {
            Unmanaged<LogOutput>.fromOpaque(context).release()
        }
    }

    deinit {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(mutex)
        wake.deallocate()
        mutex.deallocate()
    }

    public var isBuffered: Bool { bufferBytes > 0 }

    /// Appends one line (with its newline). `urgent` writes it, and everything before it, now.
    public func write(_ line: UnsafeRawBufferPointer, urgent: Bool = false) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if bufferBytes == 0 || closed {
            if !buffer.isEmpty { drainLocked() }
            Self.writeAll(fileDescriptor, line)
            return
        }
        buffer.append(contentsOf: line.bindMemory(to: UInt8.self))
        if urgent || buffer.count >= bufferBytes { drainLocked() }
    }

    /// Writes out whatever is buffered.
    public func flush() {
        pthread_mutex_lock(mutex)
        drainLocked()
        pthread_mutex_unlock(mutex)
    }

    /// Flushes and stops the timer thread; later lines are written one by one. Idempotent.
    public func close() {
        pthread_mutex_lock(mutex)
        drainLocked()
        closed = true
        let thread = flusher
        flusher = nil
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        if let thread { pthread_join(thread, nil) }
    }

    private func drainLocked() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { Self.writeAll(fileDescriptor, $0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func runFlusher() {
        // Signals are for the thread that waits for them (`serve` may create this output before
        // it blocks SIGTERM): delivered here, SIGTERM would end the process without a flush.
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, nil)
        pthread_mutex_lock(mutex)
        while !closed {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            let ns = Int(now.tv_nsec) + (flushIntervalMilliseconds % 1000) * 1_000_000
            var deadline = timespec(tv_sec: now.tv_sec + flushIntervalMilliseconds / 1000 + ns / 1_000_000_000,
                                    tv_nsec: ns % 1_000_000_000)
            while !closed && pthread_cond_timedwait(wake, mutex, &deadline) != ETIMEDOUT {}
            drainLocked()
        }
        pthread_mutex_unlock(mutex)
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = Glibc.write(fd, p, left)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            p += n
            left -= n
        }
    }
}

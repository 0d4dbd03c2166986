#if canImport(Glibc)
import Glibc
#endif

/// A fixed set of threads that run deferred handlers.
///
/// Plain threads, not Swift concurrency tasks: deferred work blocks (bpf() loads, SQLite writes,
/// libelf), and blocking the cooperative pool would stall every other task in the process.
/// The queue is bounded so a burst turns into quick 503s instead of unbounded memory.
final class WorkerPool: @unchecked Sendable {
    // All mutable state is guarded by `mutex`; `threads` is written in init and read in shutdown.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var jobs: [(@Sendable () -> Void)?] = []
    private var head = 0
    private var closed = false
    private var threads: [pthread_t] = []
    let queueLimit: Int

    /// Starts `threadCount` threads; fewer if the system refuses some (at least one is needed,
    /// otherwise `init` returns nil).
    init?(threadCount: Int, queueLimit: Int) {
        self.queueLimit = queueLimit
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        for _ in 0..<max(1, threadCount) {
            var tid = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            let rc = pthread_create(&tid, nil, { arg in
                guard let arg else { return nil }
                let pool = Unmanaged<WorkerPool>.fromOpaque(arg).takeRetainedValue()
                pool.run()
                return nil
            }, context)
            if rc == 0 {
                threads.append(tid)
            } else {
                Unmanaged<WorkerPool>.fromOpaque(context).release()
            }
        }
        if threads.isEmpty {
            destroy()
            return nil
        }
    }

    deinit { destroy() }

    private func destroy() {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(mutex)
        wake.deallocate()
        mutex.deallocate()
    }

    /// Queues a job; false when the queue is full or the pool is shutting down.
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard !closed, jobs.count - head < queueLimit else { return false }
        jobs.append(job)
        pthread_cond_signal(wake)
        return true
    }

    /// Runs what is queued, then joins every thread.
    func shutdown() {
        pthread_mutex_lock(mutex)
        closed = true
        pthread_cond_broadcast(wake)
        let toJoin = threads
        threads = []
        pthread_mutex_unlock(mutex)
        for t in toJoin { pthread_join(t, nil) }
    }

    private func run() {
        while let job = next() { job() }
    }

    private func next() -> (@Sendable () -> Void)? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while head == jobs.count {
            if closed { return nil }
            pthread_cond_wait(wake, mutex)
        }
        let job = jobs[head]
        jobs[head] = nil
        head += 1
        if head > 64 && head * 2 > jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }
}

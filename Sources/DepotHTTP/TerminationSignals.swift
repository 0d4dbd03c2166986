#if canImport(Glibc)
import Glibc
#endif

/// SIGINT/SIGTERM for `bpfdepot serve`: block them before any thread starts (threads inherit
/// the mask, so no MHD or worker thread is interrupted), then collect one with `sigwait` and
/// call `HTTPServer.stop()` from ordinary code rather than from a signal handler.
public enum TerminationSignals {
    /// Call first thing in `main`, before starting threads. Also blocks SIGPIPE.
    public static func block() {
        var set = termination()
        sigaddset(&set, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Waits for SIGINT or SIGTERM and returns its number.
    public static func wait() -> Int32 {
        var set = termination()
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        return received
    }

    private static func termination() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        return set
    }
}

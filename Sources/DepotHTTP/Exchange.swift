import Synchronization

/// One request's state across MHD's access-handler calls, kept in MHD's `*con_cls` from the
/// URI log callback (which sees the raw target first) to the request-completed callback.
final class Exchange: @unchecked Sendable {
    enum Phase {
        /// Headers not looked at yet (first access-handler call pending).
        case new
        /// Admitted: collecting body chunks for `handler`.
        case reading(HTTPRequest, HTTPHandler)
        /// Refused from the head alone and no body follows: answer on the next call.
        case rejected(HTTPProblem)
        /// Answered from the head alone by a route's fast path: queue it on the next call.
        case ready(HTTPResponse)
        /// Answered from the head alone by a route's fast path, with a prepared answer.
        case prepared(PreparedResponse)
        /// The body outgrew the limit mid-stream: drop the rest, then answer 413.
        case discarding(HTTPProblem)
        /// A worker runs the handler; the connection is suspended until it resumes it.
        case suspended
        /// A response is queued.
        case answered
    }

    // MHD calls the access handler for one connection from one thread at a time, so `phase`,
    // `body` and `discarded` need no lock. `result` is written by a worker before it calls
    // MHD_resume_connection and read on MHD's thread after, hence the mutex.
    let rawTarget: String
    var phase: Phase = .new
    /// Id, method, route and start time, for the response's count and access line.
    var trace: RequestTrace
    var body: [UInt8] = []
    var discarded = 0
    var isDeferred = false
    /// Close the connection after this response (refusals that ask the client to back off).
    var closeAfter = false
    let result = Mutex<HTTPResponse?>(nil)

    init(rawTarget: String) {
        self.rawTarget = rawTarget
        self.trace = RequestTrace(target: rawTarget)
    }
}

/// An MHD connection pointer handed to a worker, which may only pass it to
/// MHD_resume_connection (the one MHD call that is safe from any thread).
struct SuspendedConnection: @unchecked Sendable {
    let raw: OpaquePointer
}

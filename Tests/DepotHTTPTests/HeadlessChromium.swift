import Foundation
import Glibc

/// A headless Chromium driven through the DevTools protocol over `--remote-debugging-pipe`:
/// Chromium reads commands from its fd 3 and writes replies and events to its fd 4, each one JSON
/// text ending in a NUL byte. Foundation's Process cannot place pipes at fds 3 and 4, so the
/// browser is started with posix_spawn file actions, in a process group of its own that `close()`
/// kills whole (the renderer and GPU helpers with it).
///
/// Calls are synchronous, one at a time: a command is written and replies are read until the one
/// with its id arrives (events met meanwhile are kept in `events`), within a deadline.
final class HeadlessChromium {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Debian's `chromium` (apt-get install chromium), or `$BPFDEPOT_CHROMIUM`.
    static var executable: String? {
        if let path = ProcessInfo.processInfo.environment["BPFDEPOT_CHROMIUM"], !path.isEmpty { return path }
        return ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    let pid: pid_t
    private let toBrowser: Int32
    private let fromBrowser: Int32
    private let profile: String
    /// The browser's stderr, for failure messages.
    let logPath: String
    private var buffer: [UInt8] = []
    private var nextID = 0
    private var closed = false
    /// Events (`method` + `params`) read while waiting for replies, oldest first.
    private(set) var events: [[String: Any]] = []

    init(executable: String, windowSize: (Int, Int) = (1280, 1100)) throws {
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-chromium-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        logPath = profile + ".log"

        // Every end is made close-on-exec (pipe2 is not in Swift's Glibc; Foundation's Process
        // closes inherited fds in its children anyway), and the browser's ends are moved to fds
        // >= 10 so that dup2 onto 3 and 4 never finds its target already in place.
        var commands: [Int32] = [-1, -1], replies: [Int32] = [-1, -1]
        guard pipe(&commands) == 0, pipe(&replies) == 0 else {
            throw Failure(description: "pipe: \(String(cString: strerror(errno)))")
        }
        let browserReads = fcntl(commands[0], F_DUPFD_CLOEXEC, 10), browserWrites = fcntl(replies[1], F_DUPFD_CLOEXEC, 10)
        Glibc.close(commands[0]); Glibc.close(replies[1])
        defer { Glibc.close(browserReads); Glibc.close(browserWrites) }
        toBrowser = commands[1]
        fromBrowser = replies[0]
        _ = fcntl(toBrowser, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fromBrowser, F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, browserReads, 3)
        posix_spawn_file_actions_adddup2(&actions, browserWrites, 4)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        let arguments = [
            executable, "--headless", "--remote-debugging-pipe", "--user-data-dir=\(profile)",
            // Root cannot use Chromium's sandbox; there is no GPU and often a small /dev/shm.
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--window-size=\(windowSize.0),\(windowSize.1)", "about:blank",
        ]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        guard rc == 0 else {
            Glibc.close(toBrowser); Glibc.close(fromBrowser)
            try? FileManager.default.removeItem(atPath: profile)
            throw Failure(description: "posix_spawn \(executable): \(String(cString: strerror(rc)))")
        }
        pid = child
    }

    deinit { close() }

    /// Kills the browser's whole process group, reaps it, removes its profile. Safe to repeat.
    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(toBrowser)
        Glibc.close(fromBrowser)
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // The helpers (renderer, GPU, zygote) are not our children: wait a little for init to
        // reap them, so a test that ends leaves no browser process behind.
        for _ in 0..<40 where kill(-pid, 0) == 0 { usleep(50_000) }
        try? FileManager.default.removeItem(atPath: profile)
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// The last lines the browser wrote to stderr.
    var logTail: String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }

    /// Sends one command (to the page's session when `session` is given) and returns its `result`.
    @discardableResult
    func send(_ method: String, _ params: [String: Any] = [:], session: String? = nil,
              timeout: Double = 15) throws -> [String: Any] {
        nextID += 1
        let id = nextID
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if let session { message["sessionId"] = session }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(toBrowser, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "\(method): writing to the browser failed: \(String(cString: strerror(errno))); log:\n\(logTail)") }
            sent += n
        }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let reply = try nextMessage(until: deadline, waitingFor: method)
            if reply["id"] as? Int == id {
                if let error = reply["error"] as? [String: Any] {
                    throw Failure(description: "\(method): \(error["message"] ?? error)")
                }
                return reply["result"] as? [String: Any] ?? [:]
            }
            if reply["method"] != nil { events.append(reply) }
        }
    }

    private func nextMessage(until deadline: Date, waitingFor method: String) throws -> [String: Any] {
        while true {
            if let end = buffer.firstIndex(of: 0) {
                let text = Data(buffer[..<end])
                buffer.removeSubrange(...end)
                guard let object = try JSONSerialization.jsonObject(with: text) as? [String: Any] else { continue }
                return object
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw Failure(description: "\(method): no reply from the browser in time; log:\n\(logTail)") }
            var fds = pollfd(fd: fromBrowser, events: Int16(POLLIN), revents: 0)
            let ready = poll(&fds, 1, Int32(min(left * 1000, 1000)) + 1)
            if ready < 0 && errno != EINTR { throw Failure(description: "poll: \(String(cString: strerror(errno)))") }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { read(fromBrowser, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "\(method): the browser closed its pipe (exited?); log:\n\(logTail)") }
            buffer += chunk[..<n]
        }
    }

    // MARK: a page

    /// Opens a new tab and attaches to it; returns the session id page commands go to.
    func openPage() throws -> String {
        let target = try send("Target.createTarget", ["url": "about:blank"])
        guard let targetID = target["targetId"] as? String else { throw Failure(description: "Target.createTarget: no targetId in \(target)") }
        let attached = try send("Target.attachToTarget", ["targetId": targetID, "flatten": true])
        guard let session = attached["sessionId"] as? String else { throw Failure(description: "Target.attachToTarget: no sessionId in \(attached)") }
        try send("Page.enable", session: session)
        try send("Runtime.enable", session: session)
        return session
    }

    /// The value of a JavaScript expression in the page (promises awaited), as JSON gives it.
    func evaluate(_ expression: String, session: String) throws -> Any? {
        let r = try send("Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true], session: session)
        if let details = r["exceptionDetails"] as? [String: Any] {
            let exception = (details["exception"] as? [String: Any])?["description"] ?? details["text"] ?? details
            throw Failure(description: "evaluating \(expression): \(exception)")
        }
        return (r["result"] as? [String: Any])?["value"]
    }

    /// Exceptions the page's scripts threw and did not catch so far (`Runtime.exceptionThrown`).
    var pageExceptions: [String] {
        events.filter { $0["method"] as? String == "Runtime.exceptionThrown" }.map { event in
            let details = (event["params"] as? [String: Any])?["exceptionDetails"] as? [String: Any] ?? [:]
            let description = (details["exception"] as? [String: Any])?["description"] as? String
            return description ?? details["text"] as? String ?? "\(details)"
        }
    }
}

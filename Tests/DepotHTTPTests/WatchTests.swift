import BPFTestSupport
@testable import DepotHTTP
import Foundation
import Glibc
import KernelTestSupport
import Testing

/// An event-stream client on a raw socket: reads events as they come, with a deadline.
final class EventStreamClient {
    struct Event: Equatable {
        var id: String?
        var event: String?
        var data: String
    }

    let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var head = ""
    private(set) var comments = 0
    private var decoder = ChunkDecoder()

    /// Connects and sends `GET path`; reads the response head.
    init(port: UInt16, path: String, headers: [(String, String)] = []) throws {
        fd = try RawHTTP(port: port).connect(timeout: 0.2)
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        for (k, v) in headers { request += "\(k): \(v)\r\n" }
        request += "\r\n"
        guard RawHTTP.send(fd, Array(request.utf8)) else { throw RawHTTP.Failure(description: "send failed") }
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if let end = Self.find(Array("\r\n\r\n".utf8), in: buffer) {
                head = String(decoding: buffer[..<end], as: UTF8.self)
                buffer = decoder.feed(Array(buffer[(end + 4)...]))
                return
            }
            if !receive(raw: true) { break }
        }
        throw RawHTTP.Failure(description: "no response head within 5 s")
    }

    deinit { close(fd) }

    var status: Int { Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0 }

    func header(_ name: String) -> String? {
        for line in head.split(separator: "\r\n").dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == name.lowercased() { return parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    /// One socket read; false on EOF or error (timeouts are not errors).
    @discardableResult
    private func receive(raw: Bool = false) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 {
            let bytes = Array(chunk[..<n])
            buffer += raw ? bytes : decoder.feed(bytes)
            return true
        }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return true }
        closed = true
        return false
    }

    private(set) var closed = false
    /// The response is complete (the last chunk came): the stream ended.
    var finished: Bool { decoder.ended }

    /// The next event within `timeout` seconds; nil when none came (or the stream ended).
    func next(timeout: Double) -> Event? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            while let end = Self.find(Array("\n\n".utf8), in: buffer) {
                let block = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 2)
                var e = Event(id: nil, event: nil, data: "")
                var isComment = true
                for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                    if line.hasPrefix(":") { continue }
                    isComment = false
                    if line.hasPrefix("id: ") { e.id = String(line.dropFirst(4)) }
                    if line.hasPrefix("event: ") { e.event = String(line.dropFirst(7)) }
                    if line.hasPrefix("data: ") { e.data += String(line.dropFirst(6)) }
                }
                if isComment { comments += 1; continue }
                return e
            }
            guard !closed, !finished, Date() < deadline, receive() else { return nil }
        }
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
        return nil
    }

    /// Undoes `Transfer-Encoding: chunked` incrementally.
    struct ChunkDecoder {
        var pending: [UInt8] = []
        var left = 0
        var ended = false

        mutating func feed(_ bytes: [UInt8]) -> [UInt8] {
            pending += bytes
            var out: [UInt8] = []
            while !ended {
                if left > 0 {
                    let n = min(left, pending.count)
                    out += pending[..<n]
                    pending.removeFirst(n)
                    left -= n
                    if left > 0 { break }
                    left = -2  // the CRLF after the data
                }
                if left < 0 {
                    guard pending.count >= 2 else { break }
                    pending.removeFirst(2)
                    left = 0
                }
                guard let eol = EventStreamClient.find(Array("\r\n".utf8), in: pending) else { break }
                let size = Int(String(decoding: pending[..<eol], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? 0
                pending.removeFirst(eol + 2)
                if size == 0 { ended = true; break }
                left = size
            }
            return out
        }
    }
}

/// Watching live variables: event streams and long polls through a loopback server, against a
/// real load of globals_run (the host refuses arenas, so a global-data object).
@Suite("watching", .serialized, .needsBPF)
struct WatchTests {
    static func setup(_ configure: @escaping (inout HTTPServerConfiguration) -> Void = { _ in })
        throws -> (ServiceFixture, LoopbackServer, ServiceClient, Int, UInt16) {
        let f = try ServiceFixture()
        let s = try f.server(configure: configure)
        let c = ServiceClient(s)
        let (_, load) = try ObservabilityTests.uploadAndLoad(c, "globals_run")
        let port = try #require(s.server.port)
        return (f, s, c, load, port)
    }

    static func value(_ event: EventStreamClient.Event?, _ name: String) -> Int? {
        guard let data = event?.data.data(using: .utf8),
              let body = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        if let vars = body["variables"] as? [[String: Any]] {
            return (vars.first { $0["name"] as? String == name }?["value"] as? NSNumber)?.intValue
        }
        return body["name"] as? String == name ? (body["value"] as? NSNumber)?.intValue : nil
    }

    static func watchers(_ c: ServiceClient) throws -> Double? {
        try c.scrape().value("bpfdepot_watchers")
    }

    @Test func aStreamDeliversExactlyTheChangesMade() throws {
        let (f, s, c, load, port) = try Self.setup()
        defer { s.stop(); f.close() }
        let stream = try EventStreamClient(port: port, path: "/v1/loads/\(load)/variables?names=input,acc&watch=1&interval=50ms")
        #expect(stream.status == 200 && stream.header("Content-Type") == "text/event-stream", "\(stream.head)")
        let first = stream.next(timeout: 2)
        #expect(first?.event == "variables" && Self.value(first, "input") == 20, "the current value first: \(String(describing: first))")
        var ids = [first?.id]
        for v in [21, 22, 23, 24, 25] {
            let w = try c.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"input": \#(v)}"#)
            #expect(w.status == 200)
            let e = stream.next(timeout: 2)
            #expect(Self.value(e, "input") == v, "\(String(describing: e))")
            // The event id is the tag a plain GET answers now.
            let tag = try c.get("/v1/loads/\(load)/variables?names=input,acc").headers["ETag"]
            #expect(e?.id == tag)
            ids.append(e?.id)
            Thread.sleep(forTimeInterval: 0.15)  // ≥ 2 intervals: unchanged bytes send nothing
        }
        #expect(stream.next(timeout: 0.5) == nil, "no event without a change")
        #expect(Set(ids.compactMap { $0 }).count == 6)
    }

    @Test func lastEventIdResumesWithoutRepeatingAndUnloadEndsTheStream() throws {
        let (f, s, c, load, port) = try Self.setup()
        defer { s.stop(); f.close() }
        let tag = try #require(try c.get("/v1/loads/\(load)/variables/input").headers["ETag"])
        let stream = try EventStreamClient(port: port, path: "/v1/loads/\(load)/variables/input?watch=1&interval=50ms",
                                           headers: [("Last-Event-ID", tag)])
        #expect(stream.next(timeout: 0.4) == nil, "the client has this value already")
        _ = try c.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"input": 99}"#)
        #expect(Self.value(stream.next(timeout: 2), "input") == 99)

        #expect(try c.send("DELETE", "/v1/loads/\(load)").status == 204)
        let end = stream.next(timeout: 2)
        #expect(end?.event == "unloaded" && end?.data == #"{"load":\#(load)}"#, "\(String(describing: end))")
        #expect(stream.next(timeout: 1) == nil && stream.finished, "the response ends after the unloaded event")
    }

    @Test func heartbeatsKeepQuietStreamsAliveAndAGoneClientFreesItsWatcher() throws {
        let (f, s, c, load, port) = try Self.setup { $0.watchHeartbeat = .milliseconds(300) }
        defer { s.stop(); f.close() }
        var stream: EventStreamClient? = try EventStreamClient(port: port, path: "/v1/loads/\(load)/variables?watch=1&interval=50ms")
        _ = stream?.next(timeout: 2)
        #expect(stream?.next(timeout: 1.2) == nil)
        #expect((stream?.comments ?? 0) >= 2, "heartbeat comments while nothing changes")
        #expect(try Self.watchers(c) == 1)
        stream = nil  // closes the socket
        let deadline = Date().addingTimeInterval(3)
        while try Self.watchers(c) != 0, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try Self.watchers(c) == 0, "the watcher is freed once the client is gone")
    }

    @Test func watchersAreBoundedAndDoNotHoldTheServersThreads() throws {
        let (f, s, c, load, port) = try Self.setup { $0.maxWatchers = 200 }
        defer { s.stop(); f.close() }
        var streams: [EventStreamClient] = []
        for _ in 0..<200 {
            streams.append(try EventStreamClient(port: port, path: "/v1/loads/\(load)/variables/input?watch=1"))
        }
        #expect(streams.allSatisfy { $0.status == 200 })
        // Two MHD threads and two workers serve 200 open streams and still answer at once.
        let started = Date()
        for _ in 0..<20 { #expect(try c.get("/v1/loads/\(load)/variables/input").status == 200) }
        #expect(try c.get("/v1/objects").status == 200, "a deferred route too")
        #expect(Date().timeIntervalSince(started) < 5)
        let over = try EventStreamClient(port: port, path: "/v1/loads/\(load)/variables/input?watch=1")
        #expect(over.status == 503, "\(over.head)")
        #expect(try Self.watchers(c) == 200)
        _ = try c.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"input": 7}"#)
        for st in streams.prefix(10) {
            _ = st.next(timeout: 2)  // the first event
            #expect(Self.value(st.next(timeout: 3), "input") == 7)
        }
    }

    @Test func aLongPollAnswersOnChangeOr304AtTheEnd() throws {
        let (f, s, c, load, _) = try Self.setup()
        defer { s.stop(); f.close() }
        let tag = try #require(try c.get("/v1/loads/\(load)/variables/input").headers["ETag"])

        // Nothing changes: 304 after the wait.
        let started = Date()
        let quiet = try c.get("/v1/loads/\(load)/variables/input", headers: [("If-None-Match", tag), ("Prefer", "wait=1")])
        let waited = Date().timeIntervalSince(started)
        #expect(quiet.status == 304 && waited >= 0.9 && waited < 3, "\(quiet.status) after \(waited) s")
        #expect(quiet.headers["Preference-Applied"] == "wait=1")

        // A change one second in: answered then, not at the end of the wait.
        let writer = Thread {
            Thread.sleep(forTimeInterval: 0.5)
            _ = try? c.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"input": 31}"#)
        }
        writer.start()
        let t0 = Date()
        let changed = try c.get("/v1/loads/\(load)/variables/input", headers: [("If-None-Match", tag), ("Prefer", "wait=10")])
        let took = Date().timeIntervalSince(t0)
        #expect(changed.status == 200 && (changed.json["value"] as? Int) == 31, "\(changed.text)")
        #expect(took >= 0.4 && took < 3, "answered \(took) s in")
        #expect(changed.headers["ETag"] != nil && changed.headers["ETag"] != tag)

        // A client whose tag is stale is answered at once; more than 60 s is clamped.
        let stale = try c.get("/v1/loads/\(load)/variables/input", headers: [("If-None-Match", tag), ("Prefer", "wait=600")])
        #expect(stale.status == 200)
        #expect(try c.get("/v1/loads/\(load)/variables/input?interval=10ms").status == 400)
        #expect(try c.get("/v1/loads/\(load)/variables/input?watch=maybe").status == 400)
    }

    @Test func mapEntriesCanBeWatchedToo() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let (c, load) = try MapEntriesTests.filled(f, s)
        let port = try #require(s.server.port)
        let stream = try EventStreamClient(port: port, path: "/v1/loads/\(load)/maps/recent/entries?watch=1&interval=50ms")
        let first = stream.next(timeout: 2)
        #expect(first?.event == "entries" && first?.data.contains(#""key":100"#) == true, "\(String(describing: first))")
        _ = try c.send("PUT", "/v1/loads/\(load)/maps/recent/entries/105", json: #"{"value": 1234}"#)
        let next = stream.next(timeout: 2)
        #expect(next?.data.contains(#"{"key":105,"value":1234}"#) == true, "\(String(describing: next))")
    }

    @Test func heartbeatsComeOnTimeWhateverTheInterval() throws {
        // A stream checked once a minute still gets its heartbeat comments on time.
        let (f, s, _, load, port) = try Self.setup { $0.watchHeartbeat = .milliseconds(300) }
        defer { s.stop(); f.close() }
        let stream = try EventStreamClient(port: port, path: "/v1/loads/\(load)/variables/input?watch=1&interval=60s")
        #expect(Self.value(stream.next(timeout: 2), "input") == 20)
        #expect(stream.next(timeout: 1.3) == nil)
        #expect(stream.comments >= 3, "heartbeats every 0.3 s on a 60 s interval: \(stream.comments) in 1.3 s")
    }

    @Test func aLongPollWhoseClientLeftFreesItsWatcher() throws {
        let (f, s, c, load, port) = try Self.setup()
        defer { s.stop(); f.close() }
        let tag = try #require(try c.get("/v1/loads/\(load)/variables/input").headers["ETag"])
        let fd = try RawHTTP(port: port).connect()
        let head = "GET /v1/loads/\(load)/variables/input HTTP/1.1\r\nHost: x\r\nIf-None-Match: \(tag)\r\nPrefer: wait=30\r\n\r\n"
        #expect(RawHTTP.send(fd, Array(head.utf8)))
        var deadline = Date().addingTimeInterval(2)
        while try Self.watchers(c) != 1, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(try Self.watchers(c) == 1, "the long poll waits")
        close(fd)
        deadline = Date().addingTimeInterval(2)
        while try Self.watchers(c) != 0, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(try Self.watchers(c) == 0, "a long poll whose client left is not held for its 30 s")
    }

    @Test func stoppingTheServerEndsStreamsAndAnswersLongPolls() throws {
        let (f, s, c, load, port) = try Self.setup()
        defer { f.close() }
        let streams = try (0..<3).map { _ in
            try EventStreamClient(port: port, path: "/v1/loads/\(load)/variables/input?watch=1&interval=50ms")
        }
        for st in streams { #expect(Self.value(st.next(timeout: 2), "input") == 20) }
        let tag = try #require(try c.get("/v1/loads/\(load)/variables/input").headers["ETag"])
        let fd = try RawHTTP(port: port).connect(timeout: 10)
        defer { close(fd) }
        let head = "GET /v1/loads/\(load)/variables/input HTTP/1.1\r\nHost: x\r\nIf-None-Match: \(tag)\r\nPrefer: wait=30\r\n\r\n"
        #expect(RawHTTP.send(fd, Array(head.utf8)))
        let deadline = Date().addingTimeInterval(2)
        while try Self.watchers(c) != 4, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(try Self.watchers(c) == 4)

        let t0 = Date()
        s.stop()
        let took = Date().timeIntervalSince(t0)
        #expect(took < 2, "stop() ends the watches instead of waiting out its grace period: \(took) s")
        let answer = try RawHTTP.parse(RawHTTP.readAll(fd))
        #expect(answer.status == 503, "the waiting long poll is answered: \(answer.status) \(answer.text)")
        for st in streams {
            #expect(st.next(timeout: 2) == nil)
            #expect(st.finished || st.closed, "the stream ended")
        }
    }

    @Test func watchersOfOneResourceShareReadsAndAnIdleHubSleeps() throws {
        let (f, s, c, load, port) = try Self.setup()
        defer { s.stop(); f.close() }
        var streams = try (0..<50).map { _ in
            try EventStreamClient(port: port, path: "/v1/loads/\(load)/variables/input?watch=1&interval=200ms")
        }
        // Another resource in the same rounds keeps its own reads and values.
        var other: EventStreamClient? = try EventStreamClient(port: port, path: "/v1/loads/\(load)/variables?names=acc&watch=1&interval=200ms")
        for st in streams { #expect(Self.value(st.next(timeout: 2), "input") == 20) }
        #expect(other?.next(timeout: 2)?.data.contains(#""name":"acc""#) == true)

        let before = try #require(s.server.watchCounters)
        Thread.sleep(forTimeInterval: 1)
        let after = try #require(s.server.watchCounters)
        let rounds = after.rounds - before.rounds, reads = after.reads - before.reads
        // Unshared, 51 watchers at 200 ms would read 255 times a second.
        #expect(reads <= 2 * rounds && reads < 60, "\(reads) reads in \(rounds) rounds for 51 watchers of 2 resources")
        #expect(rounds <= 55, "at most one wakeup per 20 ms grain: \(rounds)")

        _ = try c.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"input": 77}"#)
        for st in streams { #expect(Self.value(st.next(timeout: 2), "input") == 77) }
        #expect(other?.next(timeout: 0.5) == nil, "acc did not change")

        // Every client gone: the watch thread sleeps (heartbeats are 15 s away; no rounds).
        streams.removeAll()
        other = nil
        let deadline = Date().addingTimeInterval(3)
        while try Self.watchers(c) != 0, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try Self.watchers(c) == 0)
        let idle0 = try #require(s.server.watchCounters).rounds
        Thread.sleep(forTimeInterval: 0.5)
        #expect(try #require(s.server.watchCounters).rounds == idle0, "no wakeups without watchers")
    }
}

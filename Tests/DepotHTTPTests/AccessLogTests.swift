@testable import DepotHTTP
import Foundation
import Glibc
import Logging
import Testing

/// Access lines as an operator reads them: the bytes the server writes for each request (through
/// the direct renderer) are the bytes swift-log's generic path writes for the same fields, and a
/// buffered log loses no line, keeps their order, and is written on shutdown.
@Suite struct AccessLogTests {
    /// Everything readable from `fd` (the write end must be closed).
    static func readAll(_ fd: Int32) -> String {
        String(decoding: FileHandle(fileDescriptor: fd).readDataToEndOfFile(), as: UTF8.self)
    }

    /// What `fd` holds right now, without waiting.
    static func readAvailable(_ fd: Int32) -> String {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            out += chunk[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func capture(_ pattern: Regex<(Substring, Substring)>, in line: Substring) -> String? {
        line.firstMatch(of: pattern).map { String($0.1) }
    }

    @Test(arguments: [LineLogHandler.Format.json, .text])
    func theServersAccessLinesAreWhatSwiftLogMetadataWouldRender(format: LineLogHandler.Format) throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let logger = Logger(label: "bpfdepot.http") { LineLogHandler(label: $0, format: format, fileDescriptor: fds[1]) }
        var router = Router()
        router.get("/items/{n}", .immediate { _ in .text("item") })
        let s = try LoopbackServer(router: router, metrics: ServiceMetrics(), logger: logger)
        let ok = try Curl.get(s.url("/items/7?x=1"), ["-H", "X-Request-Id: line-1"])
        let missing = try Curl.get(s.url("/no/such=th%20ing"), ["-H", "X-Request-Id: line-2"])
        s.stop()
        close(fds[1])
        #expect(ok.status == 200 && missing.status == 404)

        let lines = Self.readAll(fds[0]).split(separator: "\n")
        try #require(lines.count == 2)
        let expected: [(id: String, route: String, path: String, status: Int, bytes: Int)] = [
            ("line-1", "/items/{n}", "/items/7", 200, ok.body.count),
            ("line-2", ServiceMetrics.unmatchedRoute, "/no/such=th%20ing", 404, missing.body.count),
        ]
        for (line, e) in zip(lines, expected) {
            // The two fields that change from run to run, read back from the line itself.
            let timestamp = format == .json ? Self.capture(/"timestamp":"([^"]+)"/, in: line) : line.split(separator: " ").first.map(String.init)
            let duration = format == .json ? Self.capture(/"duration_ms":([0-9.]+)/, in: line) : Self.capture(/\ duration_ms=([0-9.]+)/, in: line)
            let generic = LineLogHandler.render(
                format: format, timestamp: try #require(timestamp), level: .info, label: "bpfdepot.http",
                message: "GET \(e.route) \(e.status)",
                metadata: [
                    "request_id": .string(e.id), "method": .string("GET"), "route": .string(e.route), "path": .string(e.path),
                    "status": .stringConvertible(e.status), "duration_ms": .stringConvertible(try #require(duration)),
                    "bytes": .stringConvertible(e.bytes),
                ])
            #expect(String(line) == generic)
        }
    }

    /// The access-line writer escapes as the generic renderer does: quotes, backslashes, control
    /// bytes, `=` and spaces (text quoting), non-ASCII; and empty fields.
    @Test(arguments: [LineLogHandler.Format.json, .text])
    func accessLinesEscapeAsTheGenericRendererDoes(format: LineLogHandler.Format) throws {
        let paths = ["/plain/path", #"/q"uote\back"#, "/tab\there\nnew\rret\u{01}\u{1f}", "/a=b c", "/ünï/çødé", ""]
        for path in paths {
            let a = AccessLine(requestID: "id-1", method: "GET", route: #"/r/{n}"x"#, path: path, status: 200,
                               nanoseconds: 1_234_567, bytes: 42)
            let line: String = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { buf in
                var w = LineWriter(base: buf.baseAddress!, capacity: buf.count)
                LineLogHandler.render(into: &w, format: format, level: .info, label: "bpfdepot.http", access: a)
                #expect(!w.overflowed)
                return String(decoding: UnsafeBufferPointer(start: buf.baseAddress, count: w.count), as: UTF8.self)
            }
            let timestamp = format == .json ? Self.capture(/"timestamp":"([^"]+)"/, in: line[...]) : line.split(separator: " ").first.map(String.init)
            let generic = LineLogHandler.render(format: format, timestamp: try #require(timestamp), level: .info, label: "bpfdepot.http",
                                                message: a.message, metadata: a.metadata)
            #expect(line == generic, "\(path)")
        }
        // A writer that runs out of room says so and writes nothing past its end.
        var small = [UInt8](repeating: 0xee, count: 12)
        small.withUnsafeMutableBufferPointer { buf in
            var w = LineWriter(base: buf.baseAddress!, capacity: 10)
            w.put("0123456789abc")
            #expect(w.overflowed && w.count == 0)
            w.put("01234")
            #expect(w.count == 5)
        }
        #expect(small[10] == 0xee && small[11] == 0xee)
    }

    @Test func aHandlerWithMetadataOfItsOwnStillGetsItOnAccessLines() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        var logger = Logger(label: "bpfdepot.http") { LineLogHandler(label: $0, format: .text, fileDescriptor: fds[1]) }
        logger[metadataKey: "component"] = "edge"
        let s = try LoopbackServer(router: Router(), logger: logger)
        #expect(try Curl.get(s.url("/x"), ["-H", "X-Request-Id: meta-1"]).status == 404)
        s.stop()
        close(fds[1])
        let text = Self.readAll(fds[0])
        #expect(text.contains(" component=edge ") && text.contains("request_id=meta-1"))
    }

    @Test func aBufferedOutputWritesWhenFullOnWarningsOnFlushAndInOrder() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let output = LogOutput(fileDescriptor: fds[1], bufferBytes: 4096, flushIntervalMilliseconds: 0)
        let logger = Logger(label: "t") { LineLogHandler(label: $0, format: .text, output: output) }
        logger.info("one", metadata: ["request_id": "r1"])
        logger.info("two", metadata: ["request_id": "r2"])
        #expect(Self.readAvailable(fds[0]) == "")  // held in the buffer
        logger.warning("three")  // a warning takes what came before it along
        let first = Self.readAvailable(fds[0]).split(separator: "\n")
        #expect(first.count == 3)
        #expect(first.first?.hasSuffix("t: one request_id=r1") == true && first.last?.hasSuffix("warning t: three") == true)

        // Past the buffer's size everything goes out at once, whole lines only.
        for i in 0..<100 { logger.info("line \(i)", metadata: ["request_id": "id-\(i)"]) }
        let full = Self.readAvailable(fds[0])
        #expect(!full.isEmpty && full.hasSuffix("\n"))
        output.flush()
        let rest = Self.readAvailable(fds[0])
        let all = (full + rest).split(separator: "\n")
        #expect(all.count == 100)
        #expect(all.enumerated().allSatisfy { i, line in line.hasSuffix("line \(i) request_id=id-\(i)") })

        // Closed: lines are written as they come.
        output.close()
        logger.info("after close")
        #expect(Self.readAvailable(fds[0]).hasSuffix("info t: after close\n"))
        close(fds[1])
    }

    @Test func aBufferedOutputIsFlushedByItsTimer() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let output = LogOutput(fileDescriptor: fds[1], flushIntervalMilliseconds: 50)
        defer { output.close() }
        let logger = Logger(label: "t") { LineLogHandler(label: $0, format: .json, output: output) }
        logger.info("tick", metadata: ["request_id": "timer-1"])
        var seen = ""
        let deadline = Date().addingTimeInterval(5)
        while !seen.contains("timer-1") && Date() < deadline {
            usleep(10_000)
            seen += Self.readAvailable(fds[0])
        }
        #expect(seen.contains(#""request_id":"timer-1""#))
    }

    /// `serve` buffers its access lines; SIGTERM writes them out, each with its request id.
    @Test func serveWritesBufferedAccessLinesWhenItIsTerminated() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-accesslog-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let serve = try ServeProcess(directory: dir, pinRoot: "")
        try serve.start(extra: ["--log-flush-ms", "60000"])
        defer { serve.kill9() }
        // Start-up lines are not held back (written right after the server answers).
        let deadline = Date().addingTimeInterval(5)
        while !serve.log.contains("listening") && Date() < deadline { usleep(10_000) }
        #expect(serve.log.contains("listening"))
        let ids = (1...3).map { "sigterm-\($0)" }
        for id in ids {
            #expect(try Curl.get("http://127.0.0.1:\(serve.port)/healthz", ["-H", "X-Request-Id: \(id)"]).status == 200)
        }
        #expect(!serve.log.contains("request_id=sigterm-1"))  // still in the buffer
        serve.terminate()
        let log = serve.log
        for id in ids {
            #expect(log.contains("method=GET path=/healthz request_id=\(id) route=/healthz status=200"), "\(log)")
        }
        #expect(log.contains("stopping"))
    }
}

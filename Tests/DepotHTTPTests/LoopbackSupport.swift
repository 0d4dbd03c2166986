import DepotHTTP
import DepotStore
import Foundation
import Logging
import Testing

/// A server on 127.0.0.1 with a kernel-chosen port, stopped by `stop()` at the end of a test.
struct LoopbackServer {
    let server: HTTPServer
    let base: String

    init(router: Router, metrics: ServiceMetrics? = nil, logger: Logger? = nil,
         configure: (inout HTTPServerConfiguration) -> Void = { _ in }, audit: (@Sendable (AuditRecord) -> Void)? = nil) throws {
        var c = HTTPServerConfiguration(listen: .init(host: "127.0.0.1", port: 0))
        c.threadPoolSize = 2
        c.workerThreads = 2
        configure(&c)
        server = HTTPServer(configuration: c, router: router, metrics: metrics, logger: logger, audit: audit)
        try server.start()
        let port = try #require(server.port)
        #expect(port != 0)
        base = "http://127.0.0.1:\(port)"
    }

    func url(_ path: String) -> String { base + path }

    func stop() { server.stop() }
}

/// What curl saw for one transfer.
struct CurlResponse {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// Runs curl (the client a person would use) and collects exit status and output.
enum Curl {
    static let path = "/usr/bin/curl"

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs curl with `arguments`; returns (exit code, stdout, stderr).
    static func run(_ arguments: [String]) throws -> (code: Int32, out: String, err: String) {
        try runProcess(path, arguments)
    }

    /// One request; `extra` goes before the URL (e.g. `["-H", "X: y"]`, `["--data-binary", "@f"]`).
    static func get(_ url: String, _ extra: [String] = []) throws -> CurlResponse {
        try fetch("GET", url, extra)
    }

    static func fetch(_ method: String, _ url: String, _ extra: [String] = []) throws -> CurlResponse {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depothttp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let headerFile = dir.appendingPathComponent("headers").path
        let bodyFile = dir.appendingPathComponent("body").path
        var args = ["-s", "-S", "-X", method, "-D", headerFile, "-o", bodyFile, "-w", "%{http_code}"]
        if method == "HEAD" { args = ["-s", "-S", "-I", "-D", headerFile, "-o", bodyFile, "-w", "%{http_code}"] }
        args += extra + [url]
        let (code, out, err) = try run(args)
        guard code == 0, let status = Int(out) else {
            throw Failure(description: "curl \(args.joined(separator: " ")) exited \(code): \(err)")
        }
        let body = (try? Data(contentsOf: URL(fileURLWithPath: bodyFile))).map { [UInt8]($0) } ?? []
        return CurlResponse(status: status, headers: parseHeaders(headerFile), body: body)
    }

    /// The last header block in a `-D` dump (skipping `100 Continue`).
    static func parseHeaders(_ file: String) -> HTTPHeaders {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return [:] }
        let blocks = text.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
        var headers = HTTPHeaders()
        for line in (blocks.last ?? "").components(separatedBy: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.add(String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return headers
    }
}

/// A file of `count` bytes with a position-dependent pattern (so shifted or dropped chunks show).
func patternFile(bytes count: Int) throws -> (path: String, bytes: [UInt8]) {
    var bytes = [UInt8](repeating: 0, count: count)
    var x: UInt32 = 2_463_534_242
    for i in 0..<count {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5
        bytes[i] = UInt8(truncatingIfNeeded: x)
    }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("depothttp-body-\(UUID().uuidString)").path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return (path, bytes)
}

/// Runs a program to completion; stderr goes through a file so neither pipe can fill and block it.
func runProcess(_ executable: String, _ arguments: [String]) throws -> (code: Int32, out: String, err: String) {
    let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("depothttp-curl-\(UUID().uuidString)").path
    guard FileManager.default.createFile(atPath: errPath, contents: nil), let errHandle = FileHandle(forWritingAtPath: errPath) else {
        throw Curl.Failure(description: "expected to create \(errPath), found it impossible")
    }
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    p.standardError = errHandle
    try p.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    try? errHandle.close()
    let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    return (p.terminationStatus, String(decoding: outData, as: UTF8.self), err)
}

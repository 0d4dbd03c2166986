import BPFTestSupport
import BPFKernel
import KernelTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// A minimal HTTP/1.1 client on a raw socket: one request per connection (`Connection: close`),
/// or a socket left open for slow-client and flood tests. No process per request, so loops of
/// thousands of requests are cheap and the test process's own fds stay countable.
struct RawHTTP {
    struct Response {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    let port: UInt16

    /// A connected TCP socket to 127.0.0.1:port (receive timeout `timeout` seconds).
    func connect(timeout: Double = 10) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw Failure(description: "connect to port \(port): errno \(e)")
        }
        return fd
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// Reads until EOF (the server closes after a `Connection: close` response) or timeout.
    static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    static func parse(_ raw: [UInt8]) throws -> Response {
        guard let split = raw.firstRange(of: Array("\r\n\r\n".utf8)) else {
            throw Failure(description: "no complete response head in \(raw.count) bytes")
        }
        let head = String(decoding: raw[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = head.first?.split(separator: " ") ?? []
        guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure(description: "bad status line '\(head.first ?? "")'") }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let c = line.firstIndex(of: ":") else { continue }
            headers[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(raw[split.upperBound...])
        if let len = headers["content-length"].flatMap(Int.init), body.count > len { body = Array(body[0..<len]) }
        return Response(status: status, headers: headers, body: body)
    }

    func request(_ method: String, _ path: String, body: [UInt8] = [], contentType: String = "application/json",
                 headers: [(String, String)] = []) throws -> Response {
        let fd = try connect()
        defer { close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if !body.isEmpty || ["POST", "PUT", "PATCH"].contains(method) {
            head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        guard Self.send(fd, Array(head.utf8) + body) else { throw Failure(description: "send failed: errno \(errno)") }
        return try Self.parse(Self.readAll(fd))
    }

    func json(_ method: String, _ path: String, _ text: String) throws -> Response {
        try request(method, path, body: Array(text.utf8))
    }
}

/// A `bpfdepot serve` process of its own (the binary the tests were built with), so a test can
/// `kill -9` it and start it again on the same database and pin root.
final class ServeProcess {
    let databasePath: String
    let pinRoot: String
    let port: UInt16
    let logPath: String
    private(set) var pid: pid_t = 0

    static var binary: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("bpfdepot").path
    }

    init(directory: String, pinRoot: String) throws {
        databasePath = directory + "/depot.sqlite"
        logPath = directory + "/serve.log"
        self.pinRoot = pinRoot
        port = try Self.freePort()
    }

    /// A port the kernel just handed out and released (another process could take it in between;
    /// on a test machine that is rare enough).
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw RawHTTP.Failure(description: "no free port: errno \(errno)") }
        return UInt16(bigEndian: addr.sin_port)
    }

    var client: RawHTTP { RawHTTP(port: port) }

    enum Readiness {
        case http
        /// HTTPS with a certificate curl checks against this CA file.
        case tls(caFile: String)
    }

    /// Starts the server and waits until /healthz answers.
    func start(extra: [String] = [], readiness: Readiness = .http) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["serve", "--db", databasePath, "--listen", "127.0.0.1:\(port)", "--pin-root", pinRoot] + extra
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        pid = p.processIdentifier
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            switch readiness {
            case .http:
                if let r = try? client.request("GET", "/healthz"), r.status == 200 { return }
            case .tls(let ca):
                if let r = try? Curl.get("https://127.0.0.1:\(port)/healthz", ["--cacert", ca]), r.status == 200 { return }
            }
            if !p.isRunning { break }
            usleep(20_000)
        }
        throw RawHTTP.Failure(description: "bpfdepot serve did not answer /healthz; log:\n\(self.log)")
    }

    func kill9() {
        guard pid > 0 else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
    }

    func terminate() {
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Load directories under the pin root (named by load id).
    var pinnedLoadIDs: Set<Int64> {
        Set(((try? FileManager.default.contentsOfDirectory(atPath: pinRoot)) ?? []).compactMap { Int64($0) })
    }
}

/// Open fds of this process, and its resident set in KiB.
enum ProcessFacts {
    static var openFDs: Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1 }

    static var rssKiB: Int {
        guard let text = ProcFile.text("/proc/self/status") else { return -1 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        }
        return -1
    }
}

/// Whether this process may use bpf() (root or CAP_BPF + CAP_SYS_ADMIN).
enum LoadSupport {
    static var bpfPermitted: Bool { KernelRequirements.bpfPermitted }

    static let skipMessage: Comment = "bpf() returned EPERM: loading needs root or CAP_BPF + CAP_SYS_ADMIN"
}

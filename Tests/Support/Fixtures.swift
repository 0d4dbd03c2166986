import Foundation
import Synchronization

/// Compiles the BPF C fixtures under `Tests/Fixtures` with the Swift toolchain's own clang, once
/// per process, and hands out the object bytes.
public enum Fixtures {
    public struct BuildError: Error, CustomStringConvertible {
        public let description: String
    }

    /// `Tests/Fixtures`, found from this file's path.
    public static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    private static let cache = Mutex<[String: Result<URL, BuildError>]>([:])
    private static let outputDirectory: URL = {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("bpfdepot-fixtures-\(getpid())", isDirectory: true)
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// The clang beside `swift` (it has the bpf target); `CLANG` overrides.
    public static let clang: String = {
        if let c = ProcessInfo.processInfo.environment["CLANG"] { return c }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"
        for dir in path.split(separator: ":") {
            let swift = "\(dir)/swift"
            if FileManager.default.isExecutableFile(atPath: swift) {
                let resolved = (try? FileManager.default.destinationOfSymbolicLink(atPath: swift)).map {
                    $0.hasPrefix("/") ? $0 : "\(dir)/\($0)"
                } ?? swift
                let candidate = URL(fileURLWithPath: resolved).deletingLastPathComponent().appendingPathComponent("clang").path
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return "clang"
    }()

    /// Path of the compiled object for `Tests/Fixtures/<name>.bpf.c`.
    public static func objectPath(_ name: String) throws -> URL {
        let result = cache.withLock { c -> Result<URL, BuildError> in
            if let r = c[name] { return r }
            let r = compile(name)
            c[name] = r
            return r
        }
        return try result.get()
    }

    public static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: objectPath(name)))
    }

    public static var allSources: [String] {
        let items = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return items.filter { $0.hasSuffix(".bpf.c") }.map { String($0.dropLast(6)) }.sorted()
    }

    private static func compile(_ name: String) -> Result<URL, BuildError> {
        let src = directory.appendingPathComponent("\(name).bpf.c")
        let out = outputDirectory.appendingPathComponent("\(name).o")
        let arch = "/usr/include/\(hostMultiarch)"
        // -fdebug-prefix-map: the objects are byte-identical wherever the repository is checked
        // out, so a seeded mutation test explores the same inputs here and in CI.
        let args = ["-target", "bpf", "-O2", "-g", "-c", src.path, "-o", out.path,
                    "-I", directory.path, "-I", arch, "-fdebug-prefix-map=\(directory.path)=Tests/Fixtures"]
        switch run(clang, args) {
        case .success: return .success(out)
        case .failure(let e): return .failure(BuildError(description: "compiling \(name).bpf.c: \(e.description)"))
        }
    }

    static var hostMultiarch: String {
        #if arch(x86_64)
        return "x86_64-linux-gnu"
        #elseif arch(arm64)
        return "aarch64-linux-gnu"
        #else
        return "x86_64-linux-gnu"
        #endif
    }

    /// Runs a tool; failure carries its stderr.
    public static func run(_ tool: String, _ args: [String]) -> Result<String, BuildError> {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool.hasPrefix("/") ? tool : "/usr/bin/env")
        p.arguments = tool.hasPrefix("/") ? args : [tool] + args
        let outPipe = Pipe(), errPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = errPipe
        do { try p.run() } catch { return .failure(BuildError(description: "cannot run \(tool): \(error)")) }
        let out = outPipe.fileHandleForReading.readDataToEndOfFile()
        let err = errPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            return .failure(BuildError(description: "\(tool) exited \(p.terminationStatus): \(String(decoding: err, as: UTF8.self))"))
        }
        return .success(String(decoding: out, as: UTF8.self))
    }
}

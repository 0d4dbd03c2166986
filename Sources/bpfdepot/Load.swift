import ArgumentParser
import BPFKernel
import BPFObject
import Foundation

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load an object into the kernel, run programs, print live values, then unload.",
        discussion: """
            Example: bpfdepot load arena.o --set arena_counter=41 --run arena_run --show arena_counter
            Values are JSON as decoded through BTF: numbers, true/false, "strings" for char arrays
            and enum names, [arrays], {"member": value} for structs.
            """)

    @Argument(help: "A BPF ELF object.")
    var file: String

    @Option(name: .customLong("set"), help: "VAR=JSON: patch a variable's initial value before load (repeatable).")
    var assignments: [String] = []

    @Option(name: .customLong("run"), help: "Run a program with BPF_PROG_TEST_RUN after load (repeatable, in order).")
    var programs: [String] = []

    @Option(name: .customLong("show"), help: "Print a variable's live value after the runs (repeatable; default: all).")
    var shown: [String] = []

    @Option(help: "Bytes of (zeroed) packet data for programs that need it (e.g. 64 for socket/xdp/tc).")
    var dataSize: Int = 0

    @Option(help: "Pin the whole load under this bpffs directory (and leave it pinned).")
    var pinDirectory: String?

    func run() throws {
        var spec = try ObjectSpec(elf: readFileBytes(file), name: ObjectSpec.objectName(forPath: file))
        for a in assignments {
            guard let eq = a.firstIndex(of: "=") else { throw CLIError(description: "--set wants VAR=JSON, got '\(a)'") }
            let name = String(a[..<eq]), text = String(a[a.index(after: eq)...])
            let value: JSONValue
            do { value = try JSONValue(parsing: text) } catch {
                // Bare words are strings (enum names, char arrays) for convenience on a shell.
                value = .string(text)
            }
            try spec.patch(variable: name, with: value)
        }
        var options = LoadOptions()
        options.pinDirectory = pinDirectory
        let started = Date()
        let obj = try Loader.load(spec, options: options)
        let elapsed = Date().timeIntervalSince(started)
        defer { if pinDirectory == nil { obj.unload() } }
        print("loaded \(spec.name) in \(String(format: "%.1f", elapsed * 1000)) ms: "
              + "\(obj.maps.count) maps, \(obj.programs.count) programs"
              + (obj.arenaAddress.map { ", arena at 0x\(String($0, radix: 16))" } ?? ""))
        for p in programs {
            let r = try obj.run(program: p, data: [UInt8](repeating: 0, count: dataSize))
            print("run \(p): retval \(Int32(bitPattern: r.returnValue)) (\(r.returnValue)), \(r.duration) ns")
        }
        let names = shown.isEmpty ? spec.variables.filter { !$0.isStatic }.map(\.name) : shown
        for n in names {
            guard let v = spec.variable(named: n) else { throw CLIError(description: "no variable named '\(n)'") }
            let bytes = try obj.read(variable: n)
            let text: String
            if let btf = spec.btf, let value = try? BTFValueDecoder(btf: btf).decode(v.btfTypeID, bytes[...]) {
                text = value.text
            } else {
                text = bytes.map { String(format: "%02x", $0) }.joined()
            }
            print("  \(v.section)  \(v.typeName) \(n) = \(text)")
        }
    }
}

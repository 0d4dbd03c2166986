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
            With --attach PROG[:key=value,...] the programs stay attached to their hooks (the
            SEC() name says which; keys give the place: interface, mode, direction, cgroup,
            binary, function, offset, pid, map, replace) and the --show values are printed every
            second until Ctrl-C; then everything is detached and unloaded.
            Example: bpfdepot load counters.o --attach count_getpid --show getpid_hits
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

    @Option(name: .customLong("attach"), help: "PROG[:key=value,...]: attach a program to its hook and keep it attached until Ctrl-C (repeatable).")
    var attachments: [String] = []

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
        guard !attachments.isEmpty else {
            try show(names, of: obj, spec: spec)
            return
        }
        // SIGINT/SIGTERM are blocked and waited for, one second at a time, between prints.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        sigprocmask(SIG_BLOCK, &signals, nil)
        var links: [AttachedLink] = []
        defer { for l in links { l.detach() } }
        for a in attachments {
            let (program, target) = try Self.attachment(a)
            let link = try obj.attach(program: program, target: target)
            links.append(link)
            print("attached \(program): \(link.kind.rawValue) \(link.target) (link id \(link.id))")
            for note in link.notes { print("  note: \(note)") }
        }
        print("attached; printing every second until Ctrl-C")
        while true {
            try show(names, of: obj, spec: spec)
            // Written now, not when a pipe's buffer fills: whoever reads this follows it live.
            fflush(nil)
            var timeout = timespec(tv_sec: 1, tv_nsec: 0)
            let got = sigtimedwait(&signals, nil, &timeout)
            if got == SIGINT || got == SIGTERM { break }
        }
        print("detaching \(links.count) links and unloading")
    }

    private func show(_ names: [String], of obj: LoadedObject, spec: ObjectSpec) throws {
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

    /// `PROG[:key=value,...]` → the program and where to attach it.
    static func attachment(_ text: String) throws(CLIError) -> (String, AttachTarget) {
        let parts = text.split(separator: ":", maxSplits: 1)
        guard let first = parts.first, !first.isEmpty else { throw CLIError(description: "--attach wants PROG[:key=value,...], got '\(text)'") }
        var target = AttachTarget()
        guard parts.count == 2 else { return (String(first), target) }
        for pair in parts[1].split(separator: ",") {
            guard let eq = pair.firstIndex(of: "=") else { throw CLIError(description: "--attach: expected key=value, got '\(pair)'") }
            let key = String(pair[..<eq]), value = String(pair[pair.index(after: eq)...])
            switch key {
            case "interface": target.interface = value
            case "mode":
                guard let m = XDPMode(rawValue: value) else { throw CLIError(description: "--attach: mode is generic or native, got '\(value)'") }
                target.xdpMode = m
            case "direction":
                guard let d = TCXDirection(rawValue: value) else { throw CLIError(description: "--attach: direction is ingress or egress, got '\(value)'") }
                target.direction = d
            case "cgroup": target.cgroup = value
            case "binary": target.binary = value
            case "function": target.function = value
            case "map": target.map = value
            case "offset":
                guard let n = UInt64(value) else { throw CLIError(description: "--attach: offset wants a number, got '\(value)'") }
                target.offset = n
            case "pid":
                guard let n = Int32(value), n > 0 else { throw CLIError(description: "--attach: pid wants a positive number, got '\(value)'") }
                target.pid = n
            case "replace": target.replace = value == "true"
            default:
                throw CLIError(description: "--attach: unknown key '\(key)'; expected interface, mode, direction, cgroup, binary, function, offset, pid, map, replace")
            }
        }
        return (String(first), target)
    }
}

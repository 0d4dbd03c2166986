import ArgumentParser
import BPFObject
import Foundation

@main
struct BPFDepot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bpfdepot",
        abstract: "Manage BPF objects: parse, store, patch, load.",
        subcommands: [Serve.self, Migrate.self, Inspect.self, Load.self, Features.self, Sign.self, Token.self])
}

/// Errors the command line reports without a stack trace.
struct CLIError: Error, CustomStringConvertible {
    let description: String
}

func readFileBytes(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CLIError(description: "cannot read '\(path)'")
    }
    return [UInt8](data)
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what a BPF ELF object holds: maps, programs, variables (with initial values), externs.")

    @Argument(help: "A BPF ELF object (clang -target bpf output).")
    var file: String

    @Flag(help: "Print the summary as JSON.")
    var json = false

    func run() throws {
        let bytes = try readFileBytes(file)
        let spec: ObjectSpec
        do {
            spec = try ObjectSpec(elf: bytes, name: ObjectSpec.objectName(forPath: file))
        } catch {
            throw CLIError(description: "\(file): \(error)")
        }
        print(json ? spec.summaryJSON.prettyText : spec.summaryText, terminator: json ? "\n" : "")
    }
}

import Foundation
import Testing

@testable import BPFKernel

/// `Kallsyms.lookup` on crafted /proc/kallsyms text: what libbpf's `libbpf_kallsyms_parse` +
/// `kallsyms_cb` would give each `__ksym` variable name. Pure; runs anywhere.
@Suite("kallsyms: /proc/kallsyms read as libbpf reads it for __ksym variables")
struct KallsymsParserTests {
    static func lookup(_ names: Set<String>, _ text: String) throws(KallsymsError) -> [String: KallsymsSymbol] {
        try Kallsyms.lookup(names, in: Array(text.utf8))
    }

    static func address(_ names: Set<String>, _ text: String) throws -> [String: UInt64] {
        try lookup(names, text).mapValues(\.address)
    }

    @Test("every type letter counts, per-CPU 'A' symbols at address 0 included")
    func everyTypeLetter() throws {
        let letters = Array("AaTtDdBbRrWwVvNnUuGgSsIi?")
        var text = "0000000000000000 A __per_cpu_start\n"
        for (i, c) in letters.enumerated() {
            text += "\(String(0xffff_ffff_8000_0000 + UInt64(0x100000 + i * 0x10), radix: 16)) \(c) sym_\(i)\n"
        }
        let names = Set(["__per_cpu_start"] + letters.indices.map { "sym_\($0)" })
        let found = try Self.lookup(names, text)
        #expect(found.count == names.count)
        #expect(found["__per_cpu_start"] == KallsymsSymbol(address: 0, type: UInt8(ascii: "A"), name: "__per_cpu_start", module: nil, line: 1))
        for (i, c) in letters.enumerated() {
            let s = try #require(found["sym_\(i)"], "type \(c)")
            #expect(s.address == 0xffff_ffff_8000_0000 + UInt64(0x100000 + i * 0x10))
            #expect(Character(Unicode.Scalar(s.type)) == c)
            #expect(s.line == i + 2)
        }
    }

    /// What Debian 6.12 (CONFIG_KALLSYMS_ALL) prints for per-CPU symbols, and what every line
    /// shows where kptr_restrict hides addresses: address 0 is an address like any other.
    @Test("address 0 resolves; only a missing name is missing")
    func addressZero() throws {
        let text = """
            0000000000000000 A fixed_percpu_data
            0000000000000000 A __per_cpu_start
            000000000001d000 A runqueues
            ffffffff81000000 T _stext
            """
        #expect(try Self.address(["__per_cpu_start", "runqueues", "absent"], text) == ["__per_cpu_start": 0, "runqueues": 0x1d000])
    }

    @Test("a [module] tail is ignored for matching; module symbols count like the core kernel's")
    func moduleTails() throws {
        let text = """
            ffffffff81a00000 T core_fn
            ffffffffc0a01000 t mod_fn\t[nf_tables]
            ffffffffc0a05000 d mod_data\t[nf_tables]
            ffffffffc0ff0000 t bpf_prog_6deef7357e7b4530_ksym_run\t[bpf]
            """
        let found = try Self.lookup(["core_fn", "mod_fn", "mod_data", "bpf_prog_6deef7357e7b4530_ksym_run"], text)
        #expect(found["core_fn"]?.module == nil)
        #expect(found["mod_fn"] == KallsymsSymbol(address: 0xffff_ffff_c0a0_1000, type: UInt8(ascii: "t"), name: "mod_fn", module: "nf_tables", line: 2))
        #expect(found["mod_data"]?.address == 0xffff_ffff_c0a0_5000)
        #expect(found["bpf_prog_6deef7357e7b4530_ksym_run"]?.module == "bpf")
        // The module's name is not part of the symbol's.
        #expect(try Self.lookup(["nf_tables", "[nf_tables]"], text).isEmpty)
    }

    @Test("the same name at the same address again is fine (the first line is kept)")
    func duplicatesAtOneAddress() throws {
        let text = """
            ffffffff82000000 d dup
            ffffffff82000000 D dup
            ffffffff82000000 d dup\t[somemod]
            """
        #expect(try Self.lookup(["dup"], text)["dup"]?.line == 1)
    }

    @Test("the same name at two addresses is ambiguous, module or not, whatever the types")
    func conflictingAddresses() throws {
        let text = """
            ffffffff81000000 T other
            ffffffff82000000 d twice
            ffffffff81000010 T other
            ffffffffc0002000 d twice\t[kmod]
            """
        // Only names asked for are checked: `other` conflicts too, but nobody wants it.
        #expect(throws: KallsymsError.ambiguous(
            name: "twice",
            KallsymsSymbol(address: 0xffff_ffff_8200_0000, type: UInt8(ascii: "d"), name: "twice", module: nil, line: 2),
            KallsymsSymbol(address: 0xffff_ffff_c000_2000, type: UInt8(ascii: "d"), name: "twice", module: "kmod", line: 4))) {
            try Self.lookup(["twice"], text)
        }
        #expect(try Self.address(["absent"], text).isEmpty)
        let message = "\(KallsymsError.ambiguous(name: "twice", KallsymsSymbol(address: 0x10, type: UInt8(ascii: "d"), name: "twice", module: nil, line: 2), KallsymsSymbol(address: 0x20, type: UInt8(ascii: "d"), name: "twice", module: "kmod", line: 4)))"
        #expect(message == "'twice' is ambiguous in /proc/kallsyms: 0x10 (d twice, line 2) or 0x20 (d twice [kmod], line 4)")
    }

    /// clang LTO promotes a static variable to a global named `name.llvm.<hash>`; libbpf compares
    /// only a `d` entry's name up to its first `.llvm.`, and no other type's.
    @Test("'.llvm.<hash>' is stripped from 'd' entries only")
    func llvmSuffix() throws {
        let text = """
            ffffffff83000000 d counter.llvm.8174362916398162910
            ffffffff83000100 D exported.llvm.123
            ffffffff81000200 t helper.llvm.77
            ffffffff83000300 b zeroed.llvm.5
            ffffffff83000400 d twice.llvm.1.llvm.2
            ffffffff83000500 d .llvm.6
            """
        let found = try Self.lookup(["counter", "exported", "helper", "zeroed", "twice", "twice.llvm.1"], text)
        #expect(found.mapValues(\.address) == ["counter": 0xffff_ffff_8300_0000, "twice": 0xffff_ffff_8300_0400])
        #expect(found["counter"]?.name == "counter.llvm.8174362916398162910")
        // Other types match their whole printed name only.
        #expect(try Self.address(["exported.llvm.123", "helper.llvm.77"], text).count == 2)
    }

    @Test("two '.llvm.' copies of one static at different addresses are ambiguous")
    func llvmCopiesConflict() throws {
        let text = """
            ffffffff83000000 d state.llvm.111
            ffffffff83000800 d state.llvm.222
            """
        #expect(throws: KallsymsError.self) { try Self.lookup(["state"], text) }
        #expect(try Self.address(["state"], "ffffffff83000000 d state.llvm.111\nffffffff83000000 d state.llvm.222\n") == ["state": 0xffff_ffff_8300_0000])
    }

    @Test("names are cut to 499 bytes, as libbpf's %499s reads them")
    func longNames() throws {
        let long = String(repeating: "x", count: 600)
        let text = "ffffffff81000000 t \(long)\n"
        let cut = String(long.prefix(499))
        #expect(try Self.lookup([cut], text)[cut]?.address == 0xffff_ffff_8100_0000)
        #expect(try Self.lookup([long], text).isEmpty)
    }

    @Test("address forms %llx takes: leading zeros, short, 0x; blank lines and tabs between fields")
    func addressForms() throws {
        let text = "\n00000000000000000000000000ffff t a\n  ffff\tT\tb\n0xABCDEF d c\r\n\n"
        #expect(try Self.address(["a", "b", "c"], text) == ["a": 0xffff, "b": 0xffff, "c": 0xabcdef])
    }

    @Test("a line that does not scan as 'ADDRESS TYPE NAME' fails the read, with its line number")
    func malformedLines() throws {
        for (text, line) in [
            ("ffffffff81000000 T ok\nnot-an-address T x\n", 2),
            ("ffffffff81000000 T ok\nffffffff81000000\n", 2),
            ("ffffffff81000000 T\n", 1),
            ("ffffffff81000000 TT name\n", 1),
            ("1ffffffff81000000 T name\n", 1),   // 65 bits
        ] {
            #expect(throws: KallsymsError.malformedLine(line, String(text.split(separator: "\n", omittingEmptySubsequences: false)[line - 1]))) {
                try Self.lookup(["ok"], text)
            }
        }
    }

    /// This machine's own file, if it can be read: every line scans, and what `Kallsyms.running`
    /// gives (cached or not) agrees with a plain reading of the file.
    @Test("the running kernel's /proc/kallsyms scans, and the cached view agrees with it",
          .enabled(if: FileManager.default.isReadableFile(atPath: "/proc/kallsyms"), "/proc/kallsyms is not readable here"))
    func runningKernel() throws {
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/kallsyms"))
        let text = String(decoding: try #require(try handle.readToEnd()), as: UTF8.self)
        try handle.close()
        // An independent reading: every address of every core-kernel name.
        var addresses: [String: Set<UInt64>] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count == 3, !f[2].contains(".llvm."), let a = UInt64(f[0], radix: 16) else { continue }
            addresses[String(f[2]), default: []].insert(a)
        }
        let names = Set(addresses.filter { $0.value.count == 1 }.keys.sorted().prefix(50))
        #expect(names.count == 50)
        let all = try Kallsyms.lookup(names, in: Array(text.utf8))
        for name in names { #expect(all[name].map { [$0.address] } == addresses[name], "\(name)") }
        #expect(try Kallsyms.running(names) == all)
        #expect(try Kallsyms.running(names) == all)   // from the cache
    }
}

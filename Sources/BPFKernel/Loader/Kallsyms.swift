import Glibc
import Synchronization

/// One `/proc/kallsyms` entry that an extern matched.
struct KallsymsSymbol: Sendable, Equatable, CustomStringConvertible {
    var address: UInt64
    /// The type letter as printed (`T`, `t`, `D`, `d`, `A`, ...).
    var type: UInt8
    /// The name as printed (with any `.llvm.<hash>` suffix), cut to `Kallsyms.maxNameLength`.
    var name: String
    /// `mod` for a line ending in `[mod]`; nil for the core kernel.
    var module: String?
    /// 1-based line number.
    var line: Int

    var description: String {
        let place = module.map { " [\($0)]" } ?? ""
        return "0x\(String(address, radix: 16)) (\(Character(Unicode.Scalar(type))) \(name)\(place), line \(line))"
    }
}

enum KallsymsError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(errno: Int32)
    /// A line that is not `ADDRESS TYPE NAME[ [module]]`.
    case malformedLine(Int, String)
    /// Two lines give one name different addresses.
    case ambiguous(name: String, KallsymsSymbol, KallsymsSymbol)

    var description: String {
        switch self {
        case .unreadable(let e): "cannot read /proc/kallsyms: \(String(cString: strerror(e)))"
        case .malformedLine(let n, let text): "/proc/kallsyms line \(n) is not 'ADDRESS TYPE NAME': '\(text)'"
        case .ambiguous(let name, let a, let b): "'\(name)' is ambiguous in /proc/kallsyms: \(a) or \(b)"
        }
    }
}

/// `/proc/kallsyms` as libbpf reads it for `__ksym` variables (`libbpf_kallsyms_parse` with
/// `kallsyms_cb`):
/// - every entry counts, whatever its type letter (`A` per-CPU symbols, `T`/`t` text, `D`/`d`
///   data, `B`/`b`, `R`/`r`, `W`/`V`, ...) and whatever its address, 0 included (per-CPU
///   symbols such as `__per_cpu_start` sit at 0 on x86-64; every address is 0 where
///   `kptr_restrict` hides them);
/// - a name matches only whole, except that a `d` entry's name is compared up to its first
///   `.llvm.` (clang LTO renames promoted static variables `name.llvm.<hash>`);
/// - a `[module]` tail is ignored: module symbols match like the core kernel's;
/// - the same name at two different addresses is an error (libbpf: "resolution is
///   ambiguous"), at the same address it is not;
/// - names are cut to 499 bytes (`%499s`), and a line that does not scan is an error.
enum Kallsyms {
    static let path = "/proc/kallsyms"
    static let maxNameLength = 499

    /// What each of `names` resolves to in `text`; a name without an entry is absent.
    static func lookup(_ names: Set<String>, in text: [UInt8]) throws(KallsymsError) -> [String: KallsymsSymbol] {
        // Wanted names by length: a line's name is compared only with names of its length.
        let wanted = names.map { Array($0.utf8) }.filter { $0.count <= maxNameLength }
        var byLength = [[Int]](repeating: [], count: maxNameLength + 1)
        for (i, w) in wanted.enumerated() { byLength[w.count].append(i) }
        var found = [KallsymsSymbol?](repeating: nil, count: wanted.count)
        let llvm = Array(".llvm.".utf8)

        let result: Result<Void, KallsymsError> = text.withUnsafeBufferPointer { b in
            let n = b.count
            func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0d) }
            var i = 0, lineNumber = 0
            while i < n {
                lineNumber += 1
                let start = i
                while i < n && b[i] != 0x0a { i += 1 }
                let end = i
                i += 1
                func malformed() -> Result<Void, KallsymsError> {
                    .failure(.malformedLine(lineNumber, String(decoding: b[start..<end], as: UTF8.self)))
                }

                var p = start
                while p < end && isSpace(b[p]) { p += 1 }
                if p == end { continue }  // fscanf skips blank lines as whitespace
                // Address: hex digits, optionally after 0x (what %llx takes), at most 64 bits.
                if end - p > 2 && b[p] == 0x30 && (b[p + 1] | 0x20) == 0x78 { p += 2 }
                var address: UInt64 = 0
                let digitsStart = p
                while p < end, let d = hexValue(b[p]) {
                    guard address >> 60 == 0 else { return malformed() }
                    address = address << 4 | UInt64(d)
                    p += 1
                }
                guard p > digitsStart, p < end, isSpace(b[p]) else { return malformed() }
                while p < end && isSpace(b[p]) { p += 1 }
                guard p < end else { return malformed() }
                let type = b[p]
                p += 1
                guard p < end, isSpace(b[p]) else { return malformed() }
                while p < end && isSpace(b[p]) { p += 1 }
                let nameStart = p
                while p < end && !isSpace(b[p]) { p += 1 }
                guard p > nameStart else { return malformed() }
                let nameEnd = min(p, nameStart + maxNameLength)

                // The part compared with extern names.
                var keyEnd = nameEnd
                if type == UInt8(ascii: "d"), nameEnd - nameStart >= llvm.count {
                    var q = nameStart
                    while q + llvm.count <= nameEnd {
                        if b[q] == llvm[0] && (1..<llvm.count).allSatisfy({ b[q + $0] == llvm[$0] }) { keyEnd = q; break }
                        q += 1
                    }
                }
                let keyLength = keyEnd - nameStart
                for w in byLength[keyLength] {
                    let name = wanted[w]
                    guard (0..<keyLength).allSatisfy({ b[nameStart + $0] == name[$0] }) else { continue }
                    // The `[module]` tail, for messages and for what the cache may keep.
                    var module: String?
                    var t = p
                    while t < end && isSpace(b[t]) { t += 1 }
                    if t < end, b[t] == UInt8(ascii: "["), let close = (t..<end).last(where: { b[$0] == UInt8(ascii: "]") }) {
                        module = String(decoding: b[(t + 1)..<close], as: UTF8.self)
                    }
                    let symbol = KallsymsSymbol(address: address, type: type,
                                                name: String(decoding: b[nameStart..<nameEnd], as: UTF8.self),
                                                module: module, line: lineNumber)
                    if let first = found[w] {
                        if first.address != address {
                            return .failure(.ambiguous(name: String(decoding: name, as: UTF8.self), first, symbol))
                        }
                    } else {
                        found[w] = symbol
                    }
                }
            }
            return .success(())
        }
        try result.get()
        var out: [String: KallsymsSymbol] = [:]
        for (w, s) in zip(wanted, found) { if let s { out[String(decoding: w, as: UTF8.self)] = s } }
        return out
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }

    // MARK: the running kernel's

    /// What the running kernel's /proc/kallsyms says of `names`, read again only when it can
    /// have changed. libbpf reads the file on every load (tens of milliseconds for the kernel
    /// to produce); the core kernel's entries never change once booted and a module's only when
    /// it is loaded or unloaded, so results are kept while /proc/modules lists the same modules
    /// at the same addresses. Kept too: names not found, for a minute. Not kept: entries of
    /// BPF programs and trampolines (`[bpf]`, `[__builtin__ftrace]`, ...), which come and go
    /// without a module changing.
    static func running(_ names: Set<String>) throws(KallsymsError) -> [String: KallsymsSymbol] {
        let modules = moduleList()
        let now = monotonicSeconds()
        let cached = cache.withLock { c -> [String: KallsymsSymbol]? in
            guard let c, c.modules == modules else { return nil }
            var out: [String: KallsymsSymbol] = [:]
            for name in names {
                if let s = c.found[name] {
                    out[name] = s
                } else if let at = c.missing[name], now - at < 60 {
                    continue
                } else {
                    return nil
                }
            }
            return out
        }
        if let cached { return cached }

        guard let text = readWholeFile(path) else { throw .unreadable(errno: errno) }
        let found = try lookup(names, in: text)
        cache.withLock { c in
            if c == nil || c?.modules != modules { c = Snapshot(modules: modules) }
            for name in names {
                if let s = found[name] {
                    c?.missing[name] = nil
                    if !(s.module.map(isTransient) ?? false) { c?.found[name] = s }
                } else {
                    c?.missing[name] = now
                }
            }
        }
        return found
    }

    private struct Snapshot {
        var modules: [String]
        var found: [String: KallsymsSymbol] = [:]
        var missing: [String: UInt64] = [:]
    }

    private static let cache = Mutex<Snapshot?>(nil)

    /// `[bpf]` and `[__builtin__*]` tails mark JIT images, not modules.
    private static func isTransient(_ module: String) -> Bool {
        module == "bpf" || module.hasPrefix("__builtin__")
    }

    /// Each loaded module's name and load address from /proc/modules (its use counts change
    /// without its symbols changing, so they are left out). Empty without module support.
    private static func moduleList() -> [String] {
        guard let bytes = readWholeFile("/proc/modules") else { return [] }
        return bytes.split(separator: 0x0a).map { line in
            let fields = line.split(separator: 0x20)
            let name = fields.first.map { String(decoding: $0, as: UTF8.self) } ?? ""
            let address = fields.first { $0.starts(with: "0x".utf8) }.map { String(decoding: $0, as: UTF8.self) } ?? ""
            return name + " " + address
        }
    }

    static func monotonicSeconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec)
    }
}

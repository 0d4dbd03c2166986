// libFuzzer entry for typed JSON → BTF encoding (PATCH /objects/{id}/variables): a fixture object
// and one of its variables picked by the first two bytes, the rest parsed as JSON and written
// into the variable's initial image through BTF. Built by scripts/fuzz.sh against a
// BPFObject module built with the same sanitizers, never by SwiftPM.
//
// Input layout: byte 0 → fixture (modulo their number), byte 1 → variable of that fixture
// (modulo), bytes 2… → JSON text.
//
// Fixtures: the compiled `*.o` files in $BPFDEPOT_FUZZ_FIXTURES that parse and have variables,
// in file-name order. With $BPFDEPOT_FUZZ_EMIT_SEEDS set to a directory, startup also writes one
// seed per (fixture, variable) holding the variable's decoded initial value, and with
// $BPFDEPOT_FUZZ_EMIT_DICT set to a file, a libFuzzer dictionary of member and enumerator names.
//
// Besides "no crash", a successful patch must satisfy what a client relies on:
//   1. only the variable's own bytes change;
//   2. the new value decodes;
//   3. writing back the decoded value, as JSON text (what GET returns and a client sends back),
//      succeeds and leaves the image byte-for-byte unchanged;
//   4. the value decoded after that is the same JSON value.
// A violation traps with a message, so libFuzzer saves the input.

import BPFObject

#if canImport(Glibc)
import Glibc
#endif

struct Fixture: Sendable {
    let file: String
    let spec: ObjectSpec
}

/// Loaded once, on first use (Swift globals are initialised lazily and thread-safely).
let fixtures: [Fixture] = loadFixtures()

@_cdecl("LLVMFuzzerInitialize")
public func encoderFuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    guard !fixtures.isEmpty else {
        printError("EncoderFuzz: no usable fixture objects; set BPFDEPOT_FUZZ_FIXTURES to a directory of compiled Tests/Fixtures/*.o")
        exit(2)
    }
    if let dir = environment("BPFDEPOT_FUZZ_EMIT_SEEDS") { emitSeeds(into: dir) }
    if let path = environment("BPFDEPOT_FUZZ_EMIT_DICT") { emitDictionary(to: path) }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func encoderFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 2 else { return 0 }
    let fixture = fixtures[Int(data[0]) % fixtures.count]
    let variable = fixture.spec.variables[Int(data[1]) % fixture.spec.variables.count]
    let text = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))
    guard let value = try? JSONValue(parsing: text) else { return 0 }

    var patched = fixture.spec
    do {
        try patched.patch(variable: variable.name, with: value)
    } catch {
        consume(error.description)  // the message a client gets; building it must not trap either
        return 0
    }
    checkRoundTrip(fixture, variable, value, patched)
    return 0
}

/// The properties listed at the top of this file.
func checkRoundTrip(_ fixture: Fixture, _ variable: VariableSpec, _ value: JSONValue, _ patched: ObjectSpec) {
    func fail(_ what: String) -> Never {
        fatalError("\(fixture.file) variable \(variable.name) (\(variable.typeName)) patched with \(value.text): \(what)")
    }
    for (before, after) in zip(fixture.spec.dataSections, patched.dataSections) where before.image != after.image {
        guard before.name == variable.section, before.image.count == after.image.count else {
            fail("section \(before.name) changed")
        }
        let start = Int(variable.offset), end = start + Int(variable.size)
        for i in before.image.indices where (i < start || i >= end) && before.image[i] != after.image[i] {
            fail("byte \(i) of \(before.name), outside the variable (\(start)..<\(end)), changed")
        }
    }
    let decoded: JSONValue
    do { decoded = try patched.initialValue(of: variable) } catch { fail("the new value does not decode: \(error)") }
    let shown = decoded.text
    let reparsed: JSONValue
    do { reparsed = try JSONValue(parsing: shown) } catch { fail("decoded value \(shown) is not JSON: \(error)") }
    var again = patched
    do { try again.patch(variable: variable.name, with: reparsed) } catch {
        fail("writing back the decoded value \(shown) fails: \(error)")
    }
    let image = patched.dataSection(named: variable.section)?.image ?? []
    let imageAgain = again.dataSection(named: variable.section)?.image ?? []
    guard image == imageAgain else {
        let start = Int(variable.offset), end = start + Int(variable.size)
        fail("writing back the decoded value \(shown) changes the bytes: \(hex(image[start..<end])) -> \(hex(imageAgain[start..<end]))")
    }
    let decodedAgain: JSONValue
    do { decodedAgain = try again.initialValue(of: variable) } catch { fail("the written-back value does not decode: \(error)") }
    guard decodedAgain == decoded else { fail("decodes as \(shown), then as \(decodedAgain.text)") }
}

// MARK: - fixtures, seeds, dictionary

func printError(_ message: String) {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func environment(_ name: String) -> String? {
    guard let p = getenv(name), p.pointee != 0 else { return nil }
    return String(cString: p)
}

func loadFixtures() -> [Fixture] {
    guard let dir = environment("BPFDEPOT_FUZZ_FIXTURES"), let d = opendir(dir) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let entry = readdir(d) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name.hasSuffix(".o") { names.append(name) }
    }
    var out: [Fixture] = []
    for name in names.sorted() {
        guard let bytes = readFile("\(dir)/\(name)"),
              let spec = try? ObjectSpec(elf: bytes, name: String(name.prefix { $0 != "." })),
              !spec.variables.isEmpty else { continue }
        out.append(Fixture(file: name, spec: spec))
    }
    return out
}

func readFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n == 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return out
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    guard let f = fopen(path, "wb") else {
        printError("EncoderFuzz: cannot write \(path)")
        exit(2)
    }
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
}

/// One seed per (fixture, variable): its index bytes and its decoded initial value.
func emitSeeds(into dir: String) {
    for (i, fixture) in fixtures.enumerated() {
        for (j, v) in fixture.spec.variables.enumerated() where i < 256 && j < 256 {
            guard let value = try? fixture.spec.initialValue(of: v) else { continue }
            let stem = fixture.file.prefix { $0 != "." }
            writeFile("\(dir)/seed-\(stem)-\(v.name)", [UInt8(i), UInt8(j)] + Array(value.text.utf8))
        }
    }
}

/// Member and enumerator names as JSON strings, plus JSON's own tokens.
func emitDictionary(to path: String) {
    var words: Set<String> = ["null", "true", "false", "\"0x", "-", "[", "]", "{", "}", ",", ":", "1e3", "-0.0"]
    for fixture in fixtures {
        guard let btf = fixture.spec.btf else { continue }
        for t in btf.types {
            switch t.kind {
            case .structure(_, let ms, _), .union(_, let ms, _):
                for m in ms { words.insert(btf.string(at: m.nameOffset)) }
            case .enumeration(_, _, let vs), .enum64(_, _, let vs):
                for v in vs { words.insert(btf.string(at: v.nameOffset)) }
            default: break
            }
        }
    }
    words.remove("")
    var text = ""
    for w in words.sorted() {
        // JSON keys and enumerator names appear quoted; punctuation and literals appear bare.
        let token = w.first.map { $0.isLetter || $0 == "_" } == true && !["null", "true", "false"].contains(w) ? "\"\(w)\"" : w
        text += "\""
        for u in token.unicodeScalars {
            if u == "\"" || u == "\\" { text += "\\" }
            text.unicodeScalars.append(u)
        }
        text += "\"\n"
    }
    writeFile(path, Array(text.utf8))
}

func hex(_ bytes: ArraySlice<UInt8>) -> String {
    let digits = Array("0123456789abcdef")
    return bytes.map { "\(digits[Int($0 >> 4)])\(digits[Int($0 & 0xf)])" }.joined(separator: " ")
}

/// Keeps a result alive so the optimizer cannot drop the work that produced it.
@inline(never)
func consume<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

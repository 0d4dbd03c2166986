import BPFObject
import BPFTestSupport
import Foundation
import Testing

/// `JSONValue(parsing:)`: strict RFC 8259, exact integers, errors with offsets, and no trap on
/// any input (it parses HTTP bodies).
@Suite struct JSONParserTests {
    static func parse(_ text: String, maxDepth: Int = JSONValue.defaultMaxDepth) -> Result<JSONValue, JSONParseError> {
        parse(Array(text.utf8), maxDepth: maxDepth)
    }

    static func parse(_ bytes: [UInt8], maxDepth: Int = JSONValue.defaultMaxDepth) -> Result<JSONValue, JSONParseError> {
        do { return .success(try JSONValue(parsing: bytes, maxDepth: maxDepth)) } catch { return .failure(error) }
    }

    /// The case and payload, since `==` deliberately equates `.int(1)` and `.uint(1)`.
    static func exact(_ v: JSONValue) -> String {
        switch v {
        case .int(let x): return "int(\(x))"
        case .uint(let x): return "uint(\(x))"
        case .double(let d): return "double(\(d))"
        default: return v.text
        }
    }

    @Test func parsesEveryKindKeepingMemberOrder() throws {
        let v = try JSONValue(parsing: #" { "zeta" : [true, false, null, {}, []], "alpha": "x\u00e9", "mid": -1.5e1 } "#)
        guard case .object(let members) = v else { Issue.record("not an object"); return }
        #expect(members.map(\.0) == ["zeta", "alpha", "mid"])
        #expect(v["zeta"] == .array([.bool(true), .bool(false), .null, .object([]), .array([])]))
        #expect(v["alpha"] == .string("xé"))
        #expect(Self.exact(try #require(v["mid"])) == "double(-15.0)")
        #expect(v.text == #"{"zeta":[true,false,null,{},[]],"alpha":"xé","mid":-15}"#)
    }

    @Test func scalarsAtTopLevelAndWhitespace() throws {
        #expect(try JSONValue(parsing: " \t\r\n42\n ") == .int(42))
        #expect(try JSONValue(parsing: #""""#) == .string(""))
        #expect(try JSONValue(parsing: "null") == .null)
        #expect(try JSONValue(parsing: "false") == .bool(false))
    }

    @Test(arguments: [
        ("0", "int(0)"),
        ("-0", "int(0)"),
        ("9223372036854775807", "int(9223372036854775807)"),
        ("9223372036854775808", "uint(9223372036854775808)"),
        ("18446744073709551615", "uint(18446744073709551615)"),
        ("18446744073709551616", "double(1.8446744073709552e+19)"),
        ("-9223372036854775808", "int(-9223372036854775808)"),
        ("-9223372036854775809", "double(-9.223372036854776e+18)"),
        ("1.0", "double(1.0)"),
        ("1e2", "double(100.0)"),
        ("1E+2", "double(100.0)"),
        ("0.1", "double(0.1)"),
        ("-0.0", "double(-0.0)"),
        ("2.5e-3", "double(0.0025)"),
        ("1e-400", "double(0.0)"),
        ("123456789012345678901234567890", "double(1.2345678901234568e+29)"),
    ])
    func numbersKeepIntegersExact(text: String, expected: String) throws {
        #expect(Self.exact(try JSONValue(parsing: text)) == expected)
    }

    @Test func stringEscapes() throws {
        let v = try JSONValue(parsing: #""\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\ud83d\ude00\u0000""#)
        #expect(v == .string("\"\\/\u{8}\u{C}\n\r\tAé€😀\u{0}"))
        // Raw multi-byte UTF-8 passes through untouched.
        #expect(try JSONValue(parsing: "\"ä€😀\"") == .string("ä€😀"))
    }

    /// The writer's exact text: what clients and ETags see (it writes bytes, not a String).
    @Test func writesCompactAndPrettyText() {
        let v = JSONValue.object([
            ("s", .string("q\"b\\n\n\r\t\u{1}\u{1F}é€😀")),
            ("i", .int(Int64.min)), ("u", .uint(UInt64.max)), ("z", .int(0)), ("n", .int(-7)),
            ("d", .double(1.5)), ("di", .double(-3)), ("nan", .double(.nan)),
            ("a", .array([.null, .bool(true), .bool(false), .array([]), .object([])])),
            ("", .string("")),
        ])
        let compact = #"{"s":"q\"b\\n\n\r\t\u0001\u001fé€😀","i":-9223372036854775808,"u":18446744073709551615,"z":0,"n":-7,"d":1.5,"di":-3,"nan":null,"a":[null,true,false,[],{}],"":""}"#
        #expect(v.text == compact)
        #expect(v.utf8 == Array(compact.utf8))
        var appended: [UInt8] = Array("x".utf8)
        v.append(to: &appended)
        #expect(appended == Array(("x" + compact).utf8))
        #expect(JSONValue.object([("a", .array([.int(1), .object([])])), ("b", .string("x"))]).prettyText
                == "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": \"x\"\n}")
        var quoted: [UInt8] = []
        JSONValue.appendString("tab\there", to: &quoted)
        JSONValue.appendRaw(",", to: &quoted)
        #expect(quoted == Array(#""tab\there","#.utf8))
    }

    /// (text, offset, expected, found)
    static let errorCases: [([UInt8], Int, String, String)] = [
        (Array("".utf8), 0, "a value", "end of input"),
        (Array("   ".utf8), 3, "a value", "end of input"),
        (Array("[1,]".utf8), 3, "a value", "']'"),
        (Array("[1,2".utf8), 4, "',' or ']'", "end of input"),
        (Array("[1 2]".utf8), 3, "',' or ']'", "'2'"),
        (Array(#"{"a":1,}"#.utf8), 7, "a string key", "'}'"),
        (Array(#"{"a":1 "b":2}"#.utf8), 7, "',' or '}'", "'\"'"),
        (Array(#"{"a" 1}"#.utf8), 5, "':'", "'1'"),
        (Array("{1:2}".utf8), 1, "a string key or '}'", "'1'"),
        (Array(#"{"a":1,"a":2}"#.utf8), 7, "a key not already in this object", "duplicate key \"a\""),
        (Array("01".utf8), 1, "'.', 'e' or the end of the number (no leading zeros)", "'1'"),
        (Array("-".utf8), 1, "a digit", "end of input"),
        (Array("-a".utf8), 1, "a digit", "'a'"),
        (Array("1.".utf8), 2, "a digit after '.'", "end of input"),
        (Array(".5".utf8), 0, "a value", "'.'"),
        (Array("1e+".utf8), 3, "a digit in the exponent", "end of input"),
        (Array("+1".utf8), 0, "a value", "'+'"),
        (Array("1e999".utf8), 0, "a number within the range of a double", "1e999"),
        (Array("-1e999".utf8), 0, "a number within the range of a double", "-1e999"),
        (Array("NaN".utf8), 0, "a value", "'N'"),
        (Array("Infinity".utf8), 0, "a value", "'I'"),
        (Array("tru".utf8), 3, "'true'", "end of input"),
        (Array("nul!".utf8), 3, "'null'", "'!'"),
        (Array("[1] x".utf8), 4, "end of input", "'x'"),
        (Array("'a'".utf8), 0, "a value", "'''"),
        (Array("/* c */ 1".utf8), 0, "a value", "'/'"),
        ([0x0B, 0x31], 0, "a value", "byte 0x0b"),
        ([0xEF, 0xBB, 0xBF, 0x31], 0, "a value", "a byte order mark"),
        (Array("\"abc".utf8), 4, "'\"' to close the string", "end of input"),
        (Array("\"a\tb\"".utf8), 2, "an escaped control character", "control character 0x09 in a string"),
        (Array("\"a\nb\"".utf8), 2, "an escaped control character", "control character 0x0a in a string"),
        (Array(#""\x""#.utf8), 2, "one of \" \\ / b f n r t u after '\\'", "'x'"),
        (Array(#""\u12G4""#.utf8), 5, "a hex digit", "'G'"),
        (Array(#""\ud800""#.utf8), 7, "a low surrogate escape (\\udc00-\\udfff)", "'\"'"),
        (Array(#""\ud800\u0041""#.utf8), 7, "a low surrogate escape (\\udc00-\\udfff)", "\\u41"),
        (Array(#""\udc00""#.utf8), 1, "a code point or a high surrogate escape", "lone low surrogate \\udc00"),
        ([0x22, 0xC0, 0x80, 0x22], 1, "valid UTF-8", "byte 0xc0"),               // overlong NUL
        ([0x22, 0xE0, 0x80, 0x80, 0x22], 2, "valid UTF-8", "byte 0x80"),         // overlong 3-byte
        ([0x22, 0xED, 0xA0, 0x80, 0x22], 2, "valid UTF-8", "byte 0xa0"),         // encoded surrogate
        ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 2, "valid UTF-8", "byte 0x90"),   // past U+10FFFF
        ([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], 1, "valid UTF-8", "byte 0xf5"),
        ([0x22, 0xC3, 0x22], 2, "valid UTF-8", "'\"'"),                           // truncated sequence
        ([0x22, 0xE2, 0x82], 3, "valid UTF-8", "end of input"),
        ([0x22, 0x80, 0x22], 1, "valid UTF-8", "byte 0x80"),                     // stray continuation
        ([0xC3, 0xA4], 0, "a value", "byte 0xc3"),
    ]

    @Test(arguments: errorCases)
    func errorsSayWhereWhatWasExpectedAndWhatWasFound(text: [UInt8], offset: Int, expected: String, found: String) {
        let r = Self.parse(text)
        guard case .failure(let e) = r else { Issue.record("accepted \(text)"); return }
        #expect(e == JSONParseError(offset: offset, expected: expected, found: found), "\(String(decoding: text, as: UTF8.self))")
    }

    @Test func errorDescription() {
        guard case .failure(let e) = Self.parse("[1,]") else { Issue.record("accepted"); return }
        #expect(e.description == "invalid json at byte 3: expected a value, found ']'")
    }

    @Test func nestingIsLimited() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try JSONValue(parsing: ok).text == ok)
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(Self.parse(deep).failureValue == JSONParseError(offset: 64, expected: "at most 64 levels of nesting", found: "'['"))
        let deepObject = String(repeating: #"{"a":"#, count: 65) + "1" + String(repeating: "}", count: 65)
        #expect(Self.parse(deepObject).failureValue?.expected == "at most 64 levels of nesting")
        // Hostile depth ends in an error, not a stack overflow.
        let hostile = [UInt8](repeating: 0x5B, count: 1_000_000)
        #expect(Self.parse(hostile).failureValue?.offset == 64)
        // The limit is the caller's, clamped to a safe maximum.
        #expect(Self.parse("[[1]]", maxDepth: 1).failureValue?.offset == 1)
        #expect(Self.parse("1", maxDepth: 0).successValue == .int(1))
        #expect(Self.parse("[]", maxDepth: 0).failureValue?.offset == 0)
        #expect(Self.parse(hostile, maxDepth: Int.max).failureValue?.offset == JSONValue.maxSupportedDepth)
    }

    @Test func largeInputsAreFine() throws {
        let many = "[" + (0..<50_000).map { String($0) }.joined(separator: ",") + "]"
        guard case .array(let items) = try JSONValue(parsing: many) else { Issue.record("not an array"); return }
        #expect(items.count == 50_000)
        #expect(items.last == .int(49_999))
        let long = String(repeating: "ab\\n", count: 100_000)
        #expect(try JSONValue(parsing: "\"\(long)\"") == .string(String(repeating: "ab\n", count: 100_000)))
        let digits = String(repeating: "9", count: 10_000)
        #expect(Self.exact(try JSONValue(parsing: "0.\(digits)")) == "double(1.0)")
        #expect(Self.parse(digits).failureValue?.expected == "a number within the range of a double")
    }

    @Test func decodedFixtureValuesReparse() throws {
        for fixture in ["globals", "arena"] {
            let spec = try ObjectSpec(elf: Fixtures.bytes(fixture), name: fixture)
            for v in spec.variables {
                let value = try spec.initialValue(of: v)
                #expect(try JSONValue(parsing: value.text) == value, "\(v.name)")
                #expect(try JSONValue(parsing: value.prettyText) == value, "\(v.name)")
            }
        }
    }

    // MARK: - randomized: mutated valid JSON never traps

    typealias Random = SplitMix64

    static let seeds: [String] = [
        #"{"data_point":{"x":-5,"y":17,"grid":[[1,2,3],[4,5,6]]},"data_str":"bpfdepot-data"}"#,
        #"[0,-0,1.5e-3,-9223372036854775808,18446744073709551615,1e308,true,false,null]"#,
        #"{"s":"\"\\\/\b\f\n\r\t\u0041\ud83d\ude00ä€","a":[[[[{}]]]],"e":{}}"#,
        #"  "just a string"  "#,
        "-12345.6789E+12",
        #"{"a":{"b":{"c":{"d":[1,{"e":[2,{"f":null}]}]}}}}"#,
    ]

    /// Bytes that steer the grammar, to make mutations interesting.
    static let alphabet: [UInt8] = Array("{}[]\":,\\/-+.eE0123456789tfnlrsuaxU \t\n".utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xC3, 0xE2, 0xED, 0xF0, 0xF4, 0xFF]

    static func mutate(_ input: [UInt8], _ rng: inout Random) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + rng.below(4)) {
            let pick: UInt8 = rng.below(3) == 0 ? UInt8(truncatingIfNeeded: rng.next()) : alphabet[rng.below(alphabet.count)]
            switch rng.below(7) {
            case 0 where !b.isEmpty: b[rng.below(b.count)] = pick
            case 1: b.insert(pick, at: rng.below(b.count + 1))
            case 2 where !b.isEmpty: b.remove(at: rng.below(b.count))
            case 3 where !b.isEmpty: b = Array(b.prefix(rng.below(b.count)))
            case 4 where !b.isEmpty:
                let from = rng.below(b.count), len = rng.below(min(16, b.count - from) + 1)
                b.insert(contentsOf: b[from..<(from + len)], at: rng.below(b.count + 1))
            case 5 where !b.isEmpty: b[rng.below(b.count)] ^= UInt8(1) << UInt8(rng.below(8))
            default: b.append(pick)
            }
        }
        return b
    }

    @Test func mutatedJSONNeverTraps() {
        let seed = ProcessInfo.processInfo.environment["BPFDEPOT_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x15_0A_5EED
        var rng = Random(state: seed)
        var accepted = 0, rejected = 0
        for round in 0..<30_000 {
            let base = Array(Self.seeds[round % Self.seeds.count].utf8)
            let input = round % 10 == 9
                ? (0..<rng.below(64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                : Self.mutate(base, &rng)
            switch Self.parse(input, maxDepth: 4 + rng.below(8)) {
            case .success(let v):
                accepted += 1
                // What was accepted re-renders to text that parses to the same rendering.
                let again = Self.parse(v.text, maxDepth: 64)
                #expect(again.successValue?.text == v.text, "seed \(seed) round \(round)")
            case .failure(let e):
                rejected += 1
                if e.offset < 0 || e.offset > input.count || e.expected.isEmpty || e.found.isEmpty {
                    Issue.record("bad error \(e) for \(input) (seed \(seed) round \(round))")
                }
            }
        }
        #expect(accepted > 100 && rejected > 1000, "accepted \(accepted) rejected \(rejected)")
    }
}

private extension Result {
    var successValue: Success? { if case .success(let v) = self { v } else { nil } }
    var failureValue: Failure? { if case .failure(let e) = self { e } else { nil } }
}

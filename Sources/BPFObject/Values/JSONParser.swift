/// Why JSON text was refused: where (byte offset into the text), what the grammar wanted there,
/// and what was there instead.
public struct JSONParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Byte offset into the text (0-based) at which the problem starts.
    public var offset: Int
    /// What the grammar allows at `offset`, e.g. `',' or ']'`, `a value`, `valid UTF-8`.
    public var expected: String
    /// What is at `offset`, e.g. `'}'`, `end of input`, `byte 0xff`, `duplicate key "x"`.
    public var found: String

    public init(offset: Int, expected: String, found: String) {
        self.offset = offset
        self.expected = expected
        self.found = found
    }

    public var description: String {
        "invalid json at byte \(offset): expected \(expected), found \(found)"
    }
}

extension JSONValue {
    /// Nesting (arrays and objects) allowed by default.
    public static let defaultMaxDepth = 64
    /// The largest `maxDepth` honoured; larger requests are clamped so recursion stays shallow.
    public static let maxSupportedDepth = 512

    /// Parses one JSON text (RFC 8259), strictly:
    ///
    /// - The whole input is one value (any kind, scalars included) with optional whitespace
    ///   (space, tab, LF, CR) around it; anything after it is an error. No byte order mark, no
    ///   comments, no trailing commas, no single quotes, no `NaN`/`Infinity`, no leading zeros.
    /// - Text must be valid UTF-8 (no overlong forms, no encoded surrogates, nothing past
    ///   U+10FFFF); control characters inside strings must be escaped; `\u` escapes must form
    ///   whole code points (a high surrogate followed by a low one; lone surrogates are errors).
    /// - Object members keep their order. **Duplicate keys are rejected** (keys compare as Swift
    ///   strings, i.e. by canonical equivalence): a body that means different things to different
    ///   parsers is refused rather than resolved.
    /// - Numbers without fraction or exponent that fit `Int64` become `.int`, larger ones that fit
    ///   `UInt64` become `.uint` (both exact, never through `Double`); every other number becomes
    ///   `.double` (correctly rounded). A number beyond the range of `Double` is an error.
    /// - Arrays and objects may nest `maxDepth` levels (default 64, clamped to 0...512);
    ///   deeper input is an error, so hostile input cannot exhaust the stack.
    ///
    /// There is no size limit of its own (the caller bounds the body); work is linear in the
    /// input. Any input ends in a value or a `JSONParseError`, never a trap.
    public init(parsing text: [UInt8], maxDepth: Int = JSONValue.defaultMaxDepth) throws(JSONParseError) {
        var parser = JSONTextParser(text, maxDepth: min(max(maxDepth, 0), JSONValue.maxSupportedDepth))
        self = try parser.document()
    }

    /// Parses the UTF-8 of `text`; see `init(parsing:maxDepth:)` for the rules.
    public init(parsing text: String, maxDepth: Int = JSONValue.defaultMaxDepth) throws(JSONParseError) {
        try self.init(parsing: Array(text.utf8), maxDepth: maxDepth)
    }
}

private enum ASCII {
    static let quote: UInt8 = 0x22, backslash: UInt8 = 0x5C, slash: UInt8 = 0x2F
    static let comma: UInt8 = 0x2C, colon: UInt8 = 0x3A, minus: UInt8 = 0x2D, plus: UInt8 = 0x2B
    static let dot: UInt8 = 0x2E, zero: UInt8 = 0x30, nine: UInt8 = 0x39
    static let openBracket: UInt8 = 0x5B, closeBracket: UInt8 = 0x5D
    static let openBrace: UInt8 = 0x7B, closeBrace: UInt8 = 0x7D
    static let lowerE: UInt8 = 0x65, upperE: UInt8 = 0x45
    static let t: UInt8 = 0x74, f: UInt8 = 0x66, n: UInt8 = 0x6E, b: UInt8 = 0x62, r: UInt8 = 0x72, u: UInt8 = 0x75
}

/// Recursive descent over the bytes; recursion depth is bounded by `maxDepth`.
private struct JSONTextParser {
    let b: [UInt8]
    let maxDepth: Int
    var i = 0

    init(_ bytes: [UInt8], maxDepth: Int) {
        b = bytes
        self.maxDepth = maxDepth
    }

    mutating func document() throws(JSONParseError) -> JSONValue {
        if b.count >= 3, b[0] == 0xEF, b[1] == 0xBB, b[2] == 0xBF {
            throw JSONParseError(offset: 0, expected: "a value", found: "a byte order mark")
        }
        skipWhitespace()
        let v = try value(depth: 0)
        skipWhitespace()
        guard i == b.count else { throw failure("end of input") }
        return v
    }

    // MARK: errors

    func describe(at j: Int) -> String {
        guard j < b.count else { return "end of input" }
        let c = b[j]
        if c > 0x20, c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        switch c {
        case 0x20: return "a space"
        case 0x09: return "a tab"
        case 0x0A: return "a line feed"
        case 0x0D: return "a carriage return"
        default: return "byte 0x" + hex2(c)
        }
    }

    func failure(_ expected: String, at j: Int? = nil) -> JSONParseError {
        let at = j ?? i
        return JSONParseError(offset: at, expected: expected, found: describe(at: at))
    }

    // MARK: grammar

    mutating func skipWhitespace() {
        while i < b.count {
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard i < b.count else { throw failure("a value") }
        switch b[i] {
        case ASCII.openBrace: return try object(depth: depth)
        case ASCII.openBracket: return try array(depth: depth)
        case ASCII.quote: return .string(try string())
        case ASCII.t: try literal("true"); return .bool(true)
        case ASCII.f: try literal("false"); return .bool(false)
        case ASCII.n: try literal("null"); return .null
        case ASCII.minus, ASCII.zero...ASCII.nine: return try number()
        default: throw failure("a value")
        }
    }

    mutating func literal(_ word: String) throws(JSONParseError) {
        let start = i
        var k = 0
        for c in word.utf8 {
            guard i < b.count, b[i] == c else {
                throw k == 0 ? failure("a value", at: start) : failure("'\(word)'")
            }
            i += 1
            k += 1
        }
    }

    mutating func enter(_ depth: Int) throws(JSONParseError) {
        guard depth < maxDepth else {
            throw failure("at most \(maxDepth) levels of nesting")
        }
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        try enter(depth)
        i += 1  // {
        skipWhitespace()
        var members: [(String, JSONValue)] = []
        var keys = Set<String>()
        if i < b.count, b[i] == ASCII.closeBrace {
            i += 1
            return .object(members)
        }
        while true {
            guard i < b.count, b[i] == ASCII.quote else {
                throw failure(members.isEmpty ? "a string key or '}'" : "a string key")
            }
            let keyStart = i
            let key = try string()
            guard keys.insert(key).inserted else {
                var shown = ""
                JSONValue.quote(key.count > 40 ? String(key.prefix(40)) + "…" : key, into: &shown)
                throw JSONParseError(offset: keyStart, expected: "a key not already in this object", found: "duplicate key \(shown)")
            }
            skipWhitespace()
            guard i < b.count, b[i] == ASCII.colon else { throw failure("':'") }
            i += 1
            skipWhitespace()
            let v = try value(depth: depth + 1)
            members.append((key, v))
            skipWhitespace()
            guard i < b.count else { throw failure("',' or '}'") }
            if b[i] == ASCII.comma {
                i += 1
                skipWhitespace()
                continue
            }
            guard b[i] == ASCII.closeBrace else { throw failure("',' or '}'") }
            i += 1
            return .object(members)
        }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        try enter(depth)
        i += 1  // [
        skipWhitespace()
        var items: [JSONValue] = []
        if i < b.count, b[i] == ASCII.closeBracket {
            i += 1
            return .array(items)
        }
        while true {
            items.append(try value(depth: depth + 1))
            skipWhitespace()
            guard i < b.count else { throw failure("',' or ']'") }
            if b[i] == ASCII.comma {
                i += 1
                skipWhitespace()
                continue
            }
            guard b[i] == ASCII.closeBracket else { throw failure("',' or ']'") }
            i += 1
            return .array(items)
        }
    }

    // MARK: strings

    /// At the opening quote; leaves `i` after the closing one.
    mutating func string() throws(JSONParseError) -> String {
        i += 1
        var runStart = i
        var out: [UInt8] = []
        var escaped = false
        while true {
            guard i < b.count else { throw failure("'\"' to close the string") }
            let c = b[i]
            if c == ASCII.quote {
                let text: String
                if escaped {
                    out.append(contentsOf: b[runStart..<i])
                    text = String(decoding: out, as: UTF8.self)
                } else {
                    text = String(decoding: b[runStart..<i], as: UTF8.self)
                }
                i += 1
                return text
            }
            if c == ASCII.backslash {
                out.append(contentsOf: b[runStart..<i])
                escaped = true
                try escape(into: &out)
                runStart = i
                continue
            }
            if c < 0x20 {
                throw JSONParseError(offset: i, expected: "an escaped control character",
                                     found: "control character 0x\(hex2(c)) in a string")
            }
            if c < 0x80 {
                i += 1
            } else {
                try utf8Sequence()
            }
        }
    }

    /// Validates one multi-byte UTF-8 sequence starting at `i` (Unicode table 3-7) and moves
    /// past it.
    mutating func utf8Sequence() throws(JSONParseError) {
        let lead = b[i]
        let count: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF  // range of the second byte
        switch lead {
        case 0xC2...0xDF: count = 2
        case 0xE0: count = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: count = 3
        case 0xED: count = 3; high = 0x9F
        case 0xF0: count = 4; low = 0x90
        case 0xF1...0xF3: count = 4
        case 0xF4: count = 4; high = 0x8F
        default: throw failure("valid UTF-8")
        }
        for k in 1..<count {
            let j = i + k
            guard j < b.count else { throw failure("valid UTF-8", at: j) }
            let lo = k == 1 ? low : 0x80, hi = k == 1 ? high : 0xBF
            guard b[j] >= lo, b[j] <= hi else { throw failure("valid UTF-8", at: j) }
        }
        i += count
    }

    /// At a backslash; appends the escaped character's UTF-8.
    mutating func escape(into out: inout [UInt8]) throws(JSONParseError) {
        let start = i
        i += 1
        guard i < b.count else { throw failure("an escape character after '\\'") }
        let c = b[i]
        i += 1
        switch c {
        case ASCII.quote: out.append(0x22)
        case ASCII.backslash: out.append(0x5C)
        case ASCII.slash: out.append(0x2F)
        case ASCII.b: out.append(0x08)
        case ASCII.f: out.append(0x0C)
        case ASCII.n: out.append(0x0A)
        case ASCII.r: out.append(0x0D)
        case ASCII.t: out.append(0x09)
        case ASCII.u:
            var scalar = try hex4()
            if scalar >= 0xDC00, scalar <= 0xDFFF {
                throw JSONParseError(offset: start, expected: "a code point or a high surrogate escape",
                                     found: "lone low surrogate \\u\(String(scalar, radix: 16))")
            }
            if scalar >= 0xD800, scalar <= 0xDBFF {
                let lowStart = i
                guard i + 1 < b.count, b[i] == ASCII.backslash, b[i + 1] == ASCII.u else {
                    throw JSONParseError(offset: lowStart, expected: "a low surrogate escape (\\udc00-\\udfff)",
                                         found: describe(at: lowStart))
                }
                i += 2
                let second = try hex4()
                guard second >= 0xDC00, second <= 0xDFFF else {
                    throw JSONParseError(offset: lowStart, expected: "a low surrogate escape (\\udc00-\\udfff)",
                                         found: "\\u\(String(second, radix: 16))")
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (second - 0xDC00)
            }
            guard let u = Unicode.Scalar(scalar) else {
                throw JSONParseError(offset: start, expected: "a unicode scalar", found: "\\u\(String(scalar, radix: 16))")
            }
            UTF8.encode(u) { out.append($0) }
        default:
            throw failure("one of \" \\ / b f n r t u after '\\'", at: i - 1)
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard i < b.count, let d = hexDigit(b[i]) else { throw failure("a hex digit") }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    // MARK: numbers

    func isDigit(_ j: Int) -> Bool { j < b.count && b[j] >= ASCII.zero && b[j] <= ASCII.nine }

    mutating func number() throws(JSONParseError) -> JSONValue {
        let start = i
        let negative = b[i] == ASCII.minus
        if negative { i += 1 }
        let digitsStart = i
        guard isDigit(i) else { throw failure("a digit") }
        if b[i] == ASCII.zero {
            i += 1
            if isDigit(i) { throw failure("'.', 'e' or the end of the number (no leading zeros)") }
        } else {
            while isDigit(i) { i += 1 }
        }
        let digitsEnd = i
        var integral = true
        if i < b.count, b[i] == ASCII.dot {
            i += 1
            guard isDigit(i) else { throw failure("a digit after '.'") }
            while isDigit(i) { i += 1 }
            integral = false
        }
        if i < b.count, b[i] == ASCII.lowerE || b[i] == ASCII.upperE {
            i += 1
            if i < b.count, b[i] == ASCII.plus || b[i] == ASCII.minus { i += 1 }
            guard isDigit(i) else { throw failure("a digit in the exponent") }
            while isDigit(i) { i += 1 }
            integral = false
        }
        if integral, let v = exactInteger(digitsStart..<digitsEnd, negative: negative) { return v }
        let text = String(decoding: b[start..<i], as: UTF8.self)
        guard let d = Double(text), d.isFinite else {
            let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
            throw JSONParseError(offset: start, expected: "a number within the range of a double", found: shown)
        }
        return .double(d)
    }

    /// The digits as `.int`/`.uint` when they fit, nil when they do not.
    func exactInteger(_ digits: Range<Int>, negative: Bool) -> JSONValue? {
        var magnitude: UInt64 = 0
        for j in digits {
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(b[j] - ASCII.zero))
            if o1 || o2 { return nil }
            magnitude = s
        }
        if negative {
            if magnitude == UInt64(Int64.max) + 1 { return .int(Int64.min) }
            guard magnitude <= UInt64(Int64.max) else { return nil }
            return .int(-Int64(magnitude))
        }
        return magnitude <= UInt64(Int64.max) ? .int(Int64(magnitude)) : .uint(magnitude)
    }
}

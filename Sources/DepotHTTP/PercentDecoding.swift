/// Splits a request target into path segments and query parameters.
///
/// We route on the raw target (MHD's URI log callback hands it over before MHD decodes it):
/// MHD's own decoded `url` turns `%2F` into `/`, which would let a name containing a slash
/// change which route matches.
enum RequestTarget {
    /// The raw path (before `?`) and the raw query (after it, without `#fragment`).
    /// Scans the UTF-8 view: `firstIndex(of: Character)` walks grapheme clusters, and this runs
    /// on every request.
    static func split(_ target: String) -> (path: Substring, query: Substring?) {
        let utf8 = target.utf8
        // Offsets from the contiguous bytes (a generic `firstIndex(of:)` on the view costs tens of
        // instructions per byte); UTF-8 view indices from offsets are O(1) for native strings.
        let found = utf8.withContiguousStorageIfAvailable { bytes -> (Int, Int?) in
            var end = bytes.count
            var question: Int?
            for (i, b) in bytes.enumerated() {
                if b == UInt8(ascii: "#") { end = i; break }
                if b == UInt8(ascii: "?") && question == nil { question = i }
            }
            return (end, question)
        }
        let endIndex: String.Index
        let q: String.Index?
        if let (end, question) = found {
            endIndex = utf8.index(utf8.startIndex, offsetBy: end)
            q = question.map { utf8.index(utf8.startIndex, offsetBy: $0) }
        } else {
            endIndex = utf8.firstIndex(of: UInt8(ascii: "#")) ?? utf8.endIndex
            q = utf8[..<endIndex].firstIndex(of: UInt8(ascii: "?"))
        }
        // Sliced through the UTF-8 view: a String subscript would round to Character boundaries.
        guard let q else { return (Substring(utf8[..<endIndex]), nil) }
        return (Substring(utf8[..<q]), Substring(utf8[utf8.index(after: q)..<endIndex]))
    }

    /// Path segments, each percent-decoded on its own: "/" gives [], "/a//b/" gives
    /// ["a", "", "b", ""] so that distinct paths stay distinct. Nil for a malformed escape.
    static func segments(_ rawPath: Substring) -> [String]? {
        if let fast = rawPath.utf8.withContiguousStorageIfAvailable({ segments(bytes: $0) }) { return fast }
        var path = rawPath
        if path.utf8.first == UInt8(ascii: "/") { path = Substring(path.utf8.dropFirst()) }
        if path.isEmpty { return [] }
        var out: [String] = []
        out.reserveCapacity(8)
        var start = path.startIndex
        let utf8 = path.utf8
        while true {
            let end = utf8[start...].firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
            guard let decoded = percentDecode(Substring(utf8[start..<end]), plusIsSpace: false) else { return nil }
            out.append(decoded)
            if end == utf8.endIndex { return out }
            start = utf8.index(after: end)
        }
    }

    /// `segments` over the path's bytes: segments without `%` become strings directly.
    private static func segments(bytes: UnsafeBufferPointer<UInt8>) -> [String]? {
        var start = bytes.first == UInt8(ascii: "/") ? 1 : 0
        if start == bytes.count { return [] }
        var out: [String] = []
        out.reserveCapacity(8)
        while true {
            var end = start
            var escaped = false
            while end < bytes.count && bytes[end] != UInt8(ascii: "/") {
                if bytes[end] == UInt8(ascii: "%") { escaped = true }
                end += 1
            }
            let segment = UnsafeBufferPointer(rebasing: bytes[start..<end])
            if escaped {
                guard let decoded = percentDecode(Substring(decoding: segment, as: UTF8.self), plusIsSpace: false) else { return nil }
                out.append(decoded)
            } else {
                out.append(String(decoding: segment, as: UTF8.self))
            }
            if end == bytes.count { return out }
            start = end + 1
        }
    }

    /// `application/x-www-form-urlencoded` pairs: `+` is a space, `a` alone is `a=""`.
    /// Pairs that do not decode (bad escape, not UTF-8) are dropped.
    static func queryParameters(_ rawQuery: Substring?) -> [(String, String)] {
        guard let rawQuery, !rawQuery.isEmpty else { return [] }
        var out: [(String, String)] = []
        for pair in rawQuery.split(separator: "&", omittingEmptySubsequences: true) {
            let name: Substring
            let value: Substring
            if let eq = pair.firstIndex(of: "=") {
                name = pair[..<eq]
                value = pair[pair.index(after: eq)...]
            } else {
                name = pair
                value = ""
            }
            guard let n = percentDecode(name, plusIsSpace: true),
                  let v = percentDecode(value, plusIsSpace: true) else { continue }
            out.append((n, v))
        }
        return out
    }

    /// Decodes `%XX` escapes; nil for a malformed escape or bytes that are not UTF-8.
    static func percentDecode(_ s: Substring, plusIsSpace: Bool) -> String? {
        let utf8 = s.utf8
        if !utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) {
            return String(s)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var i = utf8.startIndex
        while i != utf8.endIndex {
            let c = utf8[i]
            if c == UInt8(ascii: "%") {
                let h = utf8.index(after: i)
                guard h != utf8.endIndex else { return nil }
                let l = utf8.index(after: h)
                guard l != utf8.endIndex, let hi = hexValue(utf8[h]), let lo = hexValue(utf8[l]) else { return nil }
                bytes.append(hi << 4 | lo)
                i = utf8.index(after: l)
            } else {
                bytes.append(plusIsSpace && c == UInt8(ascii: "+") ? UInt8(ascii: " ") : c)
                i = utf8.index(after: i)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

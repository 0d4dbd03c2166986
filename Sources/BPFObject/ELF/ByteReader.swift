/// Bounds-checked little-endian reads over bytes that come from an untrusted file.
///
/// Every read either returns a value or throws `ByteReader.OutOfBounds`; callers turn that into an
/// error with context. Nothing here traps on bad input.
struct ByteReader {
    struct OutOfBounds: Error {
        let offset: Int
        let length: Int
        let available: Int
    }

    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var count: Int { bytes.count }

    @inline(__always)
    func check(_ offset: Int, _ length: Int) throws(OutOfBounds) {
        guard offset >= 0, length >= 0, offset <= bytes.count, length <= bytes.count - offset else {
            throw OutOfBounds(offset: offset, length: length, available: bytes.count)
        }
    }

    func u8(_ offset: Int) throws(OutOfBounds) -> UInt8 {
        try check(offset, 1)
        return bytes[offset]
    }

    func u16(_ offset: Int) throws(OutOfBounds) -> UInt16 {
        try check(offset, 2)
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    func u32(_ offset: Int) throws(OutOfBounds) -> UInt32 {
        try check(offset, 4)
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }.littleEndian
    }

    func i32(_ offset: Int) throws(OutOfBounds) -> Int32 { Int32(bitPattern: try u32(offset)) }

    func u64(_ offset: Int) throws(OutOfBounds) -> UInt64 {
        try check(offset, 8)
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }.littleEndian
    }

    func slice(_ offset: Int, _ length: Int) throws(OutOfBounds) -> ArraySlice<UInt8> {
        try check(offset, length)
        return bytes[offset..<(offset + length)]
    }

    /// A NUL-terminated string starting at `offset`; nil when the offset is out of range or no NUL follows.
    func cString(at offset: Int) -> String? {
        guard offset >= 0, offset < bytes.count else { return nil }
        guard let end = bytes[offset...].firstIndex(of: 0) else { return nil }
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }
}

/// Little-endian appends, for encoding BTF and instructions.
extension Array where Element == UInt8 {
    // Public: BPFKernel encodes instructions and BTF.ext records the same way.
    public mutating func appendLE(_ v: UInt16) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }
    public mutating func appendLE(_ v: UInt32) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }
    public mutating func appendLE(_ v: Int32) { appendLE(UInt32(bitPattern: v)) }
    public mutating func appendLE(_ v: UInt64) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }
}

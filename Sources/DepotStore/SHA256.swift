import Crypto

/// Content addresses: SHA-256 from swift-crypto, as lowercase hex.
public enum Digest {
    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        let table = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in Crypto.SHA256.hash(data: bytes) {
            out.append(table[Int(b >> 4)])
            out.append(table[Int(b & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

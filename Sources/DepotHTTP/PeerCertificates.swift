#if canImport(Glibc)
import Glibc
#endif
import CMicroHTTPD
import Synchronization

/// Each TLS connection's client certificate, verified once and then remembered for the
/// connection's life (re-verified after `recheckSeconds`, so a certificate that expires under a
/// long keep-alive connection stops working): GnuTLS's chain check costs far more than a request.
final class PeerCertificates: Sendable {
    private struct Entry {
        let certificate: PeerCertificate
        let checked: Double
    }

    static let recheckSeconds = 60.0
    private let entries = Mutex<[UInt: Entry]>([:])

    private static func key(_ c: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(c))) }

    /// The connection's certificate, verified now or within `recheckSeconds`.
    func certificate(of connection: OpaquePointer) -> PeerCertificate {
        let key = Self.key(connection)
        let now = ConnectionGuard.now()
        if let e = entries.withLock({ $0[key] }), now - e.checked < Self.recheckSeconds { return e.certificate }
        let certificate = Self.verify(connection)
        entries.withLock { $0[key] = Entry(certificate: certificate, checked: now) }
        return certificate
    }

    /// The connection closed (MHD's close notification): forget it, as its pointer may be reused.
    func forget(_ connection: OpaquePointer) {
        _ = entries.withLock { $0.removeValue(forKey: Self.key(connection)) }
    }

    var count: Int { entries.withLock { $0.count } }

    private static func verify(_ connection: OpaquePointer) -> PeerCertificate {
        let cap = Credentials.maxSubjectBytes + 1
        var subject = [CChar](repeating: 0, count: cap)
        var reason = [CChar](repeating: 0, count: 512)
        let rc = subject.withUnsafeMutableBufferPointer { s in
            reason.withUnsafeMutableBufferPointer { r in
                cmhd_peer_certificate(connection, s.baseAddress, s.count, r.baseAddress, r.count)
            }
        }
        func text(_ buffer: [CChar]) -> String {
            buffer.withUnsafeBufferPointer { b in
                let bytes = UnsafeRawBufferPointer(b).prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
        }
        switch rc {
        case Int32(CMHD_PEER_VERIFIED): return .verified(subject: text(subject))
        case Int32(CMHD_PEER_INVALID):
            let why = text(reason).trimmingCharacters(in: .whitespaces)
            return .invalid(why.isEmpty ? "the certificate was refused" : why)
        default: return .none
        }
    }
}

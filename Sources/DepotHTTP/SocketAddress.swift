#if canImport(Glibc)
import Glibc
#endif

/// A bindable IPv4/IPv6 address, and the formatting of peer addresses.
struct SocketAddress {
    enum Family { case v4(sockaddr_in), v6(sockaddr_in6) }
    let family: Family

    init?(host: String, port: UInt16) {
        let name = host == "localhost" ? "127.0.0.1" : host
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, name, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            family = .v4(v4)
            return
        }
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET6, name, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            family = .v6(v6)
            return
        }
        return nil
    }

    var isIPv6: Bool {
        if case .v6 = family { return true }
        return false
    }

    /// 127.0.0.0/8, ::1, and ::ffff:127.0.0.0/104.
    var isLoopback: Bool {
        switch family {
        case .v4(let a):
            return UInt32(bigEndian: a.sin_addr.s_addr) >> 24 == 127
        case .v6(var a):
            return withUnsafeBytes(of: &a.sin6_addr) { b in
                let loopback6 = b.prefix(15).allSatisfy { $0 == 0 } && b[15] == 1
                let mapped = b.prefix(10).allSatisfy { $0 == 0 } && b[10] == 0xff && b[11] == 0xff && b[12] == 127
                return loopback6 || mapped
            }
        }
    }

    /// Calls `body` with a `sockaddr` pointer valid for the call.
    func withSockaddr<R>(_ body: (UnsafeMutablePointer<sockaddr>) -> R) -> R {
        switch family {
        case .v4(var a):
            return withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1, body) }
        case .v6(var a):
            return withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1, body) }
        }
    }

    /// `host:port` or `[v6]:port` for a peer address from MHD.
    static func describe(_ address: UnsafePointer<sockaddr>) -> String? {
        // Runs on every request: the text goes through a stack buffer, not an array.
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN) + 1) { text -> String? in
            guard let base = text.baseAddress else { return nil }
            switch Int32(address.pointee.sa_family) {
            case AF_INET:
                return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { a in
                    var addr = a.pointee.sin_addr
                    guard inet_ntop(AF_INET, &addr, base, socklen_t(text.count)) != nil else { return nil }
                    return String(cString: base) + ":" + String(UInt16(bigEndian: a.pointee.sin_port))
                }
            case AF_INET6:
                return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                    var addr = a.pointee.sin6_addr
                    guard inet_ntop(AF_INET6, &addr, base, socklen_t(text.count)) != nil else { return nil }
                    return "[" + String(cString: base) + "]:" + String(UInt16(bigEndian: a.pointee.sin6_port))
                }
            default:
                return nil
            }
        }
    }
}

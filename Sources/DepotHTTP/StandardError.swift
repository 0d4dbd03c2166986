#if canImport(Glibc)
import Glibc
#endif

/// Unbuffered diagnostics for what must not go unnoticed (a handler's unexpected error).
enum StandardError {
    static func write(_ message: String) {
        var m = message
        m.withUTF8 { buf in
            guard let base = buf.baseAddress else { return }
            _ = Glibc.write(2, base, buf.count)
        }
    }
}

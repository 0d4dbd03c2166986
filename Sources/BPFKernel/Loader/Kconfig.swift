import BPFObject
import CZlib
import Glibc
import Synchronization

/// The running kernel's configuration, as libbpf reads it for `__kconfig` externs:
/// `/boot/config-$(uname -r)` first, then `/proc/config.gz`.
public struct KernelConfig: Sendable {
    /// `CONFIG_FOO` → raw value text (`y`, `m`, `"str"`, `123`, `0x10`); `n` for "is not set".
    public var values: [String: String]

    public init(values: [String: String]) { self.values = values }

    public init(text: String) {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# CONFIG_"), line.hasSuffix(" is not set") {
                let name = line.dropFirst(2).dropLast(" is not set".count)
                values[String(name)] = "n"
            } else if line.hasPrefix("CONFIG_"), let eq = line.firstIndex(of: "=") {
                values[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
        }
        self.values = values
    }

    private static let cache = Mutex<KernelConfig?>(nil)

    /// The running kernel's configuration, read once per process (it cannot change while the
    /// kernel runs).
    public static func running() throws(LoaderError) -> KernelConfig {
        if let c = cache.withLock({ $0 }) { return c }
        let c = try readRunning()
        cache.withLock { $0 = c }
        return c
    }

    private static func readRunning() throws(LoaderError) -> KernelConfig {
        let boot = "/boot/config-\(KernelVersion.release)"
        if let bytes = readWholeFile(boot) {
            return KernelConfig(text: String(decoding: bytes, as: UTF8.self))
        }
        guard let bytes = gunzipFile("/proc/config.gz") else {
            throw .kconfig(name: "CONFIG_*", reason: "no \(boot) and no readable /proc/config.gz")
        }
        return KernelConfig(text: String(decoding: bytes, as: UTF8.self))
    }

    private static func gunzipFile(_ path: String) -> [UInt8]? {
        guard let f = gzopen(path, "rb") else { return nil }
        defer { gzclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { gzread(f, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { return nil }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<Int(n)])
        }
        return out
    }

    /// Encodes the value of `name` for an extern of `type`, `size` bytes, as libbpf does
    /// (`set_kcfg_value_tri`, `set_kcfg_value_str`, `set_kcfg_value_num`).
    public static func encode(_ raw: String, name: String, as type: KconfigType, size: Int) throws(LoaderError) -> [UInt8] {
        switch type {
        case .bool:
            switch raw {
            case "y": return [1]
            case "n": return [0]
            default: throw .kconfig(name: name, reason: "value '\(raw)' does not fit a bool (expected y or n)")
            }
        case .tristate:
            let v: UInt32
            switch raw {
            case "y": v = 1
            case "n": v = 0
            case "m": v = 2
            default: throw .kconfig(name: name, reason: "value '\(raw)' is not a tristate (y, n or m)")
            }
            return withUnsafeBytes(of: v.littleEndian, Array.init)
        case .char:
            guard raw.utf8.count == 1, let c = raw.utf8.first else {
                throw .kconfig(name: name, reason: "value '\(raw)' does not fit a char")
            }
            return [c]
        case .charArray(let count):
            guard raw.hasPrefix("\""), raw.hasSuffix("\""), raw.utf8.count >= 2 else {
                throw .kconfig(name: name, reason: "value \(raw) is not a string")
            }
            var bytes = Array(raw.utf8.dropFirst().dropLast())
            // Truncated to fit with its NUL, as libbpf does (with a warning).
            bytes = Array(bytes.prefix(Int(count) - 1))
            return bytes + [UInt8](repeating: 0, count: Int(count) - bytes.count)
        case .int(let sz, let signed):
            guard let v = parseInteger(raw) else {
                throw .kconfig(name: name, reason: "value '\(raw)' is not an integer")
            }
            let bits = Int(sz) * 8
            if signed {
                let s = Int64(bitPattern: v)
                if bits < 64 {
                    let lo = -(Int64(1) << (bits - 1)), hi = (Int64(1) << (bits - 1)) - 1
                    guard s >= lo, s <= hi else { throw .kconfig(name: name, reason: "value \(s) out of range for \(sz)-byte signed int") }
                }
            } else if bits < 64, v >> UInt64(bits) != 0 {
                throw .kconfig(name: name, reason: "value \(v) out of range for \(sz)-byte unsigned int")
            }
            return Array(withUnsafeBytes(of: v.littleEndian, Array.init).prefix(Int(sz)))
        }
    }

    /// strtoull(base 0): decimal, 0x hex, leading 0 octal, optional minus sign.
    static func parseInteger(_ s: String) -> UInt64? {
        var text = Substring(s)
        var negative = false
        if text.hasPrefix("-") { negative = true; text = text.dropFirst() }
        let value: UInt64?
        if text.hasPrefix("0x") || text.hasPrefix("0X") { value = UInt64(text.dropFirst(2), radix: 16) }
        else if text.count > 1, text.hasPrefix("0") { value = UInt64(text.dropFirst(), radix: 8) }
        else { value = UInt64(text) }
        guard let value else { return nil }
        return negative ? 0 &- value : value
    }
}

/// The running kernel's version, as `LINUX_VERSION_CODE` encodes it.
public enum KernelVersion {
    public static var release: String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// `KERNEL_VERSION(a, b, c)` of the running kernel (c capped at 255, as the kernel caps it);
    /// computed once: the running kernel does not change under a process.
    public static let code: UInt32 = {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(3).map { UInt32($0) ?? 0 }
        let a = parts.count > 0 ? parts[0] : 0, b = parts.count > 1 ? parts[1] : 0, c = parts.count > 2 ? parts[2] : 0
        return a << 16 | b << 8 | min(c, 255)
    }()
}

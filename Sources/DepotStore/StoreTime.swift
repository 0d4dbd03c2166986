import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// The store's time text: UTC `YYYY-MM-DD HH:MM:SS.SSS` (sortable, readable in sqlite3), the
/// format GRDB gives a `Date`. Written and read here rather than by GRDB, whose `Date` conversion
/// goes through `DateFormatter` and so loads ICU's locale data into every `serve` process (about
/// 5 MiB of resident memory for formatting a timestamp).
enum StoreTime {
    static func text(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds.floorDivided(by: 1000))
        let millis = Int(milliseconds - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2)
            + " " + pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
            + "." + pad(millis, 3)
    }

    /// Parses `YYYY-MM-DD HH:MM:SS[.SSS]` (UTC); nil for anything else.
    static func date(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 19 || b.count == 23,
              b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: " "),
              b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
              b.count == 19 || b[19] == UInt8(ascii: "."),
              let year = number(b, 0, 4), let month = number(b, 5, 2), let day = number(b, 8, 2),
              let hour = number(b, 11, 2), let minute = number(b, 14, 2), let second = number(b, 17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        let millis = b.count == 23 ? number(b, 20, 3) : 0
        guard let millis else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        return Date(timeIntervalSince1970: Double(Int64(seconds) * 1000 + Int64(millis)) / 1000)
    }

    private static func number(_ bytes: [UInt8], _ start: Int, _ count: Int) -> Int? {
        var value = 0
        for byte in bytes[start..<start + count] {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

private extension Int64 {
    func floorDivided(by divisor: Int64) -> Int64 {
        let q = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? q - 1 : q
    }
}

extension Row {
    /// A time column written by `StoreTime.text`.
    func time(_ column: String) throws -> Date {
        let text: String = try decode(forColumn: column)
        guard let date = StoreTime.date(text) else {
            throw StoreError.database(operation: "read time", code: -1,
                                      message: "column \(column) holds '\(text)', expected 'YYYY-MM-DD HH:MM:SS.SSS'")
        }
        return date
    }
}

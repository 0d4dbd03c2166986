import DepotCore
import Foundation
import Testing

@Suite struct TimestampTests {
    /// The hand-written formatter says what Foundation's ISO 8601 style says (the API's format).
    @Test func timestampsAreFoundationsISO8601() {
        for seconds in [0, 1, 59.999, 951_782_400, 1_795_600_000.75, 4_102_444_799, -1.5] as [Double] {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(Timestamps.iso8601(date) == date.formatted(.iso8601), "\(seconds)")
        }
        #expect(Timestamps.iso8601(Date(timeIntervalSince1970: 1_795_600_000)) == "2026-11-25T09:46:40Z")
    }
}

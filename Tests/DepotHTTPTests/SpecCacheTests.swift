import BPFObject
import BPFTestSupport
@testable import DepotCore
import Testing

/// The parsed-spec cache stays bounded however many objects are stored and listed, and keeps
/// the specs in use.
@Suite struct SpecCacheTests {
    @Test func boundedAndKeepsTheRecentlyUsed() throws {
        let spec = try ObjectSpec(elf: try Fixtures.bytes("globals"), name: "globals")
        var cache = SpecCache()
        cache.put("hot", spec)
        for i in 0..<(SpecCache.capacity * 3) {
            cache.put("object-\(i)", spec)
            if i % 100 == 0 { #expect(cache.get("hot") != nil, "a spec in use was evicted at \(i)") }
            #expect(cache.count <= SpecCache.capacity)
        }
        #expect(cache.get("object-0") == nil, "the oldest unused specs leave")
        #expect(cache.get("object-\(SpecCache.capacity * 3 - 1)") != nil)
        cache.remove("hot")
        #expect(cache.get("hot") == nil)
    }
}

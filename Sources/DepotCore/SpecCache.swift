import BPFObject

/// Parsed specs of stored objects (without section images), so a listing or a patch does not
/// parse the ELF again: at most `capacity` of them, the least recently used one leaving first.
/// Unbounded, a service holding 10,000 objects kept every spec it ever parsed (each listing page
/// of 100 parsed and kept 100 more).
struct SpecCache {
    static let capacity = 1024
    private var specs: [String: (spec: ObjectSpec, used: UInt64)] = [:]
    private var clock: UInt64 = 0

    var count: Int { specs.count }

    mutating func get(_ id: String) -> ObjectSpec? {
        guard let e = specs[id] else { return nil }
        clock &+= 1
        specs[id] = (e.spec, clock)
        return e.spec
    }

    mutating func put(_ id: String, _ spec: ObjectSpec) {
        clock &+= 1
        if specs[id] == nil, specs.count >= Self.capacity {
            // Evict the least recently used eighth at once, so eviction costs O(1) per insert on average.
            let oldest = specs.sorted { $0.value.used < $1.value.used }.prefix(Self.capacity / 8)
            for (key, _) in oldest { specs.removeValue(forKey: key) }
        }
        specs[id] = (spec, clock)
    }

    mutating func remove(_ id: String) { specs.removeValue(forKey: id) }
}

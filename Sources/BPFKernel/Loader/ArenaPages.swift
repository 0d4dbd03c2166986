import BPFObject
import Glibc
import Synchronization

/// Why the existing pages of an arena could not be found out.
public enum ArenaProbeError: Error, Sendable, CustomStringConvertible {
    case unavailable(String)
    case failed(String)

    public var description: String {
        switch self {
        case .unavailable(let why): return "the arena page probe cannot run on this kernel: \(why)"
        case .failed(let why): return "the arena page probe failed: \(why)"
        }
    }
}

/// Which pages of a BPF arena exist, asked of the kernel without allocating any: the iterator
/// program in Probes/arena_pages.bpf.c probes each page's kernel address with
/// bpf_probe_read_kernel. Loaded once per process, on first use; calls are serialized (the
/// request goes through the probe's own global variables).
public final class ArenaPageProbe: Sendable {
    public static let maxPagesPerRun = 512
    private let object: LoadedObject
    private let link: AttachedLink
    private let lock = Mutex<Void>(())

    private init(object: LoadedObject, link: AttachedLink) {
        self.object = object
        self.link = link
    }

    private static let loaded = Mutex<Result<ArenaPageProbe, ArenaProbeError>?>(nil)

    /// The process's probe, loading it the first time (a failure is remembered).
    public static func shared() throws(ArenaProbeError) -> ArenaPageProbe {
        let result = loaded.withLock { cached -> Result<ArenaPageProbe, ArenaProbeError> in
            if let cached { return cached }
            let made = Result { () throws(ArenaProbeError) -> ArenaPageProbe in try make() }
            cached = made
            return made
        }
        return try result.get()
    }

    private static func make() throws(ArenaProbeError) -> ArenaPageProbe {
        let spec: ObjectSpec
        do { spec = try ObjectSpec(elf: ArenaPagesObject.bytes, name: "arena_pages") } catch {
            throw .failed("the embedded probe object does not parse: \(error)")
        }
        let object: LoadedObject
        do { object = try Loader.load(spec) } catch { throw .unavailable("\(error)") }
        do {
            return ArenaPageProbe(object: object, link: try object.attach(program: "arena_pages", target: AttachTarget()))
        } catch {
            object.unload()
            throw .unavailable("\(error)")
        }
    }

    /// For the arena map `mapID`: its user start address and, for each of `pages` (page numbers
    /// from the start, at most `maxPagesPerRun`), whether the page exists.
    public func present(arenaMapID mapID: UInt32, pages: [UInt32]) throws(ArenaProbeError) -> (start: UInt64, present: [Bool]) {
        guard pages.count <= Self.maxPagesPerRun else { throw .failed("\(pages.count) pages asked, at most \(Self.maxPagesPerRun) per run") }
        return try lock.withLock { _ throws(ArenaProbeError) -> (start: UInt64, present: [Bool]) in
            var list = [UInt8](repeating: 0, count: 4 * Self.maxPagesPerRun)
            for (i, p) in pages.enumerated() { withUnsafeBytes(of: p.littleEndian) { list.replaceSubrange((4 * i)..<(4 * i + 4), with: $0) } }
            do {
                try object.write(variable: "want_id", bytes: withUnsafeBytes(of: mapID.littleEndian) { Array($0) })
                try object.write(variable: "npages", bytes: withUnsafeBytes(of: UInt32(pages.count).littleEndian) { Array($0) })
                try object.write(variable: "pages", bytes: list)
            } catch {
                throw .failed("writing the request: \(error)")
            }
            let out: [UInt8]
            do { out = try link.readIterator(maxBytes: 8 + pages.count + 1, timeout: .seconds(5)).bytes } catch {
                throw .failed("running the iterator: \(error)")
            }
            guard out.count == 8 + pages.count else {
                throw .failed("expected \(8 + pages.count) bytes from the iterator, found \(out.count) (is map \(mapID) a live arena?)")
            }
            let start = out.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            return (start, out[8...].map { $0 != 0 })
        }
    }
}

/// A live load's arena as `PointerFollowing` reads it: through the user mapping, but only pages
/// the kernel says exist (asked in batches around each new page, remembered for this reader's
/// lifetime: make one per request).
public final class LiveArenaMemory: ArenaMemory {
    let object: LoadedObject
    let map: LoadedMap
    let region: MappedRegion
    let probe: Result<ArenaPageProbe, ArenaProbeError>
    private var known: [UInt32: Bool] = [:]
    /// Probe runs made (for tests and tuning).
    public private(set) var probeRuns = 0

    /// Nil when the object has no mapped arena.
    public init?(object: LoadedObject) {
        guard let i = object.spec.arenaMapIndex, i < object.maps.count, let region = object.maps[i].region else { return nil }
        self.object = object
        self.map = object.maps[i]
        self.region = region
        self.probe = Result { () throws(ArenaProbeError) in try ArenaPageProbe.shared() }
    }

    public var start: UInt64 { region.address }
    public var size: UInt64 { UInt64(region.length) }
    var pageCount: UInt32 { UInt32(region.length / 4096) }

    public func read(offset: UInt64, count: Int) -> ArenaRead {
        guard count > 0, offset + UInt64(count) <= size else { return .unknown("outside the arena") }
        let first = UInt32(offset >> 12), last = UInt32((offset + UInt64(count) - 1) >> 12)
        for page in first...last {
            if known[page] == nil {
                if case .failure(let e) = probe { return .unknown(e.description) }
                do { try learn(around: page) } catch { return .unknown(error.description) }
            }
            if known[page] != true { return .absent }
        }
        do {
            return .bytes(try object.readArena(offset: Int(offset), count: count))
        } catch {
            return .unknown("\(error)")
        }
    }

    private func learn(around page: UInt32) throws(ArenaProbeError) {
        guard case .success(let probe) = probe else { return }
        let half = UInt32(ArenaPageProbe.maxPagesPerRun / 2)
        let lo = page > half ? page - half : 0
        let hi = min(pageCount, lo + UInt32(ArenaPageProbe.maxPagesPerRun))
        let pages = (lo..<hi).filter { known[$0] == nil }
        probeRuns += 1
        let (start, present) = try probe.present(arenaMapID: map.id, pages: pages)
        guard start == region.address else {
            throw .failed("the kernel's arena starts at 0x\(String(start, radix: 16)), the mapping at 0x\(String(region.address, radix: 16))")
        }
        for (p, yes) in zip(pages, present) { known[p] = yes }
    }

    /// Whether each page of the arena exists now (a fresh probe of every page).
    public func presentPages() throws(ArenaProbeError) -> [Bool] {
        let probe = try self.probe.get()
        var out: [Bool] = []
        var p: UInt32 = 0
        while p < pageCount {
            let batch = Array(p..<min(pageCount, p + UInt32(ArenaPageProbe.maxPagesPerRun)))
            out += try probe.present(arenaMapID: map.id, pages: batch).present
            p += UInt32(batch.count)
        }
        return out
    }
}

extension LoadedObject {
    /// Bytes of the arena through its user mapping. The caller makes sure the pages exist
    /// (`LiveArenaMemory`): a read of a page no program allocated would allocate it.
    public func readArena(offset: Int, count: Int) throws(LoaderError) -> [UInt8] {
        guard let i = spec.arenaMapIndex, i < maps.count, let region = maps[i].region else { throw .unknownVariable("(arena)") }
        return try withLiveState { () throws(LoaderError) in
            do throws(BPFError) { return try region.read(at: offset, count: count) } catch { throw .map(name: maps[i].spec.name, error) }
        }
    }
}

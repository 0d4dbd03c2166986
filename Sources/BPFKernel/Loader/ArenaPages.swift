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

/// Which pages of a BPF arena exist, and their bytes, asked of the kernel without allocating
/// any: the iterator program in Probes/arena_pages.bpf.c probes (or copies) each page through
/// its kernel address with bpf_probe_read_kernel, which fails on a page that is not there
/// instead of making one. Loaded once per process, on first use; calls are serialized (the
/// request goes through the probe's own global variables).
public final class ArenaPageProbe: Sendable {
    public static let maxPagesPerRun = 512
    /// Pages one copy run returns (the iterator's 32 KiB seq buffer holds one object's output).
    public static let maxCopyPagesPerRun = 7
    public static let pageSize = 4096
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
        let out = try run(mapID: mapID, pages: pages, copy: false, expect: 8 + pages.count)
        return (Self.start(out), out[8...].map { $0 != 0 })
    }

    /// For the arena map `mapID`: its user start address and, for each of `pages` (at most
    /// `maxCopyPagesPerRun`), the page's bytes as the kernel mapping holds them now, or nil
    /// where the page does not exist. The user mapping is not touched.
    public func copy(arenaMapID mapID: UInt32, pages: [UInt32]) throws(ArenaProbeError) -> (start: UInt64, pages: [[UInt8]?]) {
        guard pages.count <= Self.maxCopyPagesPerRun else {
            throw .failed("\(pages.count) pages asked, at most \(Self.maxCopyPagesPerRun) per copy")
        }
        let out = try run(mapID: mapID, pages: pages, copy: true, expect: 8 + pages.count * (1 + Self.pageSize))
        var result: [[UInt8]?] = []
        var at = 8
        for _ in pages {
            guard at < out.count else { throw .failed("the copy ended after \(result.count) of \(pages.count) pages") }
            let present = out[at] != 0
            at += 1
            if present {
                guard at + Self.pageSize <= out.count else { throw .failed("the copy of page \(result.count) is short") }
                result.append(Array(out[at..<(at + Self.pageSize)]))
                at += Self.pageSize
            } else {
                result.append(nil)
            }
        }
        guard at == out.count else { throw .failed("\(out.count - at) bytes past the copied pages") }
        return (Self.start(out), result)
    }

    private static func start(_ out: [UInt8]) -> UInt64 {
        out.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    /// One iterator run; `expect` is the most it may write (the exact count without `copy`).
    private func run(mapID: UInt32, pages: [UInt32], copy: Bool, expect: Int) throws(ArenaProbeError) -> [UInt8] {
        try lock.withLock { _ throws(ArenaProbeError) -> [UInt8] in
            var list = [UInt8](repeating: 0, count: 4 * Self.maxPagesPerRun)
            for (i, p) in pages.enumerated() { withUnsafeBytes(of: p.littleEndian) { list.replaceSubrange((4 * i)..<(4 * i + 4), with: $0) } }
            func word(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
            do {
                try object.write(variable: "want_id", bytes: word(mapID))
                try object.write(variable: "npages", bytes: word(UInt32(pages.count)))
                try object.write(variable: "copy", bytes: word(copy ? 1 : 0))
                try object.write(variable: "pages", bytes: list)
            } catch {
                throw .failed("writing the request: \(error)")
            }
            let out: [UInt8]
            do { out = try link.readIterator(maxBytes: expect + 1, timeout: .seconds(5)).bytes } catch {
                throw .failed("running the iterator: \(error)")
            }
            let fits = copy ? (out.count >= 8 + pages.count && out.count <= expect) : out.count == expect
            guard fits else {
                throw .failed("expected \(copy ? "at most " : "")\(expect) bytes from the iterator, found \(out.count) (is map \(mapID) a live arena?)")
            }
            return out
        }
    }
}

/// A live load's arena as `PointerFollowing` reads it: page by page through the kernel's own
/// mapping of the arena (`ArenaPageProbe.copy`), never through the user mapping, so a read can
/// neither allocate a page nor fault in one a program frees meanwhile. Pages are copied in
/// runs of up to 7 around each new page and kept for this reader's lifetime (make one per
/// request; it is a snapshot assembled page by page, not an atomic one).
public final class LiveArenaMemory: ArenaMemory {
    let object: LoadedObject
    let map: LoadedMap
    let region: MappedRegion
    let probe: Result<ArenaPageProbe, ArenaProbeError>
    /// Copied pages (nil: the page does not exist).
    private var copied: [UInt32: [UInt8]?] = [:]
    /// Pages one reader keeps at most (32 MiB); past it the copies start over.
    static let maxKeptPages = 8192
    /// Copy runs made (for tests and tuning).
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
    var pageCount: UInt32 { UInt32(region.length / ArenaPageProbe.pageSize) }

    public func read(offset: UInt64, count: Int) -> ArenaRead {
        guard count > 0, offset + UInt64(count) <= size else { return .unknown("outside the arena") }
        let first = UInt32(offset >> 12), last = UInt32((offset + UInt64(count) - 1) >> 12)
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for page in first...last {
            if copied[page] == nil {
                if case .failure(let e) = probe { return .unknown(e.description) }
                do { try fetch(from: page) } catch { return .unknown(error.description) }
            }
            guard case .some(.some(let bytes)) = copied[page] else { return .absent }
            let lo = page == first ? Int(offset & 0xfff) : 0
            let hi = page == last ? Int((offset + UInt64(count) - 1) & 0xfff) + 1 : ArenaPageProbe.pageSize
            out.append(contentsOf: bytes[lo..<hi])
        }
        return .bytes(out)
    }

    /// Copies `page` and the next pages not copied yet, up to one run's worth.
    private func fetch(from page: UInt32) throws(ArenaProbeError) {
        let probe = try self.probe.get()
        if copied.count >= Self.maxKeptPages { copied.removeAll(keepingCapacity: true) }
        var pages: [UInt32] = []
        var p = page
        while pages.count < ArenaPageProbe.maxCopyPagesPerRun, p < pageCount {
            if copied[p] == nil { pages.append(p) }
            p += 1
        }
        probeRuns += 1
        let (start, got) = try probe.copy(arenaMapID: map.id, pages: pages)
        guard start == region.address else {
            throw .failed("the kernel's arena starts at 0x\(String(start, radix: 16)), the mapping at 0x\(String(region.address, radix: 16))")
        }
        for (p, bytes) in zip(pages, got) { copied[p] = .some(bytes) }
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
    /// Bytes of the arena through its user mapping. A read of a page no program allocated
    /// allocates it (the arena's fault handler): pointer following reads through
    /// `LiveArenaMemory` instead, which never touches this mapping.
    public func readArena(offset: Int, count: Int) throws(LoaderError) -> [UInt8] {
        guard let i = spec.arenaMapIndex, i < maps.count, let region = maps[i].region else { throw .unknownVariable("(arena)") }
        return try withLiveState { () throws(LoaderError) in
            do throws(BPFError) { return try region.read(at: offset, count: count) } catch { throw .map(name: maps[i].spec.name, error) }
        }
    }
}

import BPFKernel
import BPFObject
import DepotStore

/// Service limits on loads (the HTTP server has its own on bodies, connections and rates).
public struct DepotLimits: Sendable, Equatable {
    /// Loads being verified at the same time; more get 503 (the verifier is CPU-bound).
    public var maxConcurrentLoads: Int
    /// Arena memory (pages × page size of every live load's arena) the service may hold.
    public var maxArenaBytes: UInt64
    /// Audit rows older than this many days are pruned.
    public var auditRetentionDays: Int

    public static let defaultMaxConcurrentLoads = 4
    public static let defaultMaxArenaBytes: UInt64 = 16 << 30
    public static let defaultAuditRetentionDays = 90

    public init(maxConcurrentLoads: Int = defaultMaxConcurrentLoads, maxArenaBytes: UInt64 = defaultMaxArenaBytes,
                auditRetentionDays: Int = defaultAuditRetentionDays) {
        self.maxConcurrentLoads = maxConcurrentLoads
        self.maxArenaBytes = maxArenaBytes
        self.auditRetentionDays = auditRetentionDays
    }
}

struct LoadBudget {
    var loadsInProgress = 0
    var arenaBytes: UInt64 = 0
}

/// What `recover()` did, one entry per load or directory, for the start-up log.
public struct RecoveryReport: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// A `loaded` row whose pins were all there: maps, programs and memory taken over.
        case adopted(loadID: Int64)
        /// A `loaded` row that could not be taken over; now `lost` (its remaining pins removed).
        case lost(loadID: Int64, reason: String)
        /// Pins with no `loaded` row (a crash between pinning and the row update, or between the
        /// row update and unpinning on unload): removed.
        case strayPinsRemoved(directory: String, pins: Int)
        /// An `attached` link whose pin was there with the recorded kernel link id: taken over.
        case linkAdopted(linkID: Int64, loadID: Int64)
        /// An `attached` link that could not be taken over (its pin or its load is gone): now `lost`.
        case linkLost(linkID: Int64, reason: String)
        /// A link pin with no `attached` row (a crash between pinning and the row update, or
        /// between the row update and the detach): removed, which detaches it.
        case strayLinkPinRemoved(path: String)
    }

    public var outcomes: [Outcome] = []
    public var adopted: [Int64] { outcomes.compactMap { if case .adopted(let id) = $0 { id } else { nil } } }
    public var lost: [Int64] { outcomes.compactMap { if case .lost(let id, _) = $0 { id } else { nil } } }
}

extension Depot {
    /// Brings the kernel and the database back in line at start-up; the database is the truth.
    /// Every `loaded` row whose pins exist is adopted (maps and programs re-opened, the arena
    /// mapped again at its address, data/bss mapped again); every other `loaded` row becomes
    /// `lost`; every load directory under the pin root without a `loaded` row is unpinned. Call
    /// it once, before serving requests.
    public func recover() throws(DepotError) -> RecoveryReport {
        var report = RecoveryReport()
        var rows: [LoadRecord] = []
        var after: Int64?
        while true {
            let page = try storeCall { () throws(StoreError) in try store.loads(state: .loaded, limit: 1000, afterID: after) }
            rows += page
            guard let last = page.last, page.count == 1000 else { break }
            after = last.id
        }
        var kept: Set<String> = []
        for row in rows {
            if live.withLock({ $0[row.id] != nil }) {
                if let dir = row.pinDirectory { kept.insert(dir) }
                continue
            }
            switch adopt(row) {
            case .success(let obj):
                live.withLock { $0[row.id] = obj }
                budget.withLock { $0.arenaBytes += Self.arenaBytes(of: obj.spec) }
                if let dir = row.pinDirectory { kept.insert(dir) }
                report.outcomes.append(.adopted(loadID: row.id))
                try recoverLinks(loadID: row.id, pinDirectory: row.pinDirectory, into: &report)
            case .failure(let why):
                if let dir = row.pinDirectory { PinRoot.removeLoad(directory: dir) }
                try storeCall { () throws(StoreError) in _ = try store.updateLoad(id: row.id, state: .lost) }
                report.outcomes.append(.lost(loadID: row.id, reason: why.description))
            }
        }
        // Attached links of loads that were not taken over went with them.
        for link in try storeCall({ () throws(StoreError) in try store.links(state: .attached) })
            where liveLinks.withLock({ $0[link.id] == nil }) {
            try storeCall { () throws(StoreError) in _ = try store.updateLink(id: link.id, state: .lost) }
            report.outcomes.append(.linkLost(linkID: link.id, reason: "its load \(link.loadID) was not taken over"))
        }
        if let pinRoot {
            // Only directories named like load ids: anything else under the root is not ours.
            for name in PinRoot.directories(in: pinRoot) where !name.isEmpty && name.allSatisfy(\.isASCIIDigit) {
                let dir = "\(pinRoot)/\(name)"
                guard !kept.contains(dir) else { continue }
                let pins = PinRoot.removeLoad(directory: dir)
                report.outcomes.append(.strayPinsRemoved(directory: dir, pins: pins))
            }
        }
        return report
    }

    /// The links of an adopted load: each `attached` row whose pin holds the recorded kernel
    /// link is taken over (still attached, same link id); the others become `lost`; link pins
    /// without an `attached` row are removed.
    private func recoverLinks(loadID: Int64, pinDirectory: String?, into report: inout RecoveryReport) throws(DepotError) {
        let rows = try storeCall { () throws(StoreError) in try store.links(loadID: loadID, state: .attached) }
        var kept: Set<String> = []
        for row in rows {
            let outcome: Result<AttachedLink, RecoveryFailure>
            if let path = row.pinPath, let kernelID = row.kernelID, let kind = LinkKind(rawValue: row.kind) {
                do {
                    outcome = .success(try AttachedLink.adopt(pinnedAt: path, expectedID: kernelID, program: row.program,
                                                              kind: kind, target: row.target))
                } catch {
                    outcome = .failure(.link(error))
                }
            } else {
                outcome = .failure(.notPinned("the link was not pinned"))
            }
            switch outcome {
            case .success(let link):
                liveLinks.withLock { $0[row.id] = (loadID, link) }
                kept.insert(String(row.id))
                report.outcomes.append(.linkAdopted(linkID: row.id, loadID: loadID))
            case .failure(let why):
                if let path = row.pinPath { PinRoot.removePin(path) }
                try storeCall { () throws(StoreError) in _ = try store.updateLink(id: row.id, state: .lost) }
                report.outcomes.append(.linkLost(linkID: row.id, reason: why.description))
            }
        }
        if let dir = pinDirectory {
            for name in PinRoot.linkPins(directory: dir) where !kept.contains(name) {
                PinRoot.removePin("\(dir)/links/\(name)")
                report.outcomes.append(.strayLinkPinRemoved(path: "\(dir)/links/\(name)"))
            }
        }
    }

    private func adopt(_ row: LoadRecord) -> Result<LoadedObject, RecoveryFailure> {
        guard pinRoot != nil else { return .failure(.notPinned("the service runs without a pin root")) }
        guard let dir = row.pinDirectory else { return .failure(.notPinned("the load was not pinned")) }
        guard PinRoot.exists(dir) else { return .failure(.notPinned("its pin directory \(dir) is gone")) }
        let spec: ObjectSpec
        do { (spec, _) = try self.spec(row.objectID, revision: row.revision) } catch { return .failure(.depot(error)) }
        do {
            return .success(try Loader.adopt(spec, pinDirectory: dir, record: Self.adoptionRecord(row.kernelIDs)))
        } catch {
            return .failure(.loader(error))
        }
    }

    /// The arena address and kernel ids `load()` wrote into the row's `kernel_ids`.
    static func adoptionRecord(_ kernelIDs: String) -> AdoptionRecord {
        let json = (try? JSONValue(parsing: kernelIDs)) ?? .null
        func u64(_ v: JSONValue?) -> UInt64? {
            switch v {
            case .uint(let n)?: return n
            case .int(let n)?: return UInt64(exactly: n)
            default: return nil
            }
        }
        func ids(_ v: JSONValue?) -> [String: UInt32] {
            guard case .object(let members)? = v else { return [:] }
            var out: [String: UInt32] = [:]
            for (k, v) in members {
                if let n = u64(v), let id = UInt32(exactly: n) { out[k] = id }
            }
            return out
        }
        return AdoptionRecord(
            arenaAddress: u64(json["arena"]?["address"]), arenaDataOffset: u64(json["arena"]?["dataOffset"]) ?? 0,
            mapIDs: ids(json["maps"]), programIDs: ids(json["programs"]))
    }
}

enum RecoveryFailure: Error, CustomStringConvertible {
    case notPinned(String)
    case depot(DepotError)
    case loader(LoaderError)
    case link(LinkError)

    var description: String {
        switch self {
        case .notPinned(let why): why
        case .depot(let e): e.description
        case .loader(let e): e.description
        case .link(let e): e.description
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

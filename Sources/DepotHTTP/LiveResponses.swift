#if canImport(Glibc)
import Glibc
#endif
import DepotCore
import Synchronization

/// The answers to `GET /v1/loads/{id}/variables/{name}` (200 and 304), rendered once per
/// variable and reused while the variable's bytes stay the same.
///
/// Every request still reads the variable's bytes from mapped memory and compares them with the
/// bytes the kept answer was rendered from; only equal bytes reuse it, so a value is never stale.
/// The body and tag are functions of those bytes alone (a load's spec and BTF never change), so
/// a kept answer is byte for byte what rendering again would give. Entries are keyed by load id
/// and variable index and are used only with the `LoadedObject` they were read from (weakly
/// held: an entry of another object, after an unload and a new load, is never used; entries of
/// objects that are gone are dropped when a new key is added). At most `limit` entries; when
/// full, the map starts over.
final class LiveResponses: Sendable {
    struct Key: Hashable {
        let load: Int64
        let index: Int
    }

    /// A class: an entry is passed around on every read, and copying a reference is one retain
    /// where copying the fields was one per field.
    final class Entry: Sendable {
        /// The object the answer was read from, not kept alive by the entry: nil once it is gone
        /// (unloaded and forgotten), so its identity cannot pass to another object.
        weak let object: (any AnyObject & Sendable)?
        /// The variable's bytes the answer was rendered from.
        let bytes: [UInt8]
        let etag: EntityTag
        /// `etag.headerValue` as a C string, to recognise a poller's `If-None-Match` without
        /// parsing it (or making a string of it).
        let tagField: [CChar]
        let ok: PreparedResponse
        let notModified: PreparedResponse

        init(read: LiveRead, etag: EntityTag, tagField: [CChar], ok: PreparedResponse, notModified: PreparedResponse) {
            self.object = read.object
            self.bytes = read.bytes.first ?? []
            self.etag = etag
            self.tagField = tagField
            self.ok = ok
            self.notModified = notModified
        }
    }

    static let limit = 4096
    private let entries = Mutex<[Key: Entry]>([:])

    /// Entries held now (tests).
    var count: Int { entries.withLock { $0.count } }

    /// The answer to a read of variable `name` of live load `load`: 304 when the request
    /// carries a matching `If-None-Match`, the variable's JSON otherwise; nil when there is no
    /// such live load or variable (the route says which).
    func answer(_ depot: Depot, load: Int64, name: String, request: FastRequest) -> PreparedResponse? {
        guard let entry = self.entry(depot, load: load, name: name) else { return nil }
        // The usual poller sends back the one tag it was given, as it was given.
        let notModified = request.withHeader("If-None-Match") { first, count -> Bool? in
            guard let first else { return false }
            if count == 1, entry.tagField.withUnsafeBufferPointer({ $0.baseAddress.map { strcmp(first, $0) } }) == 0 { return true }
            return nil
        } ?? (EntityTagCondition(ifNoneMatchIn: request.headers)?.matchesWeakly(entry.etag) ?? false)
        return notModified ? entry.notModified : entry.ok
    }

    private enum Lookup {
        case kept(Entry)
        case changed(LiveRead)
    }

    /// The kept entry when the variable's bytes are those it was rendered from (compared in
    /// place, nothing copied), else a new one rendered from a copy of them.
    private func entry(_ depot: Depot, load: Int64, name: String) -> Entry? {
        let lookup = try? depot.withLiveBytes(loadID: load, name: name) { object, index, bytes -> Lookup in
            if let kept = entries.withLock({ $0[Key(load: load, index: index)] }), kept.object === object,
               kept.bytes.withUnsafeBytes({ $0.elementsEqual(bytes) }) {
                return .kept(kept)
            }
            return .changed(LiveRead(object: object, indices: [index], bytes: [Array(bytes)]))
        }
        switch lookup {
        case nil:
            return nil
        case .kept(let kept):
            return kept
        case .changed(let live):
            let fresh = Self.render(live)
            let key = Key(load: load, index: live.indices.first ?? -1)
            entries.withLock { map in
                if map[key] == nil {
                    // A new variable or load: the entries of loads that are gone go.
                    map = map.filter { $0.value.object != nil }
                    if map.count >= Self.limit { map.removeAll(keepingCapacity: true) }
                }
                map[key] = fresh
            }
            return fresh
        }
    }

    private static func render(_ live: LiveRead) -> Entry {
        let etag = DepotRoutes.contentTag(live)
        let field = etag.headerValue
        var body: [UInt8] = []
        body.reserveCapacity(128)
        live.views().first?.appendJSON(to: &body)
        var ok = HTTPResponse.bytes(body, contentType: "application/json")
        ok.headers.set("ETag", field)
        var notModified = HTTPResponse(status: .notModified, headers: ["ETag": field])
        notModified.headers.reserveCapacity(2)
        return Entry(read: live, etag: etag, tagField: Array(field.utf8CString), ok: PreparedResponse(ok),
                     notModified: PreparedResponse(notModified))
    }
}

/// The answers to `GET /v1/loads/{id}/variables` (all variables, or `names=`), kept per load
/// and name list with the content hash of the bytes they were rendered from. A poller's
/// conditional read is answered 304 from a hash taken in place in mapped memory (nothing is
/// copied or decoded), and a read whose bytes hash as the kept answer's reuses its body.
/// An entry is used only with the `LoadedObject` it was read from (weakly held: another
/// object's entry, after an unload and a new load, is never used), and entries whose object is
/// gone are dropped whenever a new key is added. When the kept bodies pass `budget` bytes, the
/// map starts over.
final class BatchResponses: Sendable {
    struct Key: Hashable {
        let load: Int64
        let names: [String]?
    }

    final class Entry: Sendable {
        /// The read's object, not kept alive by the entry: once it is gone (unloaded and
        /// forgotten) this is nil, so its identity cannot pass to another and the entry is
        /// dropped at the next sweep.
        weak let object: (any AnyObject & Sendable)?
        let hash: UInt64
        let response: HTTPResponse

        init(object: any AnyObject & Sendable, hash: UInt64, response: HTTPResponse) {
            self.object = object
            self.hash = hash
            self.response = response
        }
    }

    static let budget = 16 << 20
    private let entries = Mutex<(map: [Key: Entry], bytes: Int)>((map: [:], bytes: 0))

    /// Entries held now (tests).
    var count: Int { entries.withLock { $0.map.count } }

    /// The plain (not watching, not long-polling) read of variables `names` (all when nil).
    func answer(_ depot: Depot, load: Int64, names: [String]?, request: HTTPRequest) throws(DepotError) -> HTTPResponse {
        let (object, hash) = try depot.liveContentHash(loadID: load, names: names)
        let tag = DepotRoutes.contentTag(hash)
        if request.isNotModified(current: tag) { return .notModified(etag: tag) }
        let key = Key(load: load, names: names)
        if let kept = entries.withLock({ $0.map[key] }), kept.object === object, kept.hash == hash { return kept.response }
        // Read and rendered from its own copy of the bytes (which may have changed since).
        let live = try depot.readLive(loadID: load, names: names)
        let liveHash = live.contentHash
        let current = DepotRoutes.contentTag(liveHash)
        var response = DepotRoutes.variablesBody(live)
        response.headers.set("ETag", current.headerValue)
        let entry = Entry(object: live.object, hash: liveHash, response: response)
        entries.withLock { kept in
            let size = response.body.count
            if kept.bytes + size > Self.budget {
                kept.map.removeAll(keepingCapacity: true)
                kept.bytes = 0
            }
            if let old = kept.map.updateValue(entry, forKey: key) {
                kept.bytes -= old.response.body.count
            } else {
                // A new load or name list: the entries of loads that are gone go.
                for (k, e) in kept.map where e.object == nil {
                    kept.map[k] = nil
                    kept.bytes -= e.response.body.count
                }
            }
            kept.bytes += size
        }
        if request.isNotModified(current: current) { return .notModified(etag: current) }
        return response
    }
}

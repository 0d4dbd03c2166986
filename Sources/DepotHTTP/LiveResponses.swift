import DepotCore
import Synchronization

/// The answers to `GET /v1/loads/{id}/variables/{name}` (200 and 304), rendered once per
/// variable and reused while the variable's bytes stay the same.
///
/// Every request still reads the variable's bytes from mapped memory and compares them with the
/// bytes the kept answer was rendered from; only equal bytes reuse it, so a value is never stale.
/// The body and tag are functions of those bytes alone (a load's spec and BTF never change), so
/// a kept answer is byte for byte what rendering again would give. Entries are keyed by load id
/// and variable index and hold their read's `LoadedObject`: an entry of another object (an unload and a
/// new load) is never used. At most `limit` entries; when full, the map starts over.
final class LiveResponses: Sendable {
    struct Key: Hashable {
        let load: Int64
        let index: Int
    }

    struct Entry: Sendable {
        /// The read the answer was rendered from (its object and bytes).
        let read: LiveRead
        let etag: EntityTag
        /// `etag.headerValue`, to recognise a poller's `If-None-Match` without parsing it.
        let tagField: String
        let ok: HTTPResponse
        let notModified: HTTPResponse
    }

    static let limit = 4096
    private let entries = Mutex<[Key: Entry]>([:])

    /// Entries held now (tests).
    var count: Int { entries.withLock { $0.count } }

    /// The answer to a read of one variable: 304 when `headers` carry a matching
    /// `If-None-Match`, the variable's JSON otherwise. `live` holds exactly one variable.
    func answer(load: Int64, _ live: LiveRead, headers: HTTPHeaders) -> HTTPResponse {
        let entry = self.entry(load: load, live)
        // The usual poller sends back the one tag it was given, as it was given.
        let conditions = headers.values(for: "If-None-Match")
        let notModified: Bool
        if conditions.count == 1, conditions[0] == entry.tagField {
            notModified = true
        } else if conditions.isEmpty {
            notModified = false
        } else {
            notModified = EntityTagCondition(ifNoneMatchIn: headers)?.matchesWeakly(entry.etag) ?? false
        }
        return notModified ? entry.notModified : entry.ok
    }

    /// The kept entry when `live`'s bytes are those it was rendered from, else a new one.
    private func entry(load: Int64, _ live: LiveRead) -> Entry {
        let key = Key(load: load, index: live.indices.first ?? -1)
        let bytes = live.bytes.first ?? []
        if let kept = entries.withLock({ $0[key] }), kept.read.object === live.object, kept.read.bytes.first == bytes {
            return kept
        }
        let fresh = Self.render(live)
        entries.withLock { map in
            if map.count >= Self.limit, map[key] == nil { map.removeAll(keepingCapacity: true) }
            map[key] = fresh
        }
        return fresh
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
        return Entry(read: live, etag: etag, tagField: field, ok: ok, notModified: notModified)
    }
}

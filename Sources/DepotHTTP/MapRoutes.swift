import BPFObject
import DepotCore

/// `/v1/loads/{id}/maps…`: a live load's maps and their entries, typed through BTF.
extension DepotRoutes {
    static func addMapRoutes(_ r: inout Router, depot: Depot) {
        r.get("/v1/loads/{id}/maps", .deferred { req in
            let id = try loadID(req)
            return .json(.object([("load", .int(id)), ("maps", .array(try depot.maps(loadID: id).map(\.json)))]))
        })
        // A page of entries, tagged from the raw bytes the kernel returned.
        r.get("/v1/loads/{id}/maps/{name}/entries", .deferred { req in
            let limit = try intParameter(req, "limit", default: 100, range: 1...Depot.maxMapPage)
            let id = try loadID(req), name = try req.pathParameter("name"), after = req.query["after"]
            let read: @Sendable () throws(DepotError) -> MapEntriesRead = { () throws(DepotError) in
                try depot.mapEntries(loadID: id, map: name, limit: limit, after: after)
            }
            return try watchable(req, load: id, event: "entries", read: read,
                                 tag: { EntityTag(hex: $0.contentHash, weak: true) }, render: { .json($0.json) })
        })
        // One entry, tagged from its key and value bytes (If-None-Match → 304).
        r.get("/v1/loads/{id}/maps/{name}/entries/{key}", .deferred { req in
            let read = try depot.mapEntryRead(loadID: try loadID(req), map: try req.pathParameter("name"),
                                              key: MapKeyInput(text: try req.pathParameter("key")))
            return .conditional(req, etag: EntityTag(hex: read.contentHash, weak: true)) { .json(read.json) }
        })
        r.put("/v1/loads/{id}/maps/{name}/entries/{key}", .deferred { req in
            let condition = try writeCondition(req)
            return .json(try depot.putMapEntry(loadID: try loadID(req), map: try req.pathParameter("name"),
                                               key: MapKeyInput(text: try req.pathParameter("key")), body: try objectBody(req),
                                               condition: condition))
        })
        r.delete("/v1/loads/{id}/maps/{name}/entries/{key}", .deferred { req in
            try depot.deleteMapEntry(loadID: try loadID(req), map: try req.pathParameter("name"),
                                     key: MapKeyInput(text: try req.pathParameter("key")))
            return .noContent
        })
    }

    /// `If-None-Match: *` creates only, `If-Match: *` replaces only (the kernel's BPF_NOEXIST and
    /// BPF_EXIST, checked atomically by the kernel). An entity tag there would need a
    /// compare-and-swap the kernel does not offer for map entries, so only `*` is taken.
    static func writeCondition(_ req: HTTPRequest) throws(HTTPProblem) -> MapWriteCondition {
        let none = req.headers.values(for: "If-None-Match").map { String($0.trimmingOWS) }
        let match = req.headers.values(for: "If-Match").map { String($0.trimmingOWS) }
        func refuse(_ found: String) -> HTTPProblem {
            HTTPProblem(status: .badRequest, type: "invalid-precondition",
                        detail: "expected If-None-Match: * (create only) or If-Match: * (replace only) on a map entry write, found \(found)")
        }
        switch (none, match) {
        case ([], []): return .any
        case (["*"], []): return .createOnly
        case ([], ["*"]): return .replaceOnly
        case (_, []): throw refuse("If-None-Match: \(none.joined(separator: ", "))")
        case ([], _): throw refuse("If-Match: \(match.joined(separator: ", "))")
        default: throw refuse("both If-None-Match and If-Match")
        }
    }
}

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
        r.get("/v1/loads/{id}/maps/{name}/entries/{key}", .deferred { req in
            .json(try depot.mapEntry(loadID: try loadID(req), map: try req.pathParameter("name"),
                                     key: MapKeyInput(text: try req.pathParameter("key"))))
        })
        r.put("/v1/loads/{id}/maps/{name}/entries/{key}", .deferred { req in
            .json(try depot.putMapEntry(loadID: try loadID(req), map: try req.pathParameter("name"),
                                        key: MapKeyInput(text: try req.pathParameter("key")), body: try objectBody(req)))
        })
        r.delete("/v1/loads/{id}/maps/{name}/entries/{key}", .deferred { req in
            try depot.deleteMapEntry(loadID: try loadID(req), map: try req.pathParameter("name"),
                                     key: MapKeyInput(text: try req.pathParameter("key")))
            return .noContent
        })
    }
}

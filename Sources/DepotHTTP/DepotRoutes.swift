import BPFObject
import DepotCore
import DepotStore
import Foundation

/// The `/v1` API over a `Depot`. Handlers decode, call the domain, encode; reads of live memory
/// run on MHD's thread, everything touching SQLite or the kernel loader is deferred.
public enum DepotRoutes {
    /// `metrics`: the registry `GET /metrics` shows (pass the one the server records requests
    /// into, and whose `factory` the depot records through). `server`: the configuration of the
    /// server that serves this router, whose limits `GET /v1/system` shows beside the depot's.
    public static func router(depot: Depot, openAPI: String, metrics: ServiceMetrics = ServiceMetrics(),
                              server: HTTPServerConfiguration = HTTPServerConfiguration()) -> Router {
        var r = Router()
        r.get("/healthz", .immediate { _ in .json(.object([("status", .string("ok"))])) })
        r.get("/openapi.yaml", .immediate { _ in .bytes(Array(openAPI.utf8), contentType: "application/yaml") })
        // The live page (ui/, embedded): a browser's view of the API below.
        addUIRoutes(&r)
        // Prometheus scrapes: counters from memory, exported variables from mapped memory.
        r.get("/metrics", .immediate { _ in
            .bytes(metrics.exposition(depot.metricsSnapshot()), contentType: ServiceMetrics.contentType)
        })

        // What this host can take: kernel, probes, bpffs, capabilities, and the limits in force.
        // Deferred: the first call of a process runs the feature probes (bpf() loads).
        let limits = serverLimits(server)
        r.get("/v1/system", .deferred { _ in .json(depot.systemReport().json(serverLimits: limits)) })

        // Objects
        r.post("/v1/objects", .deferred { req in
            guard !req.body.isEmpty else {
                throw HTTPProblem(status: .unprocessableContent, type: "invalid-object", detail: "expected the bytes of a BPF ELF object, found an empty body")
            }
            var signature: [UInt8]?
            if let header = req.headers["X-Object-Signature"] {
                guard let bytes = Data(base64Encoded: String(header.trimmingOWS)) else {
                    throw HTTPProblem(status: .forbidden, type: "bad-signature", detail: "X-Object-Signature: expected base64, found '\(header.prefix(100))'")
                }
                signature = [UInt8](bytes)
            }
            let (view, created) = try depot.upload(elf: req.body, name: req.query["name"], signature: signature)
            var headers: HTTPHeaders = ["ETag": revisionTag(view.object.currentRevision).headerValue]
            if created { headers.set("Location", "/v1/objects/\(view.object.id)") }
            return .json(view.json, status: created ? .created : .ok, headers: headers)
        })
        r.get("/v1/objects", .deferred { req in
            let limit = try intParameter(req, "limit", default: 100, range: 1...1000)
            let objects = try depot.objects(limit: limit, after: req.query["after"])
            var members: [(String, JSONValue)] = [("objects", .array(objects.map(\.json)))]
            if objects.count == limit, let last = objects.last { members.append(("next", .string("/v1/objects?limit=\(limit)&after=\(last.object.id)"))) }
            return .json(.object(members))
        })
        r.get("/v1/objects/{id}", .deferred { req in
            let view = try depot.object(id: try req.pathParameter("id"))
            return .json(view.json, headers: ["ETag": revisionTag(view.object.currentRevision).headerValue])
        })
        r.get("/v1/objects/{id}/elf", .deferred { req in
            .bytes(try depot.elf(id: try req.pathParameter("id")), contentType: "application/x-elf")
        })
        r.delete("/v1/objects/{id}", .deferred { req in
            try depot.deleteObject(id: try req.pathParameter("id"))
            return .noContent
        })

        // Variables and images of stored revisions
        r.get("/v1/objects/{id}/variables", .deferred { req in
            let (values, rev) = try depot.variables(objectID: try req.pathParameter("id"), revision: try revisionParameter(req),
                                                    names: namesParameter(req))
            return .json(.object([("revision", .int(Int64(rev))), ("variables", .array(values.map(\.json)))]))
        })
        r.get("/v1/objects/{id}/variables/{name}", .deferred { req in
            let name = try req.pathParameter("name")
            do {
                let (values, rev) = try depot.variables(objectID: try req.pathParameter("id"), revision: try revisionParameter(req), names: [name])
                var json = values[0].json
                if case .object(var m) = json { m.append(("revision", .int(Int64(rev)))); json = .object(m) }
                return .json(json)
            } catch DepotError.unknownVariable(let n, let o) {
                throw HTTPProblem(status: .notFound, type: "unknown-variable", detail: "object \(o) has no variable named '\(n)'")
            }
        })
        r.patch("/v1/objects/{id}/variables", .deferred { req in
            let id = try req.pathParameter("id")
            let values = try objectBody(req)
            let (view, rev) = try depot.patch(objectID: id, values: values, expectedRevision: try ifMatchRevision(req))
            return .json(.object([("revision", .int(Int64(rev))), ("object", view.json)]), headers: ["ETag": revisionTag(rev).headerValue])
        })
        r.get("/v1/objects/{id}/images/{section}", .deferred { req in
            let (bytes, rev) = try depot.image(objectID: try req.pathParameter("id"), section: try req.pathParameter("section"),
                                               revision: try revisionParameter(req))
            return .bytes(bytes, headers: ["ETag": revisionTag(rev).headerValue])
        })
        r.put("/v1/objects/{id}/images/{section}", .deferred { req in
            let offset = try intParameter(req, "offset", default: 0, range: 0...Int(Int32.max))
            let rev = try depot.writeImage(objectID: try req.pathParameter("id"), section: try req.pathParameter("section"),
                                           offset: offset, bytes: req.body, expectedRevision: try ifMatchRevision(req))
            return .json(.object([("revision", .int(Int64(rev)))]), headers: ["ETag": revisionTag(rev).headerValue])
        })
        r.get("/v1/objects/{id}/revisions", .deferred { req in
            let revs = try depot.revisions(objectID: try req.pathParameter("id"))
            return .json(.object([("revisions", .array(revs.map { rev in
                let change = (try? JSONValue(parsing: rev.change)) ?? .string(rev.change)
                return .object([("revision", .int(Int64(rev.revision))), ("created", .string(Timestamps.iso8601(rev.created))), ("change", change)])
            }))]))
        })

        // Loads
        r.post("/v1/objects/{id}/loads", .deferred { req in
            var revision: Int?
            var export: [String] = []
            var links: [LinkRequest] = []
            var attachAll = false
            if !req.body.isEmpty {
                let body = try jsonBody(req)
                guard case .object(let m) = body else { throw badBody("expected an object like {\"revision\": 2}") }
                for (k, v) in m {
                    switch k {
                    case "revision":
                        guard case .int(let n) = v.normalizedInt, n > 0, n <= Int64(Int32.max) else { throw badBody("'revision' must be a positive integer") }
                        revision = Int(n)
                    case "export":
                        export = try variableNames(v, member: "export")
                    case "links":
                        guard case .array(let items) = v, items.count <= 256 else { throw badBody("'links' must be an array of at most 256 link requests") }
                        links = try items.map { item throws(HTTPProblem) in try linkRequest(item) }
                    case "attach":
                        guard case .bool(let b) = v else { throw badBody("'attach' must be true or false") }
                        attachAll = b
                    default:
                        throw badBody("unknown member '\(k)'; expected 'revision', 'export', 'links' or 'attach'")
                    }
                }
            }
            if try dryRunParameter(req) {
                guard export.isEmpty, links.isEmpty, !attachAll else {
                    throw badBody("a dry run attaches and exports nothing: 'links', 'attach' and 'export' go with real loads")
                }
                return .json(try depot.dryRunLoad(objectID: try req.pathParameter("id"), revision: revision).json)
            }
            let view = try depot.load(objectID: try req.pathParameter("id"), revision: revision, exporting: export,
                                      links: links, attachAll: attachAll)
            logNotes(view.links)
            return .json(view.json, status: .created, headers: ["Location": "/v1/loads/\(view.record.id)"])
        })
        r.get("/v1/loads", .deferred { req in
            let limit = try intParameter(req, "limit", default: 100, range: 1...1000)
            let after = try req.query["after"].map { s throws(HTTPProblem) -> Int64 in
                guard let v = Int64(s), v >= 0 else { throw badParameter("after", "a load id", s) }
                return v
            }
            return .json(.object([("loads", .array(try depot.loads(limit: limit, after: after).map(\.json)))]))
        })
        r.get("/v1/loads/{id}", .deferred { req in .json(try depot.loadInfo(id: try loadID(req)).json) })
        r.delete("/v1/loads/{id}", .deferred { req in
            try depot.unload(id: try loadID(req))
            return .noContent
        })
        // Live values: straight from mapped memory, answered on MHD's thread.
        // Tagged from the raw bytes: an unchanged poll is answered 304 without decoding.
        let batchResponses = BatchResponses()
        r.get("/v1/loads/{id}/variables", .immediate { req in
            let id = try loadID(req)
            let names = namesParameter(req)
            if let (depth, nodes) = try followParameters(req) {
                let read: @Sendable () throws(DepotError) -> RenderedRead = { () throws(DepotError) in
                    RenderedRead(try depot.readLive(loadID: id, names: names, follow: depth, nodes: nodes).body)
                }
                return try watchable(req, load: id, event: "variables", read: read, tag: \.tag, render: \.response)
            }
            // A plain read (most of them: pollers) from the kept answers.
            if try !watchParameter(req), try preferWait(req) == nil {
                _ = try intervalParameter(req)  // validated as a watching read validates it
                return try batchResponses.answer(depot, load: id, names: names, request: req)
            }
            let read: @Sendable () throws(DepotError) -> LiveRead = { () throws(DepotError) in try depot.readLive(loadID: id, names: names) }
            return try watchable(req, load: id, event: "variables", read: read, tag: contentTag, render: variablesBody)
        })
        // Rendered once per variable and value: a poller's read renders nothing while the
        // variable's bytes stay the same.
        let liveResponses = LiveResponses()
        r.get("/v1/loads/{id}/variables/{name}", .immediate { req in
            let name = try req.pathParameter("name")
            let id = try loadID(req)
            let read: @Sendable () throws(DepotError) -> LiveRead = { () throws(DepotError) in try depot.readLive(loadID: id, names: [name]) }
            do {
                if let (depth, nodes) = try followParameters(req) {
                    let followed: @Sendable () throws(DepotError) -> RenderedRead = { () throws(DepotError) in
                        var body: [UInt8] = []
                        try depot.readLive(loadID: id, names: [name], follow: depth, nodes: nodes).views.first?.appendJSON(to: &body)
                        return RenderedRead(body)
                    }
                    return try watchable(req, load: id, event: "variables", read: followed, tag: \.tag, render: \.response)
                }
                return try watchable(req, load: id, event: "variables", read: read, tag: contentTag) { live in
                    var body: [UInt8] = []
                    body.reserveCapacity(128)
                    live.views().first?.appendJSON(to: &body)
                    return .bytes(body, contentType: "application/json")
                }
            } catch DepotError.unknownVariable(let n, _) {
                throw HTTPProblem(status: .notFound, type: "unknown-variable", detail: "the loaded object has no variable named '\(n)'")
            }
        }, fastPath: { request in
            // The poller's case, without an HTTPRequest: a live load and a known name. Anything
            // else (bad id, no such load or variable, a long poll) takes the route above.
            let parameters = request.parameters
            guard parameters.count == 2, request.count("Prefer") == 0, let id = Int64(parameters[0]), id > 0 else { return nil }
            return liveResponses.answer(depot, load: id, name: parameters[1], request: request)
        })
        r.patch("/v1/loads/{id}/variables", .immediate { req in
            let id = try loadID(req)
            let body = try objectBody(req)
            // The old values for the audit trail (unknown names fail in the write, as before).
            let old = (try? depot.liveVariables(loadID: id, names: body.map(\.0))) ?? []
            let values = try depot.writeLive(loadID: id, values: body)
            var response = HTTPResponse.json(.object([("variables", .array(values.map(\.json)))]))
            response.auditChange = .object([("variables", .array(values.map { v in
                .object([("name", .string(v.spec.name)), ("old", old.first { $0.spec.name == v.spec.name }?.value ?? .null),
                         ("new", v.value)])
            }))])
            return response
        })
        // The audit trail, newest first (admin scope when the server has credentials).
        r.get("/v1/audit", .deferred { req in
            var filter = AuditFilter()
            filter.limit = try intParameter(req, "limit", default: 100, range: 1...1000)
            if let v = req.query["load"] { guard let n = Int64(v), n >= 0 else { throw badParameter("load", "a load id", v) }; filter.loadID = n }
            filter.objectID = req.query["object"]
            filter.client = req.query["client"]
            if let v = req.query["before"] { guard let n = Int64(v) else { throw badParameter("before", "an audit row id", v) }; filter.before = n }
            for (name, keyPath) in [("since", \AuditFilter.since), ("until", \AuditFilter.until)] {
                guard let v = req.query[name] else { continue }
                guard let date = ISO8601DateFormatter().date(from: v) else { throw badParameter(name, "an ISO 8601 time such as 2026-12-04T10:00:00Z", v) }
                filter[keyPath: keyPath] = date
            }
            let rows = try depot.audit(filter)
            var members: [(String, JSONValue)] = [("entries", .array(rows.map(\.json)))]
            if rows.count == filter.limit, let last = rows.last { members.append(("next", .string("/v1/audit?limit=\(filter.limit)&before=\(last.id)"))) }
            return .json(.object(members))
        })
        // Which live variables `GET /metrics` exports as bpfdepot_variable gauges.
        r.get("/v1/loads/{id}/metrics", .deferred { req in
            let (variables, maps) = try depot.exportLists(loadID: try loadID(req))
            return exportsBody(variables, maps: maps)
        })
        r.put("/v1/loads/{id}/metrics", .deferred { req in
            guard case .object(let m) = try jsonBody(req), !m.isEmpty, m.allSatisfy({ $0.0 == "variables" || $0.0 == "maps" }) else {
                throw badBody("expected an object like {\"variables\": [\"hits\", \"stats\"], \"maps\": [\"flows\"]}")
            }
            let variables = try m.first { $0.0 == "variables" }.map { v throws(HTTPProblem) in try variableNames(v.1, member: "variables") } ?? []
            let maps = try m.first { $0.0 == "maps" }.map { v throws(HTTPProblem) in try variableNames(v.1, member: "maps") } ?? []
            do {
                let stored = try depot.setExports(loadID: try loadID(req), variables: variables, maps: maps)
                return exportsBody(stored.variables, maps: stored.maps)
            } catch DepotError.unknownVariable(let n, _) {
                throw HTTPProblem(status: .notFound, type: "unknown-variable", detail: "the loaded object has no variable named '\(n)'",
                                  extensions: [("variable", .string(n))])
            }
        })
        addLinkRoutes(&r, depot: depot)
        addMapRoutes(&r, depot: depot)
        r.post("/v1/loads/{id}/programs/{name}/run", .deferred { req in
            var repetitions: UInt32 = 1
            var data: [UInt8] = [], context: [UInt8] = []
            if !req.body.isEmpty {
                guard case .object(let m) = try jsonBody(req) else { throw badBody("expected an object like {\"repeat\": 1, \"data\": \"<base64>\"}") }
                for (k, v) in m {
                    switch k {
                    case "repeat":
                        guard case .int(let n) = v.normalizedInt, n >= 1, n <= 1_000_000 else { throw badBody("'repeat' must be an integer from 1 to 1000000") }
                        repetitions = UInt32(n)
                    case "data", "ctx":
                        guard case .string(let s) = v, let d = Data(base64Encoded: s), d.count <= 1 << 20 else {
                            throw badBody("'\(k)' must be base64 of at most 1 MiB")
                        }
                        if k == "data" { data = [UInt8](d) } else { context = [UInt8](d) }
                    default:
                        throw badBody("unknown member '\(k)'; expected 'repeat', 'data' or 'ctx'")
                    }
                }
            }
            let r = try depot.run(loadID: try loadID(req), program: try req.pathParameter("name"), data: data, context: context, repeat: repetitions)
            return .json(.object([
                ("retval", .int(Int64(Int32(bitPattern: r.returnValue)))),
                ("durationNs", .int(Int64(r.duration))),
                ("data", .string(Data(r.dataOut).base64EncodedString())),
                ("ctx", .string(Data(r.contextOut).base64EncodedString())),
            ]))
        })
        return r
    }

    /// One live variable, tagged for pollers: 304 when `isNotModified` says the client has
    /// this tag, otherwise the variable's JSON.
    static func liveVariable(_ live: LiveRead, isNotModified: (EntityTag) -> Bool) -> HTTPResponse {
        let etag = contentTag(live)
        if isNotModified(etag) { return .notModified(etag: etag) }
        var body: [UInt8] = []
        body.reserveCapacity(128)
        live.views().first?.appendJSON(to: &body)
        var response = HTTPResponse.bytes(body, contentType: "application/json")
        response.headers.set("ETag", etag.headerValue)
        return response
    }

    /// The HTTP server's limits, as `GET /v1/system` names them (the flags of `serve`).
    static func serverLimits(_ c: HTTPServerConfiguration) -> [(String, JSONValue)] {
        [
            ("maxBodyBytes", .int(Int64(c.maxBodyBytes))),
            ("maxConnections", .int(Int64(c.connectionLimit))),
            ("headerTimeoutSeconds", .int(Int64(c.headerTimeoutSeconds))),
            ("connectionTimeoutSeconds", .int(Int64(c.connectionTimeoutSeconds))),
            ("requestsPerSecondPerClient", .int(Int64(c.requestsPerSecondPerClient))),
        ]
    }

    // MARK: decoding helpers

    /// Most names an export list may hold (each variable is at least one series).
    static let maxExportNames = Depot.maxExportedSeriesPerLoad

    /// `["hits", "stats"]`: variable names, each non-empty.
    static func variableNames(_ value: JSONValue, member: String) throws(HTTPProblem) -> [String] {
        guard case .array(let items) = value, items.count <= maxExportNames else {
            throw badBody("'\(member)' must be an array of at most \(maxExportNames) variable names")
        }
        var names: [String] = []
        for item in items {
            guard case .string(let s) = item, !s.isEmpty, s.unicodeScalars.count <= 256 else {
                throw badBody("'\(member)' must hold variable names (non-empty strings of at most 256 characters)")
            }
            names.append(s)
        }
        return names
    }

    static func exportsBody(_ names: [String], maps: [String] = []) -> HTTPResponse {
        .json(.object([
            ("variables", .array(names.map { .string($0) })),
            ("maps", .array(maps.map { .string($0) })),
            ("maxSeries", .int(Int64(Depot.maxExportedSeriesPerLoad))),
        ]))
    }

    static func revisionTag(_ rev: Int) -> EntityTag { EntityTag(String(rev)) }

    /// `dryRun=true` (or `1`) on a load: verify and release, record nothing.
    static func dryRunParameter(_ req: HTTPRequest) throws(HTTPProblem) -> Bool {
        guard let v = req.query["dryRun"] else { return false }
        switch v {
        case "true", "1": return true
        case "false", "0": return false
        default: throw badParameter("dryRun", "true or false", v)
        }
    }

    /// A weak tag for pollers, from the raw bytes of the variables the body shows.
    static func contentTag(_ live: LiveRead) -> EntityTag {
        contentTag(live.contentHash)
    }

    static func contentTag(_ hash: UInt64) -> EntityTag {
        EntityTag(hex: hash, weak: true)
    }

    static func badBody(_ detail: String) -> HTTPProblem {
        HTTPProblem(status: .unprocessableContent, type: "invalid-body", detail: detail)
    }

    static func badParameter(_ name: String, _ expected: String, _ found: String) -> HTTPProblem {
        HTTPProblem(status: .badRequest, type: "bad-parameter", detail: "query parameter '\(name)': expected \(expected), found '\(found)'")
    }

    static func jsonBody(_ req: HTTPRequest) throws(HTTPProblem) -> JSONValue {
        do { return try JSONValue(parsing: req.body) } catch {
            throw HTTPProblem(status: .badRequest, type: "invalid-json", detail: "\(error)")
        }
    }

    /// `{"name": value, ...}` in order.
    static func objectBody(_ req: HTTPRequest) throws(HTTPProblem) -> [(String, JSONValue)] {
        guard case .object(let m) = try jsonBody(req) else {
            throw badBody("expected a JSON object of variable names to values")
        }
        return m
    }

    static func intParameter(_ req: HTTPRequest, _ name: String, default value: Int, range: ClosedRange<Int>) throws(HTTPProblem) -> Int {
        guard let s = req.query[name] else { return value }
        guard let v = Int(s), range.contains(v) else { throw badParameter(name, "an integer in \(range.lowerBound)...\(range.upperBound)", s) }
        return v
    }

    static func revisionParameter(_ req: HTTPRequest) throws(HTTPProblem) -> Int? {
        guard req.query["revision"] != nil else { return nil }
        return try intParameter(req, "revision", default: 1, range: 1...Int(Int32.max))
    }

    static func namesParameter(_ req: HTTPRequest) -> [String]? {
        guard let s = req.query["names"], !s.isEmpty else { return nil }
        return s.split(separator: ",").map(String.init)
    }

    static func loadID(_ req: HTTPRequest) throws(HTTPProblem) -> Int64 {
        let s = try req.pathParameter("id")
        guard let v = Int64(s), v > 0 else {
            throw HTTPProblem(status: .notFound, type: "not-found", detail: "expected a load id (a positive integer), found '\(s)'")
        }
        return v
    }

    /// `If-Match: "3"` names the revision a patch is based on.
    static func ifMatchRevision(_ req: HTTPRequest) throws(HTTPProblem) -> Int? {
        guard let condition = try req.ifMatch() else { return nil }
        guard case .tags(let tags) = condition else { return nil }
        guard tags.count == 1, let rev = Int(tags[0].opaque), rev > 0 else {
            throw HTTPProblem(status: .badRequest, type: "bad-precondition", detail: "expected If-Match with one revision tag like \"3\", found \(req.headers["If-Match"] ?? "")")
        }
        // If-Match compares strongly (RFC 9110 §13.1.1): a weak tag never matches, so the write
        // must not happen.
        guard !tags[0].isWeak else {
            throw HTTPProblem(status: .preconditionFailed, type: "precondition-failed",
                              detail: "expected a strong revision tag like \"\(rev)\" in if-match, found the weak \(tags[0].headerValue), which never matches")
        }
        return rev
    }
}

extension JSONValue {
    /// Integers given as .uint or integral .double, seen as .int when they fit.
    var normalizedInt: JSONValue {
        switch self {
        case .uint(let u) where u <= UInt64(Int64.max): return .int(Int64(u))
        case .double(let d) where d.rounded() == d && abs(d) < 9e15: return .int(Int64(d))
        default: return self
        }
    }
}

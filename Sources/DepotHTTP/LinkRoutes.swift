import BPFKernel
import BPFObject
import DepotCore
import Logging

/// `/v1/loads/{id}/links` and `/v1/links/{id}`: programs of live loads attached to kernel hooks.
extension DepotRoutes {
    /// What `GET /v1/links/{id}/output` reads of an iterator at most, and for how long.
    static let iteratorOutputLimit = 4 << 20
    static let iteratorOutputTimeout: Duration = .seconds(5)

    static func addLinkRoutes(_ r: inout Router, depot: Depot) {
        r.post("/v1/loads/{id}/links", .deferred { req in
            let request = try linkRequest(try jsonBody(req))
            let view = try depot.attach(loadID: try loadID(req), request)
            logNotes([view])
            return .json(view.json, status: .created, headers: ["Location": "/v1/links/\(view.record.id)"])
        })
        r.get("/v1/loads/{id}/links", .deferred { req in
            .json(.object([("links", .array(try depot.links(loadID: try loadID(req)).map(\.json)))]))
        })
        r.get("/v1/links/{id}", .deferred { req in .json(try depot.link(id: try linkID(req)).json) })
        // The kernel's view of each program now, run statistics included.
        r.get("/v1/loads/{id}/programs", .deferred { req in
            .json(.object([("programs", .array(try depot.programs(loadID: try loadID(req)).map(\.json)))]))
        })
        r.delete("/v1/links/{id}", .deferred { req in
            try depot.detach(linkID: try linkID(req))
            return .noContent
        })
        r.get("/v1/links/{id}/output", .deferred { req in
            let limit = try intParameter(req, "maxBytes", default: iteratorOutputLimit, range: 1...iteratorOutputLimit)
            let (bytes, truncated) = try depot.iteratorOutput(linkID: try linkID(req), maxBytes: limit, timeout: iteratorOutputTimeout)
            return .bytes(bytes, contentType: "text/plain; charset=utf-8",
                          headers: ["Bpfdepot-Output-Truncated": truncated ? "true" : "false"])
        })
    }

    static let linkLog = Logger(label: "bpfdepot.links")

    /// What attaching did besides (mounting tracefs, say), in the service's log as well as in
    /// the link's `notes`.
    static func logNotes(_ views: [LinkView]) {
        for view in views {
            for note in view.link?.notes ?? [] {
                linkLog.notice("\(note)", metadata: ["link": "\(view.record.id)", "load": "\(view.record.loadID)",
                                                     "program": "\(view.record.program)"])
            }
        }
    }

    static func linkID(_ req: HTTPRequest) throws(HTTPProblem) -> Int64 {
        let s = try req.pathParameter("id")
        guard let v = Int64(s), v > 0 else {
            throw HTTPProblem(status: .notFound, type: "not-found", detail: "expected a link id (a positive integer), found '\(s)'")
        }
        return v
    }

    static let linkMembers = ["program", "interface", "mode", "direction", "cgroup", "binary", "function", "offset", "pid", "map", "replace"]

    /// `{"program": "NAME", ...target}` → a `LinkRequest`; every member is checked for its type.
    static func linkRequest(_ body: JSONValue) throws(HTTPProblem) -> LinkRequest {
        guard case .object(let members) = body else { throw badBody("expected an object like {\"program\": \"count_getpid\"}") }
        var program: String?
        var target = AttachTarget()
        func string(_ k: String, _ v: JSONValue) throws(HTTPProblem) -> String {
            guard case .string(let s) = v, !s.isEmpty, s.utf8.count <= 4096 else { throw badBody("'\(k)' must be a non-empty string") }
            return s
        }
        for (k, v) in members {
            switch k {
            case "program": program = try string(k, v)
            case "interface": target.interface = try string(k, v)
            case "mode":
                guard let mode = XDPMode(rawValue: try string(k, v)) else { throw badBody("'mode' must be \"generic\" or \"native\"") }
                target.xdpMode = mode
            case "direction":
                guard let d = TCXDirection(rawValue: try string(k, v)) else { throw badBody("'direction' must be \"ingress\" or \"egress\"") }
                target.direction = d
            case "cgroup": target.cgroup = try string(k, v)
            case "binary": target.binary = try string(k, v)
            case "function": target.function = try string(k, v)
            case "map": target.map = try string(k, v)
            case "offset":
                guard case .int(let n) = v.normalizedInt, n >= 0 else { throw badBody("'offset' must be a non-negative integer") }
                target.offset = UInt64(n)
            case "pid":
                guard case .int(let n) = v.normalizedInt, n > 0, n <= Int64(Int32.max) else { throw badBody("'pid' must be a positive integer") }
                target.pid = Int32(n)
            case "replace":
                guard case .bool(let b) = v else { throw badBody("'replace' must be true or false") }
                target.replace = b
            default:
                throw badBody("unknown member '\(k)'; expected \(linkMembers.map { "'\($0)'" }.joined(separator: ", "))")
            }
        }
        guard let program else { throw badBody("expected 'program', the name of a program of the load") }
        return LinkRequest(program: program, target: target, json: body.text)
    }
}

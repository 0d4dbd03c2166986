import BPFObject
import DepotStore
import Foundation

/// Audit rows from requests: who (the credential's name), from where, what, the ids it touched
/// (path parameters, and the `Location` of what it created), its status, and what it changed
/// (the handler's `auditChange`, else a JSON body, else the body's size).
enum AuditTrail {
    /// JSON bodies up to this size are kept whole; larger ones by size and digest.
    static let bodyLimit = 4096

    static func record(_ request: HTTPRequest, _ response: HTTPResponse) -> AuditRecord {
        var r = AuditRecord(at: Date(), client: request.client?.name, address: request.remoteAddress, requestID: request.id,
                            method: request.method.rawValue, route: request.route ?? ServiceMetrics.unmatchedRoute,
                            path: request.path, status: response.status.rawValue)
        ids(route: r.route, id: request.pathParameters["id"], into: &r)
        if let location = response.headers["Location"] { created(location, into: &r) }
        // An upload of bytes stored before (200) has no Location: its id is in the body.
        if r.route == "/v1/objects", r.objectID == nil, response.status == .ok,
           case .string(let id)? = (try? JSONValue(parsing: response.body))?["id"] {
            r.objectID = id
        }
        if let change = response.auditChange {
            r.change = change.text
        } else if !request.body.isEmpty {
            if request.body.count <= bodyLimit, let json = try? JSONValue(parsing: request.body) {
                r.change = JSONValue.object([("request", json)]).text
            } else {
                // Not hashed again here (an upload's id is its SHA-256 already): its size.
                r.change = JSONValue.object([("bytes", .int(Int64(request.body.count)))]).text
            }
        }
        return r
    }

    /// A request answered before any handler ran (refused for its credential, its size, its
    /// route): what its head says.
    static func record(_ trace: RequestTrace, _ response: HTTPResponse) -> AuditRecord {
        var r = AuditRecord(at: Date(), client: trace.client, address: trace.remote, requestID: trace.id,
                            method: trace.method.rawValue, route: trace.route, path: trace.path, status: response.status.rawValue)
        if let problem = try? JSONValue(parsing: response.body), case .string(let type)? = problem["type"] {
            r.change = JSONValue.object([("refused", .string(type))]).text
        }
        return r
    }

    static func ids(route: String, id: String?, into r: inout AuditRecord) {
        guard let id else { return }
        if route.hasPrefix("/v1/objects/") { r.objectID = id }
        if route.hasPrefix("/v1/loads/") { r.loadID = Int64(id) }
        if route.hasPrefix("/v1/links/") { r.linkID = Int64(id) }
    }

    static func created(_ location: String, into r: inout AuditRecord) {
        let parts = location.split(separator: "/")
        guard parts.count == 3, parts[0] == "v1" else { return }
        switch parts[1] {
        case "objects": r.objectID = String(parts[2])
        case "loads": r.loadID = Int64(parts[2])
        case "links": r.linkID = Int64(parts[2])
        default: break
        }
    }
}

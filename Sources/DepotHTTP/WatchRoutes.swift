import BPFObject
import DepotCore
import Foundation

/// `?watch=1` (an event stream) and `Prefer: wait=N` (a long poll) on live reads.
extension DepotRoutes {
    /// Answers a live read now, as an event stream of its changes, or as a long poll.
    /// `read` is called once now (its errors are this request's answer) and then by the watch
    /// thread at every interval; a read that fails later means the load is gone.
    static func watchable<R: Sendable>(
        _ req: HTTPRequest, load: Int64, event: String, read: @escaping @Sendable () throws(DepotError) -> R,
        tag: @escaping @Sendable (R) -> EntityTag, render: @escaping @Sendable (R) -> HTTPResponse
    ) throws -> HTTPResponse {
        let interval = try intervalParameter(req)
        let first = try read()
        let state: @Sendable () -> WatchState = {
            guard let now = try? read() else { return .ended }
            return .value(tag: tag(now), render: { render(now) })
        }
        if try watchParameter(req) {
            let lastEventID = req.headers["Last-Event-ID"].map { String($0.trimmingOWS) }
            let end = JSONValue.object([("load", .int(load))]).utf8
            return .watching(WatchSpec(mode: .stream(interval: interval, event: event, lastEventID: lastEventID, endData: end),
                                       key: watchKey(req), read: state))
        }
        let current = tag(first)
        if let wait = try preferWait(req), let condition = EntityTagCondition(ifNoneMatchIn: req.headers),
           condition.matchesWeakly(current) {
            let seconds = Int(wait.components.seconds)
            return .watching(WatchSpec(mode: .longPoll(wait: wait, clientTag: current, interval: min(interval, .milliseconds(100))),
                                       key: watchKey(req), read: state),
                             headers: ["Preference-Applied": "wait=\(seconds)", "Vary": "Prefer"])
        }
        if req.isNotModified(current: current) { return .notModified(etag: current) }
        var response = render(first)
        response.headers.set("ETag", current.headerValue)
        return response
    }

    /// What a watch reads: the path and the query but for `watch` and `interval`, which only say
    /// how to watch. Watchers of one key share their reads (`WatchSpec.key`).
    static func watchKey(_ req: HTTPRequest) -> String {
        var key = req.path
        for (name, value) in req.query.pairs.sorted(by: { ($0.name, $0.value) < ($1.name, $1.value) })
        where name != "watch" && name != "interval" {
            key += "\u{0}\(name)=\(value)"
        }
        return key
    }

    /// `watch=1` (or `true`): an event stream; absent, `0` or `false`: a plain read.
    static func watchParameter(_ req: HTTPRequest) throws(HTTPProblem) -> Bool {
        guard let v = req.query["watch"] else { return false }
        switch v {
        case "1", "true": return true
        case "0", "false": return false
        default: throw badParameter("watch", "1 or 0", v)
        }
    }

    /// `interval=500ms`, `2s`, or a number of seconds; 50 ms to 60 s, 1 s by default.
    static func intervalParameter(_ req: HTTPRequest) throws(HTTPProblem) -> Duration {
        guard let text = req.query["interval"] else { return WatchSpec.defaultInterval }
        // Milliseconds, checked as a number before any conversion (1e308s must not trap).
        var ms: Double?
        if text.hasSuffix("ms") {
            ms = Double(text.dropLast(2))
        } else if text.hasSuffix("s") {
            ms = Double(text.dropLast()).map { $0 * 1000 }
        } else {
            ms = Double(text).map { $0 * 1000 }
        }
        var d: Duration?
        if let ms, ms.isFinite, ms >= 50, ms <= 60_000 { d = .milliseconds(Int64(ms.rounded())) }
        guard let d, d >= WatchSpec.minimumInterval, d <= WatchSpec.maximumInterval else {
            throw badParameter("interval", "a duration from 50ms to 60s such as 500ms or 2s", text)
        }
        return d
    }

    /// `Prefer: wait=N` (RFC 7240), at most 60 s; nil without one.
    static func preferWait(_ req: HTTPRequest) throws(HTTPProblem) -> Duration? {
        guard let prefer = req.headers["Prefer"] else { return nil }
        for part in prefer.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, kv[0].lowercased() == "wait" else { continue }
            guard let n = Int(kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))), n >= 0 else {
                throw HTTPProblem(status: .badRequest, type: "bad-parameter", detail: "Prefer: expected wait=<seconds>, found '\(part)'")
            }
            return .seconds(min(n, Int(WatchSpec.maximumWait.components.seconds)))
        }
        return nil
    }

    /// `{"variables": [...]}` written directly, without a JSONValue tree.
    @Sendable static func variablesBody(_ live: LiveRead) -> HTTPResponse {
        let values = live.views()
        var body: [UInt8] = []
        body.reserveCapacity(16 + values.count * 100)
        JSONValue.appendRaw(#"{"variables":["#, to: &body)
        for (i, v) in values.enumerated() {
            if i > 0 { body.append(UInt8(ascii: ",")) }
            v.appendJSON(to: &body)
        }
        JSONValue.appendRaw("]}", to: &body)
        return .bytes(body, contentType: "application/json")
    }

    /// `follow=N` (1 to 100 levels) and `nodes=M` (1 to 10000, 1000 by default); nil without `follow`
    /// (or `follow=0`).
    static func followParameters(_ req: HTTPRequest) throws(HTTPProblem) -> (depth: Int, nodes: Int)? {
        guard req.query["follow"] != nil else {
            if req.query["nodes"] != nil { throw badParameter("nodes", "a node budget together with follow", req.query["nodes"] ?? "") }
            return nil
        }
        let depth = try intParameter(req, "follow", default: 0, range: 0...Depot.maxFollowDepth)
        let nodes = try intParameter(req, "nodes", default: Depot.defaultFollowNodes, range: 1...Depot.maxFollowNodes)
        return depth == 0 ? nil : (depth, nodes)
    }
}

/// A body rendered once, with its content tag.
struct RenderedRead: Sendable {
    let body: [UInt8]
    let tag: EntityTag

    init(_ body: [UInt8]) {
        self.body = body
        self.tag = EntityTag(hex: FollowedRead.hash(body), weak: true)
    }

    var response: HTTPResponse { .bytes(body, contentType: "application/json") }
}

#if canImport(Glibc)
import Glibc
#endif
import Logging

/// How a route's handler runs.
///
/// MHD's own threads answer `.immediate` handlers in the access-handler call, with no thread hop
/// (measured at the speed of a bare C server): use it for cheap reads from memory, 304s and
/// metrics. `.deferred` handlers run on the worker pool while the connection is suspended
/// (about 40% slower per request, but MHD's threads stay free): use it for anything that can
/// block — ELF parsing, bpf() loads, SQLite writes.
public enum HTTPHandler: Sendable {
    case immediate(@Sendable (HTTPRequest) throws -> HTTPResponse)
    case deferred(@Sendable (HTTPRequest) throws -> HTTPResponse)

    var body: @Sendable (HTTPRequest) throws -> HTTPResponse {
        switch self {
        case .immediate(let f), .deferred(let f): f
        }
    }

    public var isDeferred: Bool {
        if case .deferred = self { return true }
        return false
    }
}

/// The outcome of looking a request up.
public enum RouteMatch: Sendable {
    case found(HTTPHandler, parameters: [String: String])
    /// No route has this path.
    case notFound
    /// Some route has this path, but not for this method.
    case methodNotAllowed(allowed: [HTTPMethod])
}

/// Method + path patterns such as `/objects/{name}/variables/{variable}`.
///
/// A `{param}` segment matches one whole, non-empty path segment (percent-decoded, so it may
/// contain `/` sent as `%2F`). Literal segments win over parameters at the same position, so
/// `/objects/search` can sit beside `/objects/{name}`. HEAD falls back to the GET route.
public struct Router: Sendable {
    private final class Node: @unchecked Sendable {
        // Only mutated while the router is built (through `add`, which copies on write).
        var literals: [String: Node] = [:] {
            didSet { literalList = literals.map { ($0.key, $0.value) } }
        }
        /// `literals` as an array: a node has a handful, and comparing a segment with each (equal
        /// lengths first) costs less than hashing it.
        private(set) var literalList: [(String, Node)] = []
        var parameter: Node?
        var routes: [HTTPMethod: (handler: HTTPHandler, parameterNames: [String])] = [:] {
            didSet { routeList = routes.map { ($0.key, $0.value) } }
        }
        /// `routes` as an array, for the same reason.
        private(set) var routeList: [(HTTPMethod, (handler: HTTPHandler, parameterNames: [String]))] = []
        /// The GET route's fast path, if it has one.
        var fastGET: FastPath?
        /// The pattern first registered here, as written (`/v1/loads/{id}`): the route's name in
        /// metrics and logs, whatever the path held.
        var pattern: String?

        func literal(_ segment: String) -> Node? {
            for (name, node) in literalList where name == segment { return node }
            return nil
        }

        func route(_ method: HTTPMethod) -> (handler: HTTPHandler, parameterNames: [String])? {
            for (m, r) in routeList where m.rawValue == method.rawValue { return r }
            return nil
        }

        func copy() -> Node {
            let n = Node()
            n.literals = literals.mapValues { $0.copy() }
            n.parameter = parameter?.copy()
            n.routes = routes
            n.fastGET = fastGET
            n.pattern = pattern
            return n
        }
    }

    private var root = Node()

    public init() {}

    /// Registers `handler` for `method` and `pattern`; a second registration of the same
    /// method and pattern replaces the first.
    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: HTTPHandler) {
        add(method, pattern, handler, fastPath: nil)
    }

    private mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: HTTPHandler, fastPath: FastPath?) {
        if !isKnownUniquelyReferenced(&root) { root = root.copy() }
        var node = root
        var names: [String] = []
        for segment in Self.patternSegments(pattern) {
            if segment.hasPrefix("{") && segment.hasSuffix("}") && segment.count > 2 {
                names.append(String(segment.dropFirst().dropLast()))
                if node.parameter == nil { node.parameter = Node() }
                node = node.parameter ?? node
            } else {
                let next = node.literals[segment] ?? Node()
                node.literals[segment] = next
                node = next
            }
        }
        node.routes[method] = (handler, names)
        if method == .GET { node.fastGET = fastPath }
        if node.pattern == nil { node.pattern = pattern.hasPrefix("/") ? pattern : "/" + pattern }
        var fast: [FastRoute] = []
        Self.collectFastRoutes(root, [], into: &fast)
        fastRoutes = fast
    }

    public mutating func get(_ pattern: String, _ handler: HTTPHandler) { add(.GET, pattern, handler) }
    /// A GET route with a fast path for its common case (see `FastPath`).
    public mutating func get(_ pattern: String, _ handler: HTTPHandler, fastPath: @escaping FastPath) {
        add(.GET, pattern, handler, fastPath: fastPath)
    }
    public mutating func post(_ pattern: String, _ handler: HTTPHandler) { add(.POST, pattern, handler) }
    public mutating func put(_ pattern: String, _ handler: HTTPHandler) { add(.PUT, pattern, handler) }
    public mutating func patch(_ pattern: String, _ handler: HTTPHandler) { add(.PATCH, pattern, handler) }
    public mutating func delete(_ pattern: String, _ handler: HTTPHandler) { add(.DELETE, pattern, handler) }

    /// Looks up decoded path segments (see `HTTPRequest.pathSegments`).
    public func match(_ method: HTTPMethod, segments: [String]) -> RouteMatch {
        resolve(method, segments: segments).match
    }

    /// `match` plus the pattern of the route the path belongs to (for a 405 too); nil for a 404.
    public func resolve(_ method: HTTPMethod, segments: [String]) -> (match: RouteMatch, pattern: String?) {
        var captured: [String] = []
        captured.reserveCapacity(segments.count)
        var allowed: Set<HTTPMethod> = []
        var pattern: String?
        if let (route, values) = find(root, segments[...], method, &captured, &allowed, &pattern) {
            var parameters = [String: String](minimumCapacity: route.parameterNames.count)
            for (name, value) in zip(route.parameterNames, values) { parameters[name] = value }
            return (.found(route.handler, parameters: parameters), pattern)
        }
        if allowed.isEmpty { return (.notFound, nil) }
        if allowed.contains(.GET) { allowed.insert(.HEAD) }
        return (.methodNotAllowed(allowed: Self.ordered(allowed)), pattern)
    }

    /// The fast path of the GET route a raw request target resolves to, with its parameter
    /// values and the route's pattern; nil when that route has none, when there is no such
    /// route, or when the target has a query (a fast path answers the plain read only).
    ///
    /// Matches the target's bytes against the few routes that have a fast path (`fastRoutes`)
    /// instead of walking the tree: literal segments are compared in place, only parameters
    /// become strings. `find` would pick another route only where a parameter's value equals a
    /// literal beside it in the tree (literals win); such a target gets nil, and the ordinary
    /// route answers it. Segments are percent-decoded as `RequestTarget.segments` decodes them.
    func fastRoute(target: UnsafeBufferPointer<UInt8>) -> (FastPath, parameters: [String], pattern: String)? {
        for b in target where b == UInt8(ascii: "?") || b == UInt8(ascii: "#") { return nil }
        let start = target.first == UInt8(ascii: "/") ? 1 : 0
        var captured: [String] = []
        next: for route in fastRoutes {
            let matched: Bool? = route.bytes.withUnsafeBufferPointer { literals in
                captured.removeAll(keepingCapacity: true)
                captured.reserveCapacity(route.parameters)
                var at = start
                var done = start == target.count
                for segment in route.segments {
                    guard !done else { return false }
                    var end = at
                    var escaped = false
                    while end < target.count && target[end] != UInt8(ascii: "/") {
                        if target[end] == UInt8(ascii: "%") { escaped = true }
                        end += 1
                    }
                    let raw = UnsafeBufferPointer(rebasing: target[at..<end])
                    done = end == target.count
                    at = end + 1
                    var decoded: String?
                    if escaped {
                        guard let d = RequestTarget.percentDecode(Substring(decoding: raw, as: UTF8.self), plusIsSpace: false) else { return nil }
                        decoded = d
                    }
                    if !segment.isParameter {
                        let name = UnsafeBufferPointer(rebasing: literals[segment.literal])
                        let same = decoded.map { $0.utf8.elementsEqual(name) } ?? Self.equal(raw, name)
                        guard same else { return false }
                    } else {
                        let value = decoded ?? String(decoding: raw, as: UTF8.self)
                        guard !value.isEmpty else { return false }
                        for sibling in route.siblings[segment.siblings] where value.utf8.elementsEqual(literals[sibling]) { return nil }
                        captured.append(value)
                    }
                }
                return done
            }
            switch matched {
            case nil: return nil
            case false?: continue next
            case true?: return (route.fast, captured, route.pattern)
            }
        }
        return nil
    }

    private static func equal(_ raw: UnsafeBufferPointer<UInt8>, _ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard raw.count == name.count else { return false }
        guard let a = raw.baseAddress, let b = name.baseAddress else { return name.isEmpty }
        return memcmp(a, b, name.count) == 0
    }

    /// A GET route with a fast path, as `fastRoute` matches it. Its segments are plain values
    /// (ranges into one byte array), so walking them retains nothing.
    private final class FastRoute: Sendable {
        enum PathSegment {
            case literal([UInt8])
            /// The literals beside the parameter in the tree: a value equal to one of them may
            /// belong to another route.
            case parameter(siblings: [[UInt8]])
        }
        struct Segment: Sendable {
            let isParameter: Bool
            /// A literal's bytes in `bytes`.
            let literal: Range<Int>
            /// A parameter's sibling literals: ranges in `siblings`.
            let siblings: Range<Int>
        }
        let segments: [Segment]
        /// Every literal's bytes, one after another.
        let bytes: [UInt8]
        /// Ranges of `bytes`: the sibling literals of every parameter.
        let siblings: [Range<Int>]
        let fast: FastPath
        let pattern: String
        let parameters: Int

        init(path: [PathSegment], fast: @escaping FastPath, pattern: String) {
            var segments: [Segment] = []
            var bytes: [UInt8] = []
            var siblings: [Range<Int>] = []
            func add(_ literal: [UInt8]) -> Range<Int> {
                bytes += literal
                return bytes.count - literal.count..<bytes.count
            }
            for p in path {
                switch p {
                case .literal(let name):
                    segments.append(Segment(isParameter: false, literal: add(name), siblings: 0..<0))
                case .parameter(let names):
                    let first = siblings.count
                    for name in names { siblings.append(add(name)) }
                    segments.append(Segment(isParameter: true, literal: 0..<0, siblings: first..<siblings.count))
                }
            }
            self.segments = segments
            self.bytes = bytes
            self.siblings = siblings
            self.fast = fast
            self.pattern = pattern
            self.parameters = segments.reduce(0) { n, s in s.isParameter ? n + 1 : n }
        }
    }

    private var fastRoutes: [FastRoute] = []

    /// Every GET route with a fast path, from the tree (after each registration: a later route
    /// can add a literal beside a parameter, or replace a fast path).
    private static func collectFastRoutes(_ node: Node, _ path: [FastRoute.PathSegment], into out: inout [FastRoute]) {
        if let fast = node.fastGET, let pattern = node.pattern, node.route(.GET) != nil {
            out.append(FastRoute(path: path, fast: fast, pattern: pattern))
        }
        for (name, child) in node.literalList {
            collectFastRoutes(child, path + [.literal(Array(name.utf8))], into: &out)
        }
        if let child = node.parameter {
            collectFastRoutes(child, path + [.parameter(siblings: node.literalList.map { Array($0.0.utf8) })], into: &out)
        }
    }

    /// Runs the matching handler synchronously, whatever its kind: 404/405 problems for misses,
    /// thrown errors mapped to problems. What the server does, minus sockets, auth and threads.
    public func respond(to request: HTTPRequest) -> HTTPResponse {
        switch match(request.method, segments: request.pathSegments) {
        case .notFound:
            return .problem(.notFound(path: request.path))
        case .methodNotAllowed(let allowed):
            return .problem(.methodNotAllowed(request.method, path: request.path, allowed: allowed))
        case .found(let handler, let parameters):
            var request = request
            request.pathParameters = parameters
            return Self.run(handler.body, request)
        }
    }

    /// Calls a handler, turning a thrown error into its problem (or a 500 that hides it; the
    /// error itself goes to `logger`, or to stderr without one).
    static func run(_ body: @Sendable (HTTPRequest) throws -> HTTPResponse, _ request: HTTPRequest,
                    logger: Logger? = nil) -> HTTPResponse {
        do {
            return try body(request)
        } catch let error as any HTTPProblemConvertible {
            return .problem(error.problem)
        } catch {
            if let logger {
                logger.error("request \(request.method) \(request.path) failed: \(error)", metadata: ["request_id": .string(request.id)])
            } else {
                StandardError.write("bpfdepot: request \(request.id) \(request.method) \(request.path) failed: \(error)\n")
            }
            return .problem(.internalError(requestID: request.id))
        }
    }

    private func find(
        _ node: Node, _ rest: ArraySlice<String>, _ method: HTTPMethod,
        _ captured: inout [String], _ allowed: inout Set<HTTPMethod>, _ pattern: inout String?
    ) -> ((handler: HTTPHandler, parameterNames: [String]), [String])? {
        guard let segment = rest.first else {
            if let route = node.route(method) ?? (method == .HEAD ? node.route(.GET) : nil) {
                pattern = node.pattern
                return (route, captured)
            }
            if allowed.isEmpty, !node.routes.isEmpty { pattern = node.pattern }
            allowed.formUnion(node.routes.keys)
            return nil
        }
        if let next = node.literal(segment),
           let hit = find(next, rest.dropFirst(), method, &captured, &allowed, &pattern) {
            return hit
        }
        if let next = node.parameter, !segment.isEmpty {
            captured.append(segment)
            if let hit = find(next, rest.dropFirst(), method, &captured, &allowed, &pattern) { return hit }
            captured.removeLast()
        }
        return nil
    }

    private static func patternSegments(_ pattern: String) -> [String] {
        var p = Substring(pattern)
        if p.first == "/" { p = p.dropFirst() }
        if p.isEmpty { return [] }
        return p.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    }

    private static let methodOrder: [HTTPMethod] = [.GET, .HEAD, .POST, .PUT, .PATCH, .DELETE, .OPTIONS]

    private static func ordered(_ methods: Set<HTTPMethod>) -> [HTTPMethod] {
        methodOrder.filter { methods.contains($0) }
            + methods.filter { !methodOrder.contains($0) }.sorted { $0.rawValue < $1.rawValue }
    }
}

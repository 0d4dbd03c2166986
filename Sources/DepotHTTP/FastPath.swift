#if canImport(Glibc)
import Glibc
#endif
import CMicroHTTPD

/// A cheaper answer for a GET route's common case, tried before an `HTTPRequest` is built: it
/// gets the route's `{param}` values (in pattern order, percent-decoded as the route's handler
/// would see them) and reads the header fields it needs, and returns nil to send the request
/// down the ordinary route, which then answers it (errors included). Whatever it returns must be
/// what the route's handler would answer for the same request. It never sees the query or a
/// body: only a route whose answer depends on neither may have one; requests that announce a
/// body, HEAD and other methods always take the ordinary route.
public typealias FastPath = @Sendable (_ request: FastRequest) -> PreparedResponse?

/// What a fast path sees of a request. Header fields are read from the server's own list when
/// asked for (nothing is collected that the path does not read), so a `FastRequest` is only
/// valid during the fast path's call: do not keep it.
public struct FastRequest {
    public let parameters: [String]
    private let fields: Fields

    private enum Fields {
        case connection(OpaquePointer)
        case headers(HTTPHeaders)
    }

    init(parameters: [String], connection: OpaquePointer) {
        self.parameters = parameters
        self.fields = .connection(connection)
    }

    public init(parameters: [String], headers: HTTPHeaders) {
        self.parameters = parameters
        self.fields = .headers(headers)
    }

    /// The first value of `name` (ASCII case ignored), or nil.
    public func header(_ name: String) -> String? {
        withHeader(name) { value, _ in value.map { String(cString: $0) } }
    }

    /// How many fields are called `name`.
    public func count(_ name: String) -> Int {
        withHeader(name) { _, n in n }
    }

    /// Calls `body` with the first value of `name` as a C string (nil when absent) and the
    /// number of fields called `name`, without making a `String` of the value.
    public func withHeader<R>(_ name: String, _ body: (UnsafePointer<CChar>?, Int) -> R) -> R {
        switch fields {
        case .connection(let connection):
            var n: UInt32 = 0
            let first = name.withCString { cmhd_header(connection, $0, &n) }
            return body(first, Int(n))
        case .headers(let headers):
            let values = headers.values(for: name)
            guard let first = values.first else { return body(nil, 0) }
            return first.withCString { body($0, values.count) }
        }
    }

    /// Every header field (the rare case that needs them all).
    public var headers: HTTPHeaders {
        switch fields {
        case .connection(let connection): ServerCore.headers(of: connection)
        case .headers(let headers): headers
        }
    }
}

/// A response made once and sent many times by a fast path: the response, and its header
/// fields already checked and laid out as C strings for the server. The server also keeps one
/// MHD response of it per thread that sends it, queued again with only `X-Request-Id` replaced.
public final class PreparedResponse: Sendable {
    public let response: HTTPResponse
    /// `name\0value\0` for every field the server may send (see `ServerCore.isSendable`).
    let fieldBlock: [CChar]
    let fieldCount: Int
    /// The MHD responses kept per thread (`cmhd_kept`: atomics, safe from any thread).
    nonisolated(unsafe) let kept: OpaquePointer?

    public init(_ response: HTTPResponse) {
        self.response = response
        var block: [CChar] = []
        var n = 0
        for (name, value) in response.headers where ServerCore.isSendable(name: name, value: value) {
            for b in name.utf8 { block.append(CChar(bitPattern: b)) }
            block.append(0)
            for b in value.utf8 { block.append(CChar(bitPattern: b)) }
            block.append(0)
            n += 1
        }
        fieldBlock = block
        fieldCount = n
        kept = cmhd_kept_new()
    }

    deinit {
        cmhd_kept_free(kept)
    }

    /// Calls `body` with each field's name and value.
    func forEachField(_ body: (UnsafePointer<CChar>, UnsafePointer<CChar>) -> Void) {
        fieldBlock.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress else { return }
            var p = base
            for _ in 0..<fieldCount {
                let name = p
                p += strlen(name) + 1
                let value = p
                p += strlen(value) + 1
                body(name, value)
            }
        }
    }
}

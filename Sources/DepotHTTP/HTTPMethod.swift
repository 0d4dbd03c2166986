/// An HTTP request method. A struct rather than an enum: MHD hands over whatever token the client
/// sent, and a router must be able to answer 405 for methods it has never heard of.
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    public static let GET = HTTPMethod(rawValue: "GET")
    public static let HEAD = HTTPMethod(rawValue: "HEAD")
    public static let POST = HTTPMethod(rawValue: "POST")
    public static let PUT = HTTPMethod(rawValue: "PUT")
    public static let PATCH = HTTPMethod(rawValue: "PATCH")
    public static let DELETE = HTTPMethod(rawValue: "DELETE")
    public static let OPTIONS = HTTPMethod(rawValue: "OPTIONS")

    /// Methods that change server state; with a bearer token configured, these need it.
    public var isMutating: Bool {
        self == .POST || self == .PUT || self == .PATCH || self == .DELETE
    }

    public var description: String { rawValue }
}

import BPFObject
import DepotHTTP
import Foundation
import Testing

/// Decodes a JSON body with Foundation, independent of the code under test.
func jsonObject(_ body: [UInt8]) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
}

/// Asserts an RFC 9457 problem body: the four standard members, the media type, and a status
/// member equal to the response status.
func expectProblem(
    _ status: Int, contentType: String?, body: [UInt8], type: String,
    sourceLocation: SourceLocation = #_sourceLocation
) -> [String: Any] {
    #expect(contentType == "application/problem+json", sourceLocation: sourceLocation)
    guard let object = jsonObject(body) else {
        Issue.record("expected a json problem body, found \(String(decoding: body, as: UTF8.self))", sourceLocation: sourceLocation)
        return [:]
    }
    #expect(object["type"] as? String == HTTPProblem.typePrefix + type, sourceLocation: sourceLocation)
    #expect(object["status"] as? Int == status, sourceLocation: sourceLocation)
    #expect((object["title"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
    let detail = object["detail"] as? String ?? ""
    #expect(!detail.isEmpty, sourceLocation: sourceLocation)
    #expect(detail.first.map { !$0.isUppercase } ?? false, "details are lowercase: \(detail)", sourceLocation: sourceLocation)
    return object
}

/// A request built from a target, for tests that call the router without a socket.
func request(
    _ method: HTTPMethod, _ target: String, headers: HTTPHeaders = [:], body: [UInt8] = []
) throws -> HTTPRequest {
    try #require(HTTPRequest(method: method, target: target, headers: headers, body: body))
}

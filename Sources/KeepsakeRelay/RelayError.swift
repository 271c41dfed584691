import Foundation
import Hummingbird

/// A refused relay request: an HTTP status and a JSON body
/// `{"error": {"code": "...", "message": "..."}}` that says what to fix.
public struct RelayError: Error, HTTPResponseError, Sendable, Equatable {
    /// The HTTP status.
    public let status: HTTPResponse.Status
    /// A stable, machine-readable reason, e.g. `bad_signature`.
    public let code: String
    /// What was wrong and what to do.
    public let message: String
    /// Extra response headers (e.g. `Allow` on a 405).
    public let headers: HTTPFields

    /// A refusal with `status`, a stable `code` and a `message`.
    public init(_ status: HTTPResponse.Status, code: String, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    struct Body: Codable {
        struct Detail: Codable {
            let code: String
            let message: String
        }
        let error: Detail
    }

    /// The JSON error response.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try JSONEncoder().encode(Body(error: .init(code: code, message: message)))
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(
            status: status, headers: fields,
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func unknownTopic(_ name: String) -> RelayError {
        RelayError(.badRequest, code: "bad_topic",
                   "'\(name.prefix(80))' is not a topic name (contact-, revoked-, prekey-, message-, installation- or commits- and a hex ID)")
    }

    static func tooLarge(_ limit: Int) -> RelayError {
        RelayError(.contentTooLarge, code: "too_large", "the request body is larger than \(limit) bytes")
    }
}

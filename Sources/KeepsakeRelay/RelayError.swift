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

/// A backend the relay stores in (its database, its blob store) failed or could
/// not be reached. Answered 503 `storage_unavailable`; the cause goes to the log only.
struct StorageFailure: Error, CustomStringConvertible {
    let cause: any Error

    var description: String { "storage failed: \(cause)" }
}

extension RelayError {
    static let storageUnavailable = RelayError(
        .serviceUnavailable, code: "storage_unavailable", "the relay's storage failed or could not be reached; try again shortly",
        headers: [.retryAfter: "5"])
}

/// Stored backup contents that no longer match the size or digest taken at upload.
struct BlobDamaged: Error, CustomStringConvertible {
    let id: String
    let size: Int
    let expectedSize: Int

    var description: String {
        "the stored contents of backup \(id.prefix(8))… do not match their upload (\(size) of \(expectedSize) bytes read, or a different digest)"
    }
}

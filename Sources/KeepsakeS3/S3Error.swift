/// An S3 operation that failed: what was being done, and why, in words an
/// operator can act on. Never carries credentials or signatures.
public struct S3Error: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// The endpoint could not be reached, or the connection broke or timed out.
        case unreachable
        /// The server answered with an error status and S3 error code (`NoSuchBucket`, `AccessDenied`...).
        case refused(status: Int, code: String)
        /// The server's answer lacks what the operation needs (no `UploadId`, no `ETag`...).
        case malformedAnswer
        /// The location, endpoint or credentials given are not usable.
        case badConfiguration
    }

    public let reason: Reason
    /// The S3 operation, e.g. "UploadPart".
    public let operation: String
    /// What happened, and what to do.
    public let detail: String

    public init(_ reason: Reason, operation: String, _ detail: String) {
        self.reason = reason
        self.operation = operation
        self.detail = detail
    }

    public var description: String { "S3 \(operation) failed: \(detail)" }

    /// The object or bucket does not exist (404).
    public var isNotFound: Bool {
        if case .refused(404, _) = reason { true } else { false }
    }
}

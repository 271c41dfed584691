import Foundation
import KeepsakeCrypto

/// Credentials for an S3-compatible object store. The secret stays in secure memory.
public struct S3Credentials: Sendable {
    /// The access key ID (not secret: it names the key in every request).
    public let accessKeyID: String
    let secretAccessKey: SecureBytes
    /// A temporary session token, sent as `x-amz-security-token` and signed.
    public let sessionToken: String?

    /// Copies `secretAccessKey` into secure memory; the caller wipes its own copy.
    public init(accessKeyID: String, secretAccessKey: some Collection<UInt8>, sessionToken: String? = nil) throws {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = try SecureBytes(copying: secretAccessKey)
        self.sessionToken = sessionToken
    }
}

/// AWS Signature Version 4 (header form): what S3-compatible servers check on
/// every request. No S3 client package is available here, so this is written
/// from AWS's specification and tested against its published examples
/// (the SigV4 test suite and the S3 API reference's signed requests).
public struct SigV4Signer: Sendable {
    /// A request as it will be sent, before signing.
    public struct Request: Sendable {
        public var method: String
        /// The `Host` header: host, and port when not the scheme's default.
        public var host: String
        /// The path, not yet percent-encoded (an object key may hold any character).
        public var path: String
        /// Query parameters, not yet percent-encoded; a parameter without a value has "".
        public var query: [(name: String, value: String)]
        /// Other headers to sign and send.
        public var headers: [(name: String, value: String)]
        /// Lowercase hex SHA-256 of the body, or `unsignedPayload`.
        public var payloadHash: String

        public init(method: String, host: String, path: String, query: [(name: String, value: String)] = [],
                    headers: [(name: String, value: String)] = [], payloadHash: String) {
            self.method = method
            self.host = host
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    /// The hash of an empty body.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    /// Sent instead of a body hash when the body is not signed (S3 only).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    public let credentials: S3Credentials
    public let region: String
    /// The signing service name: "s3" for object stores.
    public let service: String

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The headers to send with `request`, signed at `date`: the request's own
    /// headers, `host`, `x-amz-date`, `x-amz-content-sha256` (for S3), the session
    /// token when there is one, and `authorization`. Throws only when secure
    /// memory for the derived keys cannot be had.
    public func sign(_ request: Request, at date: Date) throws -> [(name: String, value: String)] {
        let (stamp, day) = Self.timestamps(date)
        var headers = request.headers + [("host", request.host), ("x-amz-date", stamp)]
        if service == "s3" { headers.append(("x-amz-content-sha256", request.payloadHash)) }
        if let token = credentials.sessionToken { headers.append(("x-amz-security-token", token)) }

        let canonicalHeaders: [(name: String, value: String)] = headers
            .map { (name: $0.name.lowercased(), value: Self.trimmed($0.value)) }
            .sorted { $0.name < $1.name }
        let signedHeaders = canonicalHeaders.map(\.name).joined(separator: ";")
        let canonicalQuery = Self.canonicalQuery(request.query)
        let headerLines: String = canonicalHeaders.map { "\($0.name):\($0.value)\n" }.joined()
        let canonicalRequest: String = [
            request.method, Self.encode(request.path, keepingSlashes: true), canonicalQuery, headerLines, signedHeaders, request.payloadHash,
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let requestHash = Hex.encode(Array(canonicalRequest.utf8).withUnsafeBytes { SHA256.hash($0) })
        let stringToSign = "AWS4-HMAC-SHA256\n\(stamp)\n\(scope)\n\(requestHash)"
        let signature = Hex.encode(try signingKey(day: day).withUnsafeBytes { key in Self.mac(key, stringToSign) })
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return headers + [("authorization", authorization)]
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request"), in secure memory.
    private func signingKey(day: String) throws -> SecureBytes {
        // "AWS4" + secret is the secret with a prefix: secure memory as well.
        var key = try SecureBytes(count: 4 + credentials.secretAccessKey.count)
        credentials.secretAccessKey.withUnsafeBytes { secret in
            key.withUnsafeMutableBytes { out in
                out.copyBytes(from: Array("AWS4".utf8))
                UnsafeMutableRawBufferPointer(rebasing: out[4...]).copyMemory(from: secret)
            }
        }
        for part in [day, region, service, "aws4_request"] {
            let next = try SecureBytes(count: HMACSHA256.outputBytes)
            key.withUnsafeBytes { k in
                Array(part.utf8).withUnsafeBytes { message in
                    next.withUnsafeMutableBytes { HMACSHA256.mac(key: k, message, into: $0) }
                }
            }
            key = next
        }
        return key
    }

    private static func mac(_ key: UnsafeRawBufferPointer, _ text: String) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: HMACSHA256.outputBytes)
        Array(text.utf8).withUnsafeBytes { message in out.withUnsafeMutableBytes { HMACSHA256.mac(key: key, message, into: $0) } }
        return out
    }

    /// Percent-encodes every byte but the unreserved ones (A–Z a–z 0–9 - . _ ~),
    /// and `/` too unless `keepingSlashes` (paths), as SigV4 requires.
    static func encode(_ text: String, keepingSlashes: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepingSlashes:
                out.append("/")
            default:
                out += "%" + Hex.encode([byte]).uppercased()
            }
        }
        return out
    }

    /// Parameters encoded, sorted by name then value, as `name=value` joined by `&`.
    static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        var pairs: [(name: String, value: String)] = []
        for parameter in query {
            pairs.append((encode(parameter.name, keepingSlashes: false), encode(parameter.value, keepingSlashes: false)))
        }
        pairs.sort { a, b in a.name != b.name ? a.name < b.name : a.value < b.value }
        return pairs.map { pair in pair.name + "=" + pair.value }.joined(separator: "&")
    }

    /// A header value with outer spaces removed and inner runs of spaces made one.
    private static func trimmed(_ value: String) -> String {
        value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    /// `x-amz-date` (yyyyMMdd'T'HHmmss'Z') and the scope's day (yyyyMMdd), in UTC.
    static func timestamps(_ date: Date) -> (stamp: String, day: String) {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let stamp = formatter.string(from: date)
        return (stamp, String(stamp.prefix(8)))
    }
}

import Foundation
import KeepsakeCrypto

/// How an installation signs an HTTP request to the relay: backup uploads,
/// prekey claims and prekey stock reads.
///
/// Headers: `Keepsake-Installation` (installation ID, hex), `Keepsake-Timestamp`
/// (milliseconds since 1970), `Keepsake-Nonce` (16 random bytes, hex),
/// `Keepsake-Content-Digest` (BLAKE2b-256 of the uploaded file, hex; of the
/// empty string for requests without a body) and `Keepsake-Signature` (base64 Ed25519, purpose
/// `keepsake/request/v1`) over the lines
/// `method \n path \n installation \n timestamp \n nonce \n digest`.
/// The relay accepts a timestamp within `RequestAuthentication.window` of its
/// clock (to bound what it remembers) and each nonce once.
public struct RequestAuthentication: Sendable, Equatable {
    /// The signing installation's ID (16 bytes).
    public let installation: [UInt8]
    /// When it was signed, in milliseconds since 1970.
    public let timestamp: Int64
    /// 16 random bytes: a signed request is accepted once.
    public let nonce: [UInt8]
    /// BLAKE2b-256 of the request body.
    public let contentDigest: [UInt8]
    /// Ed25519 signature over method, path, installation, timestamp, nonce and digest.
    public let signature: [UInt8]

    /// The content digest of a request without a body: BLAKE2b-256 of the empty string.
    public static let emptyBodyDigest = Blake2b.hash([])

    /// How far a request's timestamp may be from the relay's clock.
    public static let window: Int64 = 5 * 60 * 1000

    /// The HTTP headers that carry it.
    public enum Header {
        /// The installation ID, hex.
        public static let installation = "Keepsake-Installation"
        /// The timestamp, decimal milliseconds.
        public static let timestamp = "Keepsake-Timestamp"
        /// The nonce, hex.
        public static let nonce = "Keepsake-Nonce"
        /// The body's digest, hex.
        public static let contentDigest = "Keepsake-Content-Digest"
        /// The signature, hex.
        public static let signature = "Keepsake-Signature"
    }

    static func signedBytes(method: String, path: String, installation: [UInt8], timestamp: Int64, nonce: [UInt8], digest: [UInt8]) -> [UInt8] {
        Array([method, path, Hex.encode(installation), String(timestamp), Hex.encode(nonce), Hex.encode(digest)].joined(separator: "\n").utf8)
    }

    /// Signs a request as `installation`, now, with a fresh nonce.
    public static func sign(
        method: String, path: String, installation: [UInt8], contentDigest: [UInt8], with key: SigningKey, at time: Date = Date()
    ) -> RequestAuthentication {
        let timestamp = Int64(time.timeIntervalSince1970 * 1000), nonce = Random.bytes(16)
        let bytes = signedBytes(method: method, path: path, installation: installation, timestamp: timestamp, nonce: nonce, digest: contentDigest)
        return RequestAuthentication(installation: installation, timestamp: timestamp, nonce: nonce, contentDigest: contentDigest,
                                     signature: SignaturePurpose.request.sign(bytes, with: key))
    }

    /// The headers to send.
    public var headers: [(String, String)] {
        [(Header.installation, Hex.encode(installation)), (Header.timestamp, String(timestamp)), (Header.nonce, Hex.encode(nonce)),
         (Header.contentDigest, Hex.encode(contentDigest)), (Header.signature, Data(signature).base64EncodedString())]
    }

    /// Reads the headers (by name, case-insensitively); nil when one is missing or malformed.
    public init?(header: (String) -> String?) {
        guard let installation = header(Header.installation).flatMap(Hex.decode), installation.count == Topic.installationIDBytes,
              let timestamp = header(Header.timestamp).flatMap({ Int64($0) }),
              let nonce = header(Header.nonce).flatMap(Hex.decode), nonce.count == 16,
              let digest = header(Header.contentDigest).flatMap(Hex.decode),
              let signature = header(Header.signature).flatMap({ Data(base64Encoded: $0) }) else { return nil }
        self.init(installation: installation, timestamp: timestamp, nonce: nonce, contentDigest: digest, signature: Array(signature))
    }

    init(installation: [UInt8], timestamp: Int64, nonce: [UInt8], contentDigest: [UInt8], signature: [UInt8]) {
        self.installation = installation
        self.timestamp = timestamp
        self.nonce = nonce
        self.contentDigest = contentDigest
        self.signature = signature
    }

    /// Whether the installation whose Ed25519 key is `signingKey` signed this request for `method` and `path`.
    public func verify(method: String, path: String, signingKey: [UInt8]) -> Bool {
        let bytes = Self.signedBytes(method: method, path: path, installation: installation, timestamp: timestamp, nonce: nonce, digest: contentDigest)
        return SignaturePurpose.request.verify(signature, of: bytes, publicKey: signingKey)
    }
}

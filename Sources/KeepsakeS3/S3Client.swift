import AsyncHTTPClient
import Foundation
import KeepsakeCrypto
import NIOCore
import NIOHTTP1

/// The S3 operations the backup provider needs, on one bucket of an
/// S3-compatible object store (AWS S3, SeaweedFS, MinIO, Ceph...), signed with
/// `SigV4Signer` and sent with AsyncHTTPClient.
///
/// Every body sent is signed with its SHA-256 (`x-amz-content-sha256`), so the
/// server refuses a part that changed on the way. Failures are `S3Error`s that
/// name the operation.
public final class S3Client: Sendable {
    /// The object store's base URL (scheme, host, port).
    public let endpoint: URL
    public let bucket: String
    /// Path-style addressing (`endpoint/bucket/key`), which S3-compatible servers
    /// expect, or virtual-hosted (`bucket.endpoint/key`), AWS's default.
    public let pathStyle: Bool
    let signer: SigV4Signer
    private let http: HTTPClient
    private let host: String

    /// The connections S3 clients share unless given another HTTP client: it
    /// lives as long as the process, so nobody has to shut it down.
    public static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(5)
        // A stalled transfer fails after a minute without a byte; a slow one may take as long as it needs.
        configuration.timeout.read = .seconds(60)
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// A client of `bucket`. Without `endpoint`, AWS S3 in `region`
    /// (virtual-hosted); with one, path-style unless `pathStyle` says otherwise.
    public init(endpoint: URL? = nil, bucket: String, region: String, credentials: S3Credentials, pathStyle: Bool? = nil,
                httpClient: HTTPClient = S3Client.sharedHTTPClient) throws(S3Error) {
        guard Self.isBucketName(bucket) else {
            throw S3Error(.badConfiguration, operation: "configure",
                          "'\(bucket.prefix(70))' is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens)")
        }
        let base = endpoint ?? URL(string: "https://s3.\(region).amazonaws.com")!
        guard let scheme = base.scheme, scheme == "http" || scheme == "https", let baseHost = base.host, !baseHost.isEmpty,
              base.path.isEmpty || base.path == "/", base.query == nil else {
            throw S3Error(.badConfiguration, operation: "configure",
                          "the endpoint must be http(s)://host[:port] with no path, not '\(base.absoluteString.prefix(120))'")
        }
        self.endpoint = base
        self.bucket = bucket
        self.pathStyle = pathStyle ?? (endpoint != nil)
        let authority = base.port.map { "\(baseHost):\($0)" } ?? baseHost
        host = self.pathStyle ? authority : "\(bucket).\(authority)"
        signer = SigV4Signer(credentials: credentials, region: region)
        http = httpClient
    }

    /// S3's rule for new buckets: 3 to 63 of a–z, 0–9, `.` and `-`, starting and ending with a letter or digit.
    static func isBucketName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        func alphanumeric(_ byte: UInt8) -> Bool { (97...122).contains(byte) || (48...57).contains(byte) }
        return (3...63).contains(bytes.count) && alphanumeric(bytes.first!) && alphanumeric(bytes.last!)
            && bytes.allSatisfy { alphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    // MARK: - Objects

    /// An object's size and its contents as they arrive.
    public struct Download: Sendable {
        public let size: Int
        public let body: HTTPClientResponse.Body
    }

    /// Stores `body` under `key` in one request (PutObject).
    public func put(_ key: String, _ body: ByteBuffer) async throws(S3Error) {
        _ = try await send(.PUT, "PutObject", key: key, body: body)
    }

    /// Streams `key`'s contents (GetObject), or nil when there is no such object.
    public func get(_ key: String) async throws(S3Error) -> Download? {
        do throws(S3Error) {
            let response = try await send(.GET, "GetObject", key: key, deadline: .distantFuture)
            guard let size = response.headers.first(name: "content-length").flatMap(Int.init) else {
                throw S3Error(.malformedAnswer, operation: "GetObject", "the answer has no Content-Length")
            }
            return Download(size: size, body: response.body)
        } catch where error.isNotFound {
            return nil
        }
    }

    /// Deletes `key` (DeleteObject); deleting what is not there succeeds.
    public func delete(_ key: String) async throws(S3Error) {
        _ = try await send(.DELETE, "DeleteObject", key: key)
    }

    /// An object in a listing.
    public struct Object: Sendable, Equatable {
        public let key: String
        public let size: Int
        public let lastModified: Date
    }

    /// Every object whose key starts with `prefix` (ListObjectsV2, all pages).
    public func list(prefix: String) async throws(S3Error) -> [Object] {
        var objects: [Object] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let page = try Self.objectListing(try await answer(.GET, "ListObjectsV2", query: query))
            objects += page.objects
            token = page.next
        } while token != nil
        return objects
    }

    /// One page of ListObjectsV2: its objects, and the token of the next page when there is one.
    static func objectListing(_ xml: [UInt8]) throws(S3Error) -> (objects: [Object], next: String?) {
        var objects: [Object] = []
        for entry in S3XML.elements("Contents", in: xml).map(Array.init) {
            guard let key = S3XML.value("Key", in: entry), let modified = S3XML.value("LastModified", in: entry).flatMap(date) else {
                throw S3Error(.malformedAnswer, operation: "ListObjectsV2", "an entry of the listing has no Key or LastModified")
            }
            objects.append(Object(key: key, size: S3XML.value("Size", in: entry).flatMap(Int.init) ?? 0, lastModified: modified))
        }
        return (objects, S3XML.value("IsTruncated", in: xml) == "true" ? S3XML.value("NextContinuationToken", in: xml) : nil)
    }

    /// Throws unless the bucket exists and these credentials may use it (HeadBucket).
    public func checkBucket() async throws(S3Error) {
        _ = try await send(.HEAD, "HeadBucket", key: nil)
    }

    /// Creates the bucket (CreateBucket); for tests and first setups.
    public func createBucket() async throws(S3Error) {
        let region = signer.region
        let body = region == "us-east-1" ? nil : ByteBuffer(string: """
            <CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\
            <LocationConstraint>\(region)</LocationConstraint></CreateBucketConfiguration>
            """)
        _ = try await send(.PUT, "CreateBucket", key: nil, body: body)
    }

    // MARK: - Multipart uploads

    /// Starts a multipart upload of `key`; returns its upload ID (CreateMultipartUpload).
    public func startMultipartUpload(_ key: String) async throws(S3Error) -> String {
        let xml = try await answer(.POST, "CreateMultipartUpload", key: key, query: [("uploads", "")])
        guard let id = S3XML.value("UploadId", in: xml), !id.isEmpty else {
            throw S3Error(.malformedAnswer, operation: "CreateMultipartUpload", "the answer has no UploadId")
        }
        return id
    }

    /// Uploads part `number` (1 to 10,000; all but the last at least 5 MiB); returns its ETag (UploadPart).
    public func uploadPart(_ key: String, uploadID: String, number: Int, _ body: ByteBuffer) async throws(S3Error) -> String {
        let response = try await send(.PUT, "UploadPart", key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                                      body: body, deadline: .now() + .minutes(10))
        guard let tag = response.headers.first(name: "etag"), !tag.isEmpty else {
            throw S3Error(.malformedAnswer, operation: "UploadPart", "the answer to part \(number) has no ETag")
        }
        return tag
    }

    /// Joins the parts into the object, which becomes visible (CompleteMultipartUpload).
    public func completeMultipartUpload(_ key: String, uploadID: String, parts: [String]) async throws(S3Error) {
        var body = "<CompleteMultipartUpload>"
        for (index, tag) in parts.enumerated() {
            body += "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\(Self.escaped(tag))</ETag></Part>"
        }
        body += "</CompleteMultipartUpload>"
        let xml = try await answer(.POST, "CompleteMultipartUpload", key: key, query: [("uploadId", uploadID)], body: ByteBuffer(string: body))
        // S3 may answer 200 and report a failure in the body.
        if let code = S3XML.value("Code", in: xml) {
            throw S3Error(.refused(status: 200, code: code), operation: "CompleteMultipartUpload",
                          "\(code): \(S3XML.value("Message", in: xml) ?? "no message")")
        }
    }

    /// Drops an unfinished upload and its parts (AbortMultipartUpload).
    public func abortMultipartUpload(_ key: String, uploadID: String) async throws(S3Error) {
        _ = try await send(.DELETE, "AbortMultipartUpload", key: key, query: [("uploadId", uploadID)])
    }

    /// An unfinished multipart upload.
    public struct Upload: Sendable, Equatable {
        public let key: String
        public let uploadID: String
        public let initiated: Date
    }

    /// The unfinished multipart uploads of keys starting with `prefix` (ListMultipartUploads, all pages).
    public func unfinishedUploads(prefix: String) async throws(S3Error) -> [Upload] {
        var uploads: [Upload] = []
        var markers: (key: String, upload: String)?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.upload)] }
            let page = try Self.uploadListing(try await answer(.GET, "ListMultipartUploads", query: query))
            uploads += page.uploads
            markers = page.next
        } while markers != nil
        return uploads
    }

    /// One page of ListMultipartUploads: its uploads, and the markers of the next page when there is one.
    static func uploadListing(_ xml: [UInt8]) throws(S3Error) -> (uploads: [Upload], next: (key: String, upload: String)?) {
        var uploads: [Upload] = []
        for entry in S3XML.elements("Upload", in: xml).map(Array.init) {
            guard let key = S3XML.value("Key", in: entry), let id = S3XML.value("UploadId", in: entry),
                  let initiated = S3XML.value("Initiated", in: entry).flatMap(date) else {
                throw S3Error(.malformedAnswer, operation: "ListMultipartUploads", "an entry has no Key, UploadId or Initiated")
            }
            uploads.append(Upload(key: key, uploadID: id, initiated: initiated))
        }
        guard S3XML.value("IsTruncated", in: xml) == "true",
              let key = S3XML.value("NextKeyMarker", in: xml), let upload = S3XML.value("NextUploadIdMarker", in: xml) else {
            return (uploads, nil)
        }
        return (uploads, (key, upload))
    }

    // MARK: - Requests

    /// Sends a request whose answer is a small XML document, and returns it.
    private func answer(_ method: HTTPMethod, _ operation: String, key: String? = nil, query: [(String, String)] = [],
                        body: ByteBuffer? = nil) async throws(S3Error) -> [UInt8] {
        let response = try await send(method, operation, key: key, query: query, body: body)
        do {
            return Array(try await response.body.collect(upTo: 16 << 20).readableBytesView)
        } catch {
            throw S3Error(.unreachable, operation: operation, "the answer could not be read (\(Self.describe(error)))")
        }
    }

    /// Signs and sends one request; an error status becomes an `S3Error` with S3's code and message.
    private func send(_ method: HTTPMethod, _ operation: String, key: String?, query: [(String, String)] = [],
                      body: ByteBuffer? = nil, deadline: NIODeadline = .now() + .minutes(5)) async throws(S3Error) -> HTTPClientResponse {
        let path = pathStyle ? "/\(bucket)" + (key.map { "/" + $0 } ?? "") : "/" + (key ?? "")
        let payloadHash = body.map { bytes in Hex.encode(bytes.withUnsafeReadableBytes { SHA256.hash($0) }) } ?? SigV4Signer.emptyPayloadHash
        let signed: [(name: String, value: String)]
        do {
            signed = try signer.sign(.init(method: method.rawValue, host: host, path: path, query: query.map { ($0.0, $0.1) },
                                           payloadHash: payloadHash), at: Date())
        } catch {
            throw S3Error(.badConfiguration, operation: operation, "no secure memory to sign the request with")
        }
        let encodedQuery = SigV4Signer.canonicalQuery(query.map { ($0.0, $0.1) })
        let url = "\(endpoint.scheme!)://\(host)\(SigV4Signer.encode(path, keepingSlashes: true))" + (encodedQuery.isEmpty ? "" : "?" + encodedQuery)
        var request = HTTPClientRequest(url: url)
        request.method = method
        for header in signed { request.headers.replaceOrAdd(name: header.name, value: header.value) }
        if let body {
            request.body = .bytes(body)
        } else if method == .PUT || method == .POST {
            request.headers.replaceOrAdd(name: "content-length", value: "0")
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, deadline: deadline)
        } catch {
            throw S3Error(.unreachable, operation: operation, "\(endpoint.absoluteString) could not be reached (\(Self.describe(error)))")
        }
        guard response.status.code >= 300 else { return response }
        let xml = (try? await response.body.collect(upTo: 1 << 16)).map { Array($0.readableBytesView) } ?? []
        let code = S3XML.value("Code", in: xml) ?? response.status.reasonPhrase
        let message = S3XML.value("Message", in: xml).map { ": " + $0.prefix(300) } ?? ""
        let target = key.map { "\(bucket)/\($0)" } ?? bucket
        throw S3Error(.refused(status: Int(response.status.code), code: code), operation: operation,
                      "\(target): \(response.status.code) \(code)\(message)")
    }

    private static func describe(_ error: any Error) -> String {
        String(describing: error).prefix(200).description
    }

    private static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// S3's timestamps: ISO 8601 in UTC, with or without milliseconds.
    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}

/// A place in an object store written as `s3://bucket/prefix`: the bucket, and
/// the key prefix (empty, or ending in "/").
public struct S3Location: Sendable, Equatable {
    public let bucket: String
    public let prefix: String

    /// Parses `s3://bucket` or `s3://bucket/some/prefix`; nil when `text` is not an s3:// location.
    public init?(_ text: String) {
        guard text.hasPrefix("s3://") else { return nil }
        let rest = text.dropFirst("s3://".count)
        let bucket = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(bucket.count).drop { $0 == "/" }
        guard !bucket.isEmpty else { return nil }
        self.bucket = String(bucket)
        prefix = path.isEmpty || path.hasSuffix("/") ? String(path) : path + "/"
    }
}

import AsyncHTTPClient
import Foundation
import Synchronization
import KeepsakeTransport
import KeepsakeCrypto
import KeepsakeWire
import NIOCore

/// The relay's HTTP API (docs/relay-openapi.json) as a `RelayTransport`.
///
/// Uses one process-wide client unless given one; requests time out after
/// `timeout`. Refusals carry the relay's error code and message.
public struct RelayClient: RelayTransport {
    /// The default client: it fails at once when the relay cannot be reached
    /// (AsyncHTTPClient's own default keeps retrying the connection until the
    /// request times out), since messengers keep unsent envelopes and retry on the next sync.
    public static let defaultClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// The relay's address, e.g. `http://127.0.0.1:8787`.
    public let baseURL: URL
    let client: HTTPClient
    let timeout: TimeAmount

    /// Largest response body read, in bytes.
    static let maxResponseBytes = 64 * 1024 * 1024

    /// A client of the relay at `baseURL`; each request gives up after `timeout`.
    public init(baseURL: URL, client: HTTPClient = RelayClient.defaultClient, timeout: Duration = .seconds(30)) {
        self.baseURL = baseURL
        self.client = client
        self.timeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
    }

    /// A refused or failed request.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The relay answered with an error status and its JSON error.
        case refused(status: Int, code: String, message: String)
        /// The relay answered something that is not the API's JSON.
        case unexpectedResponse(status: Int)
        /// No answer: the relay is not running there, or the network is down.
        case unreachable(url: String, reason: String)

        /// What failed, and what to check.
        public var description: String {
            switch self {
            case let .refused(status, code, message): "the relay refused the request (\(status) \(code)): \(message)"
            case let .unexpectedResponse(status): "the relay answered with status \(status) and an unexpected body"
            case let .unreachable(url, reason): "cannot reach the relay at \(url) (\(reason)); check the URL and that it runs"
            }
        }

        /// The relay's error code, when it refused.
        public var code: String? { if case let .refused(_, code, _) = self { code } else { nil } }
    }

    /// Publishes a wire message to a topic (`POST /v1/topics/{topic}`); returns its cursor, 0 for a prekey upload.
    public func publish(_ data: [UInt8], to topic: Topic) async throws -> Int64 {
        // Prekey uploads are not topic items and have no cursor.
        struct Published: Decodable { let cursor: Int64? }
        return try await call(post: true, "v1/topics/\(topic.name)", body: data, decoding: Published.self).cursor ?? 0
    }

    /// Items of a topic after `cursor`, oldest first.
    public func items(on topic: Topic, after cursor: Int64, limit: Int) async throws -> RelayPage {
        struct Page: Decodable {
            struct Item: Decodable {
                let cursor: Int64
                let data: Data
                let receivedAt: Int64?
            }
            let items: [Item]
            let next: Int64
        }
        let page = try await call(post: false, "v1/topics/\(topic.name)?after=\(cursor)&limit=\(limit)", decoding: Page.self)
        return RelayPage(items: page.items.map {
            RelayItem(cursor: $0.cursor, data: Array($0.data), receivedAt: $0.receivedAt.map { Date(timeIntervalSince1970: Double($0) / 1000) })
        }, next: page.next)
    }

    /// Takes one prekey of an installation, signed by the claiming installation:
    /// a one-time prekey, or the fallback; nil when it has none.
    public func claimPrekey(of installation: [UInt8], authentication: RequestAuthentication) async throws -> ClaimedPrekey? {
        struct Claimed: Decodable {
            let data: Data
            let fallback: Bool
        }
        do {
            let claimed = try await call(post: true, "v1/topics/\(Topic.prekey(installation: installation).name)/claim",
                                         authentication: authentication, decoding: Claimed.self)
            return ClaimedPrekey(data: Array(claimed.data), fallback: claimed.fallback)
        } catch let failure as Failure where failure.code == "no_prekeys" {
            return nil
        } catch let Failure.refused(status, code, message) where status == 429 {
            throw PrekeyClaimLimited(code: code, message: message)
        }
    }

    /// How many one-time prekeys the relay still holds for an installation and how fast they go (signed by it).
    public func prekeyStock(of installation: [UInt8], authentication: RequestAuthentication) async throws -> PrekeyStock {
        try await call(post: false, "v1/topics/\(Topic.prekey(installation: installation).name)", authentication: authentication,
                       decoding: PrekeyStock.self)
    }

    /// The items of a topic after `cursor`, then each new one as it is published, until the stream is dropped.
    public func watch(_ topic: Topic, after cursor: Int64) -> AsyncThrowingStream<RelayItem, any Error> {
        let request = HTTPClientRequest(url: url("v1/topics/\(topic.name)/events?after=\(cursor)"))
        let (client, base) = (client, baseURL.absoluteString)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let response: HTTPClientResponse
                    do { response = try await client.execute(request, deadline: .distantFuture) } catch {
                        throw Failure.unreachable(url: base, reason: "\(error)")
                    }
                    guard response.status == .ok else { throw Failure.unexpectedResponse(status: Int(response.status.code)) }
                    var parser = ServerSentEvents()
                    for try await buffer in response.body {
                        for item in parser.feed(buffer.readableBytesView) { continuation.yield(item) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Claims the next epoch of a group for a commit; false when another commit holds it.
    public func claimEpoch(_ claim: EpochClaim, group topicID: [UInt8]) async throws -> Bool {
        do {
            _ = try await publish(try claim.wireBytes(), to: .commits(group: topicID))
            return true
        } catch let failure as Failure where failure.code == "epoch_taken" {
            return false
        }
    }

    // MARK: - Backup provider

    private struct Stored: Decodable {
        let id: String
        let url: String
        let size: Int
        let digest: String
        let expiresAt: Int64

        func backup() throws -> StoredBackup {
            guard let url = URL(string: url), let digest = Hex.decode(digest) else { throw Failure.unexpectedResponse(status: 200) }
            return StoredBackup(id: id, url: url, size: size, digest: digest, expiresAt: Date(timeIntervalSince1970: Double(expiresAt) / 1000))
        }
    }

    /// Where the relay's backup provider takes uploads.
    public var backupUploadURL: URL { URL(string: url("v1/backups"))! }

    private enum UploadStage { case head, file, done }

    /// Uploads a file to the backup provider, signed by an installation. It may
    /// take the client's timeout plus a second per 256 KiB of the file.
    public func uploadBackup(
        _ file: URL, to uploadURL: URL, authentication: RequestAuthentication, options: BackupUploadOptions
    ) async throws -> StoredBackup {
        let boundary = "keepsake-\(Hex.encode(Random.bytes(12)))"
        var fields: [(String, String)] = []
        if let lifetime = options.lifetime { fields.append(("expiresIn", String(lifetime.components.seconds))) }
        if options.deleteAfterDownload { fields.append(("deleteAfterDownload", "true")) }
        if let locator = options.locator { fields.append(("locator", Hex.encode(locator))) }
        var head = fields.map { "--\(boundary)\r\nContent-Disposition: form-data; name=\"\($0.0)\"\r\n\r\n\($0.1)\r\n" }.joined()
        head += "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(file.lastPathComponent)\"\r\n"
        head += "Content-Type: application/octet-stream\r\n\r\n"
        let tail = "\r\n--\(boundary)--\r\n"
        guard let handle = FileHandle(forReadingAtPath: file.path) else { throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: file.path]) }
        let size = Int(try handle.seekToEnd())
        try handle.seek(toOffset: 0)
        // Read a chunk each time the connection takes one, so a large file is never in memory whole.
        let stage = Mutex(UploadStage.head)
        let parts = AsyncThrowingStream<ByteBuffer, any Error> { [head] in
            switch stage.withLock({ $0 }) {
            case .head:
                stage.withLock { $0 = .file }
                return ByteBuffer(string: head)
            case .file:
                if let chunk = try handle.read(upToCount: 256 * 1024), !chunk.isEmpty { return ByteBuffer(bytes: chunk) }
                try? handle.close()
                stage.withLock { $0 = .done }
                return ByteBuffer(string: tail)
            case .done:
                return nil
            }
        }
        var request = HTTPClientRequest(url: uploadURL.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        for (name, value) in authentication.headers { request.headers.add(name: name, value: value) }
        request.body = .stream(parts, length: .known(Int64(head.utf8.count + size + tail.utf8.count)))
        return try await send(request, decoding: Stored.self, within: timeout + Self.transferTime(of: size)).backup()
    }

    /// Downloads a stored file to `destination`, never overwriting it. A download
    /// cut short (the relay found the stored file damaged, or the connection broke)
    /// throws and leaves no file behind.
    public func downloadBackup(from source: URL, to destination: URL) async throws {
        let response: HTTPClientResponse
        do { response = try await client.execute(HTTPClientRequest(url: source.absoluteString), timeout: .hours(1)) } catch {
            throw Failure.unreachable(url: source.absoluteString, reason: "\(error)")
        }
        guard response.status == .ok else {
            var buffer = try await response.body.collect(upTo: 1 << 20)
            throw Self.failure(status: Int(response.status.code), body: Data(buffer.readBytes(length: buffer.readableBytes) ?? []))
        }
        let descriptor = open(destination.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CocoaError(errno == EEXIST ? .fileWriteFileExists : .fileWriteNoPermission, userInfo: [NSFilePathErrorKey: destination.path])
        }
        let output = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            for try await buffer in response.body { try output.write(contentsOf: Data(buffer.readableBytesView)) }
            try output.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: destination)
            throw Failure.unreachable(url: source.absoluteString, reason: "the download broke off: \(error)")
        }
    }

    /// The unexpired uploads listed under a locator, oldest first.
    public func listBackups(locator: [UInt8]) async throws -> [StoredBackup] {
        struct Listed: Decodable { let backups: [Stored] }
        return try await call(post: false, "v1/backups?locator=\(Hex.encode(locator))", decoding: Listed.self).backups.map { try $0.backup() }
    }

    private struct ErrorBody: Decodable {
        struct Detail: Decodable {
            let code: String
            let message: String
        }
        let error: Detail
    }

    /// The relay's JSON error as a `Failure`.
    private static func failure(status: Int, body: Data) -> Failure {
        guard let error = try? JSONDecoder().decode(ErrorBody.self, from: body) else { return .unexpectedResponse(status: status) }
        return .refused(status: status, code: error.error.code, message: error.error.message)
    }

    private func call<T: Decodable>(
        post: Bool, _ path: String, body: [UInt8]? = nil, authentication: RequestAuthentication? = nil, decoding type: T.Type
    ) async throws -> T {
        var request = HTTPClientRequest(url: url(path))
        request.method = post ? .POST : .GET
        for (name, value) in authentication?.headers ?? [] { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/octet-stream")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return try await send(request, decoding: type)
    }

    /// How long a file of `size` bytes may take to cross, beyond the request timeout:
    /// a large backup is not cut off for being large, only for crawling below 256 KiB/s.
    static func transferTime(of size: Int) -> TimeAmount {
        .seconds(Int64(size / (256 * 1024)))
    }

    private func send<T: Decodable>(_ request: HTTPClientRequest, decoding type: T.Type, within limit: TimeAmount? = nil) async throws -> T {
        let response: HTTPClientResponse
        var buffer: ByteBuffer
        do {
            response = try await client.execute(request, timeout: limit ?? timeout)
            buffer = try await response.body.collect(upTo: Self.maxResponseBytes)
        } catch {
            throw Failure.unreachable(url: baseURL.absoluteString, reason: "\(error)")
        }
        let bytes = Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else { throw Self.failure(status: status, body: bytes) }
        do { return try JSONDecoder().decode(T.self, from: bytes) } catch { throw Failure.unexpectedResponse(status: status) }
    }
}

extension RelayClient {
    private func url(_ path: String) -> String {
        let base = baseURL.absoluteString
        return (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/" + path
    }
}

/// Reads a server-sent event stream as relay items: each event's `id` is the
/// item's cursor and its `data` the item in base64; comments (keep-alives) are skipped.
struct ServerSentEvents {
    private var pending: [UInt8] = []

    mutating func feed(_ bytes: some Collection<UInt8>) -> [RelayItem] {
        pending.append(contentsOf: bytes)
        var items: [RelayItem] = []
        while let end = pending.firstRange(of: [10, 10]) {
            let event = String(decoding: pending[..<end.lowerBound], as: UTF8.self)
            pending.removeSubrange(..<end.upperBound)
            var cursor: Int64?, data: [UInt8]?
            for line in event.split(separator: "\n") {
                if line.hasPrefix("id: ") { cursor = Int64(line.dropFirst(4)) }
                if line.hasPrefix("data: ") { data = Data(base64Encoded: String(line.dropFirst(6))).map { Array($0) } }
            }
            if let cursor, let data { items.append(RelayItem(cursor: cursor, data: data)) }
        }
        return items
    }
}

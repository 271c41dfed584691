import AsyncHTTPClient
import Foundation
import Keepsake
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

    public let baseURL: URL
    let client: HTTPClient
    let timeout: TimeAmount

    /// Largest response body read, in bytes.
    static let maxResponseBytes = 64 * 1024 * 1024

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

    public func publish(_ data: [UInt8], to topic: Topic) async throws -> Int64 {
        // Prekey uploads are not topic items and have no cursor.
        struct Published: Decodable { let cursor: Int64? }
        return try await call(post: true, "v1/topics/\(topic.name)", body: data, decoding: Published.self).cursor ?? 0
    }

    public func items(on topic: Topic, after cursor: Int64, limit: Int) async throws -> RelayPage {
        struct Page: Decodable {
            struct Item: Decodable {
                let cursor: Int64
                let data: Data
            }
            let items: [Item]
            let next: Int64
        }
        let page = try await call(post: false, "v1/topics/\(topic.name)?after=\(cursor)&limit=\(limit)", decoding: Page.self)
        return RelayPage(items: page.items.map { RelayItem(cursor: $0.cursor, data: Array($0.data)) }, next: page.next)
    }

    public func claimPrekey(of installation: [UInt8]) async throws -> ClaimedPrekey? {
        struct Claimed: Decodable {
            let data: Data
            let fallback: Bool
        }
        do {
            let claimed = try await call(post: true, "v1/topics/\(Topic.prekey(installation: installation).name)/claim", decoding: Claimed.self)
            return ClaimedPrekey(data: Array(claimed.data), fallback: claimed.fallback)
        } catch let failure as Failure where failure.code == "no_prekeys" {
            return nil
        }
    }

    public func prekeyStock(of installation: [UInt8]) async throws -> Int {
        struct Stock: Decodable { let oneTimeRemaining: Int }
        return try await call(post: false, "v1/topics/\(Topic.prekey(installation: installation).name)", decoding: Stock.self).oneTimeRemaining
    }

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

    public func claimEpoch(_ claim: CommitClaim, group topicID: [UInt8]) async throws -> Bool {
        do {
            _ = try await publish(try claim.wireBytes(), to: .commits(group: topicID))
            return true
        } catch let failure as Failure where failure.code == "epoch_taken" {
            return false
        }
    }

    private struct ErrorBody: Decodable {
        struct Detail: Decodable {
            let code: String
            let message: String
        }
        let error: Detail
    }

    private func call<T: Decodable>(post: Bool, _ path: String, body: [UInt8]? = nil, decoding type: T.Type) async throws -> T {
        var request = HTTPClientRequest(url: url(path))
        request.method = post ? .POST : .GET
        if let body {
            request.headers.add(name: "Content-Type", value: "application/octet-stream")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response: HTTPClientResponse
        var buffer: ByteBuffer
        do {
            response = try await client.execute(request, timeout: timeout)
            buffer = try await response.body.collect(upTo: Self.maxResponseBytes)
        } catch {
            throw Failure.unreachable(url: baseURL.absoluteString, reason: "\(error)")
        }
        let bytes = Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            guard let error = try? JSONDecoder().decode(ErrorBody.self, from: bytes) else { throw Failure.unexpectedResponse(status: status) }
            throw Failure.refused(status: status, code: error.error.code, message: error.error.message)
        }
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

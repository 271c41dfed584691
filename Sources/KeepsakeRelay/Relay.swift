import Foundation
import HTTPTypes
import Hummingbird
import KeepsakeCrypto
import KeepsakeTransport
import KeepsakeWire
import Logging
import NIOCore
import ServiceLifecycle

/// The relay: installations publish to topics and read them back from a cursor.
///
/// Endpoints (docs/relay-openapi.json):
/// - `POST /v1/topics/{topic}`: publish the request body (a wire message) to the topic.
/// - `GET /v1/topics/{topic}?after=<cursor>&limit=<n>`: items after a cursor, oldest first
///   (for a prekey topic, a request signed by that installation: how many one-time prekeys are left
///   and how fast they go; prekeys themselves are only claimed).
/// - `GET /v1/topics/{topic}/events?after=<cursor>`: the items after a cursor, then each new
///   one as it is published (server-sent events: `id` the cursor, `data` the item in base64).
/// - `POST /v1/topics/prekey-{installation}/claim`, signed by a known installation and rate limited
///   (`PrekeyClaims`): a one-time prekey (then deleted) or the fallback.
/// - `GET /v1/health`: the relay runs (liveness).
/// - `GET /v1/ready`: its database and backup file store answer (readiness); 503 `storage_unavailable` otherwise.
///
/// Publishing is checked where the relay can check: contact bundles, revocations
/// and prekeys must carry valid signatures of the account or installation their
/// topic names; envelopes must parse; commit claims must name the next epoch.
public struct Relay: Sendable {
    /// What the relay accepts, and how many connections it serves.
    public struct Limits: Sendable {
        /// Largest request body accepted, in bytes.
        public var maxBodyBytes = 256 * 1024
        /// Most items one query returns.
        public var maxQueryItems = 1_000
        /// Most prekeys one upload may carry.
        public var maxPrekeysPerUpload = 200
        /// Prekeys one installation may claim per hour, of all installations together.
        public var prekeyClaimsPerRequester = 600
        /// Prekeys one installation may claim of one other installation per hour.
        public var prekeyClaimsPerPair = 6
        /// Times one installation's prekeys may be served per hour, to all requesters together.
        public var prekeyClaimsPerTarget = 3_600
        /// One-time prekeys of one installation served per hour; further claims get its fallback prekey.
        public var oneTimePrekeysPerTarget = 30
        /// Most live subscriptions open at once; more are refused with 503.
        public var maxSubscribers = 10_000
        /// Most connections open at once; more get a 503 at once and are closed.
        /// Defaults to the descriptor limit less 64 for the relay's own files.
        public var maxConnections = ConnectionLimiter.defaultLimit()
        /// How long a connection may go without a complete request head (after it
        /// opens, or after its last response) before it is closed. This bounds
        /// idle keep-alive connections and clients that send headers slowly.
        public var idleTimeout: Duration = .seconds(30)
        /// How often an idle live follow (`GET /v1/topics/{topic}/events`) gets a keep-alive comment.
        /// Each keep-alive also reads the topic again, so this bounds how late a
        /// follower learns of an item whose wake-up was lost.
        public var keepAlive: Duration = .seconds(15)

        /// The defaults.
        public init() {}
    }

    let topics: RelayTopics
    let backups: BackupProvider
    var storage: any RelayStore { topics.storage }
    var notifier: TopicNotifier { topics.notifier }
    var limits: Limits { topics.limits }
    var metrics: RelayMetrics { topics.metrics }

    /// Opens (creating when needed) the relay's data in `directory`: topics and
    /// backup metadata in `relay.sqlite`, backup files in `backups/` unless another store is given.
    /// With `database`, a `postgres://user[:password]@host[:port]/database[?sslmode=…]`
    /// URL, topics and backup metadata live in that PostgreSQL database instead,
    /// which several relays can share (its schema is created or brought up to date).
    /// Expired backups and what a crash left in the blob store are removed before it returns.
    public init(
        directory: URL, limits: Limits = Limits(), backupLimits: BackupLimits = BackupLimits(), blobs: (any BackupBlobStore)? = nil,
        database: String? = nil, logger: Logger = Logger(label: "keepsake.relay")
    ) async throws {
        let storage: any RelayStore
        if let database {
            storage = try await PostgresRelayStore.open(url: database, logger: logger)
        } else {
            storage = try SQLiteRelayStore(directory: directory)
        }
        topics = RelayTopics(storage: storage, limits: limits, metrics: RelayMetrics())
        storage.followOtherRelays { [notifier = topics.notifier] topic in notifier.published(on: topic) }
        backups = BackupProvider(
            storage: storage, blobs: try blobs ?? FolderBlobStore(directory: directory.appendingPathComponent("backups")), limits: backupLimits,
            metrics: topics.metrics)
        try await backups.start()
    }

    /// What the relay's backup provider accepts.
    public typealias BackupLimits = BackupProvider.Limits

    /// The HTTP application, listening on `host:port` (port 0 picks a free one;
    /// `onListening` receives the port actually bound).
    public func application(
        host: String = "127.0.0.1", port: Int = 8_787, logger: Logger = Logger(label: "keepsake.relay"),
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let connections = ConnectionLimiter.Count()
        let (maxConnections, idleTimeout) = (limits.maxConnections, limits.idleTimeout)
        return Application(
            router: router(),
            server: .http1(configuration: .init(
                additionalChannelHandlers: [ConnectionLimiter(count: connections, limit: maxConnections)],
                idleTimeout: .nanoseconds(Int64(idleTimeout / .nanoseconds(1))))),
            configuration: .init(address: .hostname(host, port: port), serverName: "keepsake-relay"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// Every route and its methods, for 405 answers with an Allow header. Keep in
    /// step with `router` and `BackupProvider.addRoutes` (and docs/relay-openapi.json).
    static let routes: [(path: [String], methods: [HTTPRequest.Method])] = [
        (["metrics"], [.get]),
        (["v1", "health"], [.get]),
        (["v1", "ready"], [.get]),
        (["v1", "topics", "*"], [.get, .post]),
        (["v1", "topics", "*", "claim"], [.post]),
        (["v1", "topics", "*", "events"], [.get]),
        (["v1", "backups"], [.get, .post]),
        (["v1", "backups", "*"], [.get]),
    ]

    /// The methods a known route accepts, or nil when no route has this path.
    static func methods(allowedOn path: String) -> [HTTPRequest.Method]? {
        routes.first { $0.path == route(matching: path) }?.methods
    }

    /// The pattern of the route with this path (`*` for a parameter), or nil when none has it.
    static func route(matching path: String) -> [String]? {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        return routes.first { route in
            route.path.count == components.count && zip(route.path, components).allSatisfy { $0 == "*" || $0 == $1 }
        }?.path
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestMetrics(metrics: metrics))
        router.add(middleware: JSONErrors(metrics: metrics))
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
        }
        router.get("v1/health") { _, _ in Health(status: "ok") }
        router.get("v1/ready") { _, _ in try await self.readiness() }
        router.post("v1/topics/:topic") { request, context in try await self.publish(request, context) }
        router.get("v1/topics/:topic") { request, context -> Response in
            if case let .prekey(installation) = try self.topic(context) {
                return try await self.topics.prekeyClaims.stock(of: installation, authentication: try Self.authentication(of: request), now: .nowMillis)
                    .response(from: request, context: context)
            }
            return try await self.query(request, context).response(from: request, context: context)
        }
        router.post("v1/topics/:topic/claim") { request, context in try await self.claim(request, context) }
        router.get("v1/topics/:topic/events") { request, context in try self.subscribe(request, context) }
        backups.routes(router)
        return router
    }

    struct Health: ResponseEncodable { let status: String }

    /// Ready when the database and the blob store both answer; a load balancer
    /// sends no traffic to a relay that is not.
    private func readiness() async throws -> Health {
        do { try await storage.check() } catch let error as StorageFailure { throw error } catch { throw StorageFailure(cause: error) }
        try await backups.check()
        return Health(status: "ready")
    }

    struct Published: ResponseEncodable { let cursor: Int64 }

    struct PrekeysStored: ResponseEncodable {
        let stored: Int
        let oneTimeRemaining: Int
    }

    struct Page: ResponseEncodable {
        struct Item: Codable {
            let cursor: Int64
            let data: Data
            let receivedAt: Int64
        }
        let items: [Item]
        /// The cursor to ask from next (the last item's, or the one asked for when empty).
        let next: Int64
    }

    struct ClaimedPrekey: ResponseEncodable {
        let data: Data
        let fallback: Bool
    }

    private func topic(_ context: BasicRequestContext) throws -> Topic {
        let name = context.parameters.get("topic") ?? ""
        guard let topic = Topic(name: name) else { throw RelayError.unknownTopic(name) }
        return topic
    }

    private func publish(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let topic = try topic(context)
        let body: [UInt8]
        do {
            var buffer = try await request.body.collect(upTo: limits.maxBodyBytes)
            body = buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            throw RelayError.tooLarge(limits.maxBodyBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw RelayError.tooLarge(limits.maxBodyBytes)
        } catch {
            throw RelayError(.badRequest, code: "bad_body", "the request body could not be read (malformed chunked encoding, or the connection broke)")
        }
        guard !body.isEmpty else { throw RelayError(.badRequest, code: "empty_body", "the request body is empty") }
        if case let .prekey(installation) = topic {
            return try await topics.storePrekeys(body, for: installation).response(from: request, context: context)
        }
        let cursor = try await topics.accept(body, on: topic)
        var response = try Published(cursor: cursor).response(from: request, context: context)
        response.status = .created
        return response
    }

    private func query(_ request: Request, _ context: BasicRequestContext) async throws -> Page {
        let topic = try topic(context)
        let after = try integer(request, "after", default: 0, range: 0...Int64.max)
        let limit = try integer(request, "limit", default: 100, range: 1...Int64(limits.maxQueryItems))
        let items = try await storage.items(on: topic, after: after, limit: Int(limit))
        return Page(items: items.map { .init(cursor: $0.cursor, data: $0.data, receivedAt: $0.receivedAt) },
                    next: items.last?.cursor ?? after)
    }

    /// Server-sent events: what is stored after `after`, then what is published, until the client goes.
    private func subscribe(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        let topic = try topic(context)
        if case .prekey = topic { throw RelayError(.badRequest, code: "not_subscribable", "prekey topics cannot be followed") }
        let after = try integer(request, "after", default: 0, range: 0...Int64.max)
        guard notifier.subscriberCount < limits.maxSubscribers else {
            throw RelayError(.serviceUnavailable, code: "too_many_subscribers", "the relay follows too many topics; try again later")
        }
        let (signals, stop) = notifier.signals(for: topic.name)
        let topics = topics
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
            body: ResponseBody { writer in
                var cursor = after
                var wakeUps = signals.makeAsyncIterator()
                // A stopping relay ends its event streams instead of waiting for clients to leave.
                try await withGracefulShutdownHandler {
                    repeat {
                        let before = cursor
                        cursor = try await topics.forEachItem(on: topic, after: cursor) { item in
                            try await writer.write(ByteBuffer(string: "id: \(item.cursor)\ndata: \(item.data.base64EncodedString())\n\n"))
                        }
                        if cursor == before { try await writer.write(ByteBuffer(string: ": keep-alive\n\n")) }
                    } while await wakeUps.next() != nil
                } onGracefulShutdown: {
                    stop()
                }
                try await writer.finish(nil)
            })
    }

    private func integer(_ request: Request, _ name: String, default value: Int64, range: ClosedRange<Int64>) throws -> Int64 {
        guard let text = request.uri.queryParameters.get(name) else { return value }
        guard let number = Int64(text), range.contains(number) else {
            throw RelayError(.badRequest, code: "bad_parameter", "'\(name)' must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    private func claim(_ request: Request, _ context: BasicRequestContext) async throws -> ClaimedPrekey {
        guard case let .prekey(installation) = try topic(context) else {
            throw RelayError(.badRequest, code: "not_a_prekey_topic", "only prekey topics serve claims")
        }
        let authentication = try Self.authentication(of: request)
        guard let prekey = try await topics.prekeyClaims.claim(of: installation, authentication: authentication, now: .nowMillis) else {
            throw RelayError(.notFound, code: "no_prekeys", "the installation has published no prekeys (or was revoked)")
        }
        return ClaimedPrekey(data: prekey.data, fallback: prekey.fallback)
    }
}

extension Relay {
    /// The request's signature headers (docs/PROTOCOL.md §1, signed requests), or 401 `unauthenticated`.
    static func authentication(of request: Request) throws -> RequestAuthentication {
        guard let auth = RequestAuthentication(header: { name in HTTPField.Name(name).flatMap { request.headers[$0] } }) else {
            throw RelayError(.unauthorized, code: "unauthenticated", "sign the request as an installation (Keepsake-* headers; docs/PROTOCOL.md)")
        }
        return auth
    }
}

/// The stock a prekey topic's `GET` answers, as the transport API describes it.
extension PrekeyStock: ResponseEncodable {}

extension Int64 {
    /// The relay's clock in milliseconds since 1970.
    static var nowMillis: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

extension RelayError {
    static let revoked = RelayError(.forbidden, code: "revoked", "the installation was revoked by its account")
    static let replayedRequest = RelayError(.unauthorized, code: "replayed_request", "this signed request was already used")
}

extension WireError {
    var isSignature: Bool { if case .badSignature = self { true } else { false } }

    var code: String {
        switch self {
        case .malformed: "malformed"
        case .badSignature: "bad_signature"
        case .mismatch: "mismatch"
        }
    }
}

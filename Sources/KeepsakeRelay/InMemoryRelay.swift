import Foundation
import KeepsakeCrypto
import KeepsakeTransport
import KeepsakeWire
import Synchronization

/// A relay inside this process, reached without HTTP: the stores of one process
/// (tests, previews, a demo) message each other through it.
///
/// Topics follow the relay's own rules and storage (`Relay`'s publish checks,
/// prekey claims, epoch claims) on an in-memory SQLite database. The backup
/// provider keeps files in memory, with the provider's rules: uploads signed by
/// a known, unrevoked installation for the upload path, fresh and never
/// replayed; files listed by locator, expiring, or served once. Nothing
/// survives the object.
public final class InMemoryRelay: RelayTransport {
    private let relay: RelayTopics
    private let backupLimits: Relay.BackupLimits
    private let files = Mutex<[String: StoredFile]>([:])
    private let seenNonces = Mutex<Set<[UInt8]>>([])

    /// Where `uploadBackup` takes files; download URLs live under it. An HTTP
    /// URL, as messaging requires, on a reserved host that never resolves: only
    /// this object serves it.
    public let backupUploadURL = URL(string: "http://in-memory-relay.invalid/v1/backups")!

    private struct StoredFile {
        let contents: [UInt8]
        let listing: StoredBackup
        let locator: [UInt8]?
        let deleteAfterDownload: Bool
    }

    /// An empty relay with the HTTP relay's limits.
    public init(limits: Relay.Limits = Relay.Limits(), backupLimits: Relay.BackupLimits = Relay.BackupLimits()) throws {
        relay = RelayTopics(storage: try SQLiteRelayStore(inMemory: ()), limits: limits, metrics: RelayMetrics())
        self.backupLimits = backupLimits
    }

    // MARK: - Topics

    /// Publishes a wire message to a topic (`POST /v1/topics/{topic}`); returns its cursor, 0 for a prekey upload.
    public func publish(_ data: [UInt8], to topic: Topic) async throws -> Int64 {
        guard !data.isEmpty else { throw RelayError(.badRequest, code: "empty_body", "the request body is empty") }
        guard data.count <= relay.limits.maxBodyBytes else { throw RelayError.tooLarge(relay.limits.maxBodyBytes) }
        if case let .prekey(installation) = topic {
            _ = try await relay.storePrekeys(data, for: installation)
            return 0
        }
        return try await relay.accept(data, on: topic)
    }

    /// Items of a topic after `cursor`, oldest first.
    public func items(on topic: Topic, after cursor: Int64, limit: Int) async throws -> RelayPage {
        let items = try await relay.storage.items(on: topic, after: cursor, limit: max(1, min(limit, relay.limits.maxQueryItems)))
        return RelayPage(items: items.map(RelayItem.init), next: items.last?.cursor ?? cursor)
    }

    /// Takes one prekey of an installation for the signing installation, within
    /// the relay's rate limits: a one-time prekey, or the fallback; nil when it has none.
    public func claimPrekey(of installation: [UInt8], authentication: RequestAuthentication) async throws -> ClaimedPrekey? {
        do {
            return try await relay.prekeyClaims.claim(of: installation, authentication: authentication, now: .nowMillis)
                .map { ClaimedPrekey(data: Array($0.data), fallback: $0.fallback) }
        } catch let error as RelayError where error.status == .tooManyRequests {
            throw PrekeyClaimLimited(code: error.code, message: error.message)
        }
    }

    /// How many one-time prekeys the relay still holds for an installation, and how fast they go.
    public func prekeyStock(of installation: [UInt8], authentication: RequestAuthentication) async throws -> PrekeyStock {
        try await relay.prekeyClaims.stock(of: installation, authentication: authentication, now: .nowMillis)
    }

    /// The items of a topic after `cursor`, then each new one as it is published, until the stream is dropped.
    public func watch(_ topic: Topic, after cursor: Int64) -> AsyncThrowingStream<RelayItem, any Error> {
        let (signals, stop) = relay.notifier.signals(for: topic.name)
        let relay = relay
        return AsyncThrowingStream { continuation in
            let task = Task {
                var cursor = cursor
                var wakeUps = signals.makeAsyncIterator()
                do {
                    repeat {
                        cursor = try await relay.forEachItem(on: topic, after: cursor) { continuation.yield(RelayItem($0)) }
                    } while await wakeUps.next() != nil && !Task.isCancelled
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in
                task.cancel()
                stop()
            }
        }
    }

    /// Claims the next epoch of a group for a commit; false when another commit holds it.
    public func claimEpoch(_ claim: EpochClaim, group topicID: [UInt8]) async throws -> Bool {
        do {
            _ = try await relay.accept(try claim.wireBytes(), on: .commits(group: topicID))
            return true
        } catch let error as RelayError where error.code == "epoch_taken" {
            return false
        }
    }

    // MARK: - Backup provider

    /// Uploads a file to the backup provider, signed by an installation.
    public func uploadBackup(
        _ file: URL, to uploadURL: URL, authentication: RequestAuthentication, options: BackupUploadOptions
    ) async throws -> StoredBackup {
        let contents = [UInt8](try Data(contentsOf: file))
        try await verify(authentication, path: uploadURL.path)
        guard Blake2b.hash(contents) == authentication.contentDigest else {
            throw RelayError(.badRequest, code: "digest_mismatch", "the file does not match the signed content digest")
        }
        let lifetime = options.lifetime ?? backupLimits.defaultLifetime
        guard lifetime > .zero, lifetime <= backupLimits.maxLifetime else {
            throw RelayError(.badRequest, code: "bad_lifetime", "a lifetime is more than 0 and at most \(backupLimits.maxLifetime)")
        }
        let id = Hex.encode(Random.bytes(32))
        let listing = StoredBackup(
            id: id, url: backupUploadURL.appendingPathComponent(id), size: contents.count, digest: Blake2b.hash(contents),
            expiresAt: Date().addingTimeInterval(Double(lifetime.components.seconds)))
        files.withLock {
            $0[id] = StoredFile(contents: contents, listing: listing, locator: options.locator, deleteAfterDownload: options.deleteAfterDownload)
        }
        return listing
    }

    /// Downloads a stored file to `destination`, never overwriting it.
    public func downloadBackup(from url: URL, to destination: URL) async throws {
        let id = url.lastPathComponent
        let file = files.withLock { files -> StoredFile? in
            files = files.filter { $0.value.listing.expiresAt > Date() }
            guard let file = files[id] else { return nil }
            if file.deleteAfterDownload { files[id] = nil }
            return file
        }
        guard let file else {
            throw RelayError(.notFound, code: "no_backup", "no backup with this ID (never uploaded, expired, or already downloaded once)")
        }
        try Data(file.contents).write(to: destination, options: .withoutOverwriting)
    }

    /// The unexpired uploads listed under a locator, oldest first.
    public func listBackups(locator: [UInt8]) async throws -> [StoredBackup] {
        files.withLock { files in
            files.values.filter { $0.locator == locator && $0.listing.expiresAt > Date() }.map(\.listing)
                .sorted { ($0.expiresAt, $0.id) < ($1.expiresAt, $1.id) }
        }
    }

    /// The provider's request checks: a known, unrevoked installation's signature, a fresh timestamp, a new nonce.
    private func verify(_ auth: RequestAuthentication, path: String) async throws {
        _ = try await RequestChecks(storage: relay.storage).verify(auth, method: "POST", path: path, now: .nowMillis)
        guard seenNonces.withLock({ $0.insert(auth.nonce).inserted }) else { throw RelayError.replayedRequest }
    }
}

extension RelayItem {
    init(_ item: StoredItem) {
        self.init(cursor: item.cursor, data: Array(item.data), receivedAt: Date(timeIntervalSince1970: Double(item.receivedAt) / 1000))
    }
}

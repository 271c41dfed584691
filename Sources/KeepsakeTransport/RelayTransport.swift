import Foundation
import KeepsakeWire

/// How a `Messenger` reaches a relay and its backup provider. `KeepsakeRelayClient.RelayClient` speaks
/// the relay's HTTP API (docs/relay-openapi.json); an app may bring its own.
public protocol RelayTransport: BackupProviderTransport {
    /// Publishes a wire message to a topic; returns its cursor there (0 for a
    /// prekey upload, which is not a topic item). Publishing the same bytes twice stores them once.
    func publish(_ data: [UInt8], to topic: Topic) async throws -> Int64
    /// Items of a topic after `cursor`, oldest first.
    func items(on topic: Topic, after cursor: Int64, limit: Int) async throws -> RelayPage
    /// Takes one prekey of an installation: a one-time prekey (the relay deletes
    /// it) or, when none is left, the fallback. Nil when the installation has none.
    /// `authentication` signs `POST <prekey topic path>/claim` with `RequestAuthentication.emptyBodyDigest`;
    /// a claim over the relay's rate limits throws `PrekeyClaimLimited`.
    func claimPrekey(of installation: [UInt8], authentication: RequestAuthentication) async throws -> ClaimedPrekey?
    /// How many one-time prekeys the relay still holds for an installation and
    /// how fast they go; `authentication` is that installation's signature of `GET <prekey topic path>`.
    func prekeyStock(of installation: [UInt8], authentication: RequestAuthentication) async throws -> PrekeyStock
    /// The items of a topic after `cursor` and then each new one as it is
    /// published, until the stream is dropped or the connection ends.
    func watch(_ topic: Topic, after cursor: Int64) -> AsyncThrowingStream<RelayItem, any Error>
    /// Claims the next epoch of a group for a commit (published as a
    /// `CommitClaim` on `Topic.commits`); false when another commit holds it or
    /// it is not the next one.
    func claimEpoch(_ claim: EpochClaim, group topicID: [UInt8]) async throws -> Bool
}

/// A group commit's claim on an epoch: first come, first served, at the relay.
public struct EpochClaim: Sendable, Hashable {
    /// The epoch the commit moves the group to.
    public let epoch: UInt64
    /// BLAKE2b-256 of the signed commit.
    public let commitDigest: [UInt8]

    /// A claim on `epoch` for the commit whose digest is `commitDigest`.
    public init(epoch: UInt64, commitDigest: [UInt8]) {
        self.epoch = epoch
        self.commitDigest = commitDigest
    }

    /// The claim as the relay's commit topic takes it (a `CommitClaim` message).
    public func wireBytes() throws -> [UInt8] {
        try CommitClaim.with {
            $0.epoch = epoch
            $0.commitDigest = Data(commitDigest)
        }.serializedBytes()
    }
}

/// One item of a relay topic: a wire message at a cursor.
public struct RelayItem: Sendable, Equatable {
    /// Its position in the topic; items after it have higher cursors.
    public let cursor: Int64
    /// The wire message as published.
    public let data: [UInt8]
    /// When the relay received it, by the relay's clock (nil when not reported).
    /// Revocation checks use it, so a revoked installation cannot backdate its messages.
    public let receivedAt: Date?

    /// An item as a transport read it.
    public init(cursor: Int64, data: [UInt8], receivedAt: Date? = nil) {
        self.cursor = cursor
        self.data = data
        self.receivedAt = receivedAt
    }
}

/// A page of a topic's items, oldest first.
public struct RelayPage: Sendable, Equatable {
    /// The items, oldest first.
    public let items: [RelayItem]
    /// Where to continue from.
    public let next: Int64

    /// A page and the cursor to continue from.
    public init(items: [RelayItem], next: Int64) {
        self.items = items
        self.next = next
    }
}

/// A prekey the relay handed out for starting a session.
public struct ClaimedPrekey: Sendable, Equatable {
    /// A `SignedPrekey`.
    public let data: [UInt8]
    /// True for the installation's fallback prekey (served again), false for a one-time prekey (served once).
    public let fallback: Bool

    /// A claimed prekey as the relay served it.
    public init(data: [UInt8], fallback: Bool) {
        self.data = data
        self.fallback = fallback
    }
}

/// A relay refused a prekey claim because the requester, or everyone together
/// for the target, claimed too many in the last hour (429 `rate_limited` or `target_rate_limited`).
public struct PrekeyClaimLimited: Error, Sendable, Equatable, CustomStringConvertible {
    /// The relay's error code: `rate_limited` (the requester's limits) or `target_rate_limited` (the target's).
    public let code: String
    /// The relay's explanation.
    public let message: String

    /// A refusal with the relay's code and explanation.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// What happened.
    public var description: String { "the relay refused the prekey claim: \(message)" }
}

/// An installation's prekeys as the relay holds them: what is left and how fast it goes.
public struct PrekeyStock: Sendable, Equatable, Codable {
    /// One-time prekeys not served yet.
    public let oneTimeRemaining: Int
    /// One-time prekeys served in the last hour.
    public let oneTimeServedLastHour: Int
    /// Times the fallback prekey was served in the last hour (no one-time prekey left, or over the relay's one-time budget).
    public let fallbackServedLastHour: Int

    /// A stock as the relay reported it.
    public init(oneTimeRemaining: Int, oneTimeServedLastHour: Int, fallbackServedLastHour: Int) {
        self.oneTimeRemaining = oneTimeRemaining
        self.oneTimeServedLastHour = oneTimeServedLastHour
        self.fallbackServedLastHour = fallbackServedLastHour
    }
}

/// How an upload to the relay's backup provider should be kept.
public struct BackupUploadOptions: Sendable, Equatable {
    /// Deleted after this long (the provider's default, 72 h, when nil).
    public var lifetime: Duration?
    /// Served once, then deleted.
    public var deleteAfterDownload = false
    /// Lists the upload under a locator derived from its backup key (`BackupKey.locator`).
    public var locator: [UInt8]?

    /// Options for one upload; the defaults keep the file for the provider's default lifetime.
    public init(lifetime: Duration? = nil, deleteAfterDownload: Bool = false, locator: [UInt8]? = nil) {
        self.lifetime = lifetime
        self.deleteAfterDownload = deleteAfterDownload
        self.locator = locator
    }
}

/// A file the backup provider holds.
public struct StoredBackup: Sendable, Equatable {
    /// The provider's ID of the file (64 hex digits).
    public let id: String
    /// Where to download it; whoever has the URL can (the file is encrypted).
    public let url: URL
    /// Its size in bytes.
    public let size: Int
    /// BLAKE2b-256 of the contents.
    public let digest: [UInt8]
    /// When the provider deletes it.
    public let expiresAt: Date

    /// A stored file as the provider describes it.
    public init(id: String, url: URL, size: Int, digest: [UInt8], expiresAt: Date) {
        self.id = id
        self.url = url
        self.size = size
        self.digest = digest
        self.expiresAt = expiresAt
    }
}

/// What a `Messenger` needs from the relay's backup provider (docs/relay-openapi.json, `/v1/backups`).
public protocol BackupProviderTransport: Sendable {
    /// Where this provider takes uploads (`POST`).
    var backupUploadURL: URL { get }
    /// Uploads a file to `uploadURL` (a provider's upload URL), signed by an
    /// installation for that URL's path (`Store.authenticateRequest`).
    func uploadBackup(_ file: URL, to uploadURL: URL, authentication: RequestAuthentication, options: BackupUploadOptions) async throws -> StoredBackup
    /// Downloads a file to `destination` (created; never overwritten).
    func downloadBackup(from url: URL, to destination: URL) async throws
    /// The unexpired uploads listed under a locator, oldest first.
    func listBackups(locator: [UInt8]) async throws -> [StoredBackup]
}

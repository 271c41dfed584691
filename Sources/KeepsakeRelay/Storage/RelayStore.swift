import Foundation
import KeepsakeTransport
import KeepsakeWire

/// Everything the relay keeps besides backup file contents: topic items,
/// installations and their prekeys, epoch claims, request nonces, rate-limit
/// counts and backup metadata.
///
/// Two implementations: `SQLiteRelayStore`, embedded in the data folder (the
/// default), and `PostgresRelayStore`, which several relays can share. Each
/// method is one transaction: it commits whole or not at all, and what must
/// happen once (a nonce, an epoch claim, a one-time prekey) happens once
/// across every relay on the same database. The rules (what a limit allows,
/// which error a refusal is) live here and in the callers, not in the backends.
protocol RelayStore: Sendable {
    /// Stores `data` on `topic` after applying `rule` in the same transaction, or
    /// finds the same bytes already there (then the rule is not applied again); returns the item's cursor.
    /// A topic's cursors grow in the order its items become visible.
    func publish(_ data: [UInt8], on topic: Topic, rule: PublishRule, receivedAt: Int64) async throws -> Int64
    /// Items of `topic` after `cursor`, oldest first.
    func items(on topic: Topic, after cursor: Int64, limit: Int) async throws -> [StoredItem]

    /// Adds prekeys of a verified bundle's installation (an ID already stored or
    /// served keeps its first upload); returns how many one-time prekeys are left.
    /// Refuses a revoked installation.
    func storePrekeys(_ prekeys: [UploadedPrekey], of installation: KnownInstallation) async throws -> Int
    /// The signing key an installation published in its bundle, and whether it was revoked.
    func installationKey(_ installation: [UInt8]) async throws -> InstallationKey?

    /// Serves a prekey of `target` to `requester` within `limits`, and uses the
    /// request's nonce: a one-time prekey (its key then forgotten) or the newest fallback; nil when there is none.
    func claimPrekey(_ request: SignedRequest, of target: [UInt8], limits: Relay.Limits) async throws -> ServedPrekey?
    /// The target's stock and how fast its prekeys went in the last hour; uses the request's nonce.
    func prekeyStock(_ request: SignedRequest) async throws -> PrekeyStock
    /// Uses the request's nonce and counts an upload against the installation's hourly limit.
    func admitUpload(_ request: SignedRequest, perHour: Int) async throws

    func addBackup(_ backup: BackupRecord) async throws
    /// The backup, unless it expired or is being downloaded once; a
    /// delete-after-download backup is marked taken until `release` or `removeBackup`.
    func takeBackup(_ id: String, now: Int64) async throws -> BackupRecord?
    /// Makes a taken delete-after-download backup available again (its download failed).
    func release(_ id: String) async throws
    func removeBackup(_ id: String) async throws
    /// Unexpired, untaken backups uploaded with `locator`, oldest first.
    func backups(locator: String, now: Int64) async throws -> [BackupRecord]
    /// Forgets expired backups (and upload counts older than an hour); returns their IDs, for the blob store.
    func removeExpiredBackups(now: Int64) async throws -> [String]
    /// The IDs of every backup on record.
    func backupIDs() async throws -> Set<String>

    /// Throws unless the database answers (`GET /v1/ready`).
    func check() async throws

    /// Calls `published` with a topic's name whenever another relay on the same
    /// database publishes to it, so this relay's followers see it at once.
    func followOtherRelays(_ published: @escaping @Sendable (_ topic: String) -> Void)
}

extension RelayStore {
    /// A store that only this relay writes needs nothing: its own publishes notify directly.
    func followOtherRelays(_ published: @escaping @Sendable (_ topic: String) -> Void) {}
}

/// What a publish does besides storing the item, inside its transaction.
enum PublishRule: Sendable {
    /// Nothing (envelopes).
    case none
    /// Remember an installation's account and signing key; refused for a revoked installation.
    case learn(KnownInstallation)
    /// Mark an installation revoked at a time (the earliest wins) and forget its prekeys.
    case revoke(installation: [UInt8], account: String, at: Int64)
    /// Claim the next epoch of the topic's group for a commit digest (`EpochClaimRefusal` otherwise).
    case claimEpoch(UInt64, digest: [UInt8])
    /// The item must verify under the signing key of a known installation.
    case signedBy(installation: [UInt8], verify: @Sendable (_ signingKey: [UInt8]) throws -> Void)
}

struct StoredItem: Sendable {
    let cursor: Int64
    let data: Data
    /// Milliseconds since 1970, relay clock.
    let receivedAt: Int64
}

/// An installation as its verified contact bundle describes it.
struct KnownInstallation: Sendable {
    let id: [UInt8]
    let account: String
    let signingKey: [UInt8]
}

struct InstallationKey: Sendable {
    let signingKey: [UInt8]
    let revoked: Bool
}

struct UploadedPrekey: Sendable {
    let id: UInt32
    let fallback: Bool
    /// The SignedPrekey's wire bytes.
    let signed: [UInt8]
}

struct ServedPrekey: Sendable {
    let data: Data
    let fallback: Bool
}

/// A signed request whose signature was verified against the installation's
/// key; the store checks again, in its transaction, that the installation is
/// not revoked, and uses the nonce once.
struct SignedRequest: Sendable {
    let installation: [UInt8]
    let nonce: [UInt8]
    /// The relay clock when the request was checked, milliseconds since 1970.
    let now: Int64
}

/// A stored backup's metadata (its contents are in the `BackupBlobStore`).
struct BackupRecord: Sendable, Equatable {
    let id: String
    let installation: [UInt8]
    let locator: String?
    let size: Int
    /// BLAKE2b-256 of the contents, lowercase hex.
    let digest: String
    let createdAt: Int64
    let expiresAt: Int64
    let deleteAfterDownload: Bool
}

/// How many prekeys were served in the last hour, the counts the claim limits read.
struct PrekeyClaimCounts: Sendable {
    let byRequester: Int
    let byPair: Int
    let ofTarget: Int
    let oneTimeOfTarget: Int

    /// Refuses a claim over a limit (429); returns whether a one-time prekey may be served.
    func admit(_ limits: Relay.Limits) throws -> Bool {
        guard byRequester < limits.prekeyClaimsPerRequester else {
            throw RelayError(.tooManyRequests, code: "rate_limited",
                             "an installation may claim at most \(limits.prekeyClaimsPerRequester) prekeys per hour; try again later")
        }
        guard byPair < limits.prekeyClaimsPerPair else {
            throw RelayError(.tooManyRequests, code: "rate_limited", """
                an installation may claim at most \(limits.prekeyClaimsPerPair) prekeys of one installation per hour; \
                keep using the session started with the last one
                """)
        }
        guard ofTarget < limits.prekeyClaimsPerTarget else {
            throw RelayError(.tooManyRequests, code: "target_rate_limited",
                             "this installation's prekeys were claimed \(limits.prekeyClaimsPerTarget) times in the last hour; try again later")
        }
        return oneTimeOfTarget < limits.oneTimePrekeysPerTarget
    }
}

/// Rules every backend applies the same way.
enum RelayRules {
    /// Prekey claims and upload counts are kept this long (milliseconds).
    static let hour: Int64 = 3_600_000
    /// Nonces are kept twice the signature window: older requests no longer verify.
    static let nonceLifetime = 2 * RequestAuthentication.window

    /// The refusal of an epoch claim: taken by another commit, or not the next epoch.
    static func epochRefused(_ epoch: UInt64, holder: Data?, next: UInt64) -> RelayError {
        guard holder != nil else {
            return RelayError(.conflict, code: "epoch_ahead", """
                epoch \(epoch) of this group cannot be claimed yet: the group's claims end before it, \
                and the next free epoch is \(next); apply the commits before it first
                """)
        }
        return RelayError(.conflict, code: "epoch_taken",
                          "epoch \(epoch) of this group is already claimed by another commit; the next free epoch is \(next)")
    }

    static func uploadLimited(_ perHour: Int) -> RelayError {
        RelayError(.tooManyRequests, code: "rate_limited", "at most \(perHour) uploads per installation per hour")
    }

    static let unknownInstallation = RelayError(
        .forbidden, code: "unknown_installation", "the installation has not published a contact bundle on this relay")
}

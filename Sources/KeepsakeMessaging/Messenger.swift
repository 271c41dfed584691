import Foundation
import KeepsakeCrypto
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

/// Sends and receives end-to-end-encrypted messages for one store, through a relay.
///
/// The protocol is the XMTP v3 design (docs/PROTOCOL.md): accounts grant
/// installations access by signing their contact bundles; installations talk
/// through pairwise Double Ratchet sessions started from prekeys; each message
/// is fanned out to every installation of every member, its sender sealed to
/// the recipient. Every session change is a ratchet-step event in the store's
/// log, written before anything goes to the network, so a store rebuilt from
/// its log (or restored from a hard backup) continues its sessions.
///
/// A messenger runs its public operations one at a time (sessions are read,
/// stepped and logged without interleaving); share one messenger per store.
public actor Messenger {
    /// The `Payload.version` this messenger writes and reads; others are refused as malformed.
    static let payloadVersion: UInt32 = 1

    /// How a messenger manages prekeys, sessions, paging and history requests.
    public struct Options: Sendable {
        /// One-time prekeys made per batch.
        public var prekeyBatch = 50
        /// A new batch is uploaded when the relay holds fewer one-time prekeys than this.
        public var replenishBelow = 10
        /// The fallback prekey is replaced once it is older than this.
        public var fallbackLifetime: Duration = .seconds(7 * 24 * 3600)
        /// A session that lost to a newer one with the same installation is
        /// closed (its state erased) after being idle this long.
        public var supersededSessionIdleLimit: Duration = .seconds(24 * 3600)
        /// Envelopes pulled per relay request.
        public var pageSize = 200
        /// An envelope still in the outbox after this long is sealed again with a
        /// new send time (a text) or dropped (anything else), before the relay's
        /// 30-day window for `sent_ns` would refuse it.
        public var outboxLifetime: Duration = .seconds(29 * 24 * 3600)
        /// How long a history sync request waits for an answer, and its file on the provider (XIP-31: 72 hours).
        public var historyLifetime: Duration = .seconds(72 * 3600)
        /// Asked for each history request another installation of this account
        /// makes (show its PIN to the user): true approves, false denies. Without
        /// it, requests wait in `Store.historyRequests(role: .provider)` for
        /// `approveHistoryRequest` or `denyHistoryRequest`.
        public var historyConsent: (@Sendable (HistoryRequest) async -> Bool)?

        /// The defaults: the XMTP design's values.
        public init() {}
    }

    /// The store this messenger sends and receives for.
    public nonisolated let store: Store
    nonisolated let relay: any RelayTransport
    /// Its settings.
    public nonisolated let options: Options

    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// A messenger for `store` through `relay`. The store keeps the messaging
    /// extension (`MessagingExtension`) from the first operation on.
    public init(store: Store, relay: any RelayTransport, options: Options = Options()) {
        self.store = store
        self.relay = relay
        self.options = options
    }

    /// Runs `body` while no other public operation of this messenger runs, even
    /// across its suspension points (an actor alone would interleave them).
    /// The store keeps the messaging extension from the first operation on.
    func exclusive<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        if busy { await withCheckedContinuation { waiting.append($0) } } else { busy = true }
        defer { if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() } }
        try store.install(MessagingExtension())
        return try await body()
    }

    // MARK: - Accounts and installations

    /// Joins this store's installation to `account`: makes its X25519 identity,
    /// has the account sign its contact bundle, and publishes the bundle and a
    /// first batch of prekeys. The installation (Ed25519 keys) is created when
    /// the store has none.
    @discardableResult
    public func join(_ account: AccountKey, role: String = "") async throws -> Membership {
        try await exclusive { try await joinAccount(account, role: role) }
    }

    private func joinAccount(_ account: AccountKey, role: String) async throws -> Membership {
        if let existing = try store.membership() {
            guard existing.account == account.id else { throw MessagingError.alreadyJoined(account: existing.account) }
            try await publishIdentity(existing)
            return existing
        }
        let (installation, signing) = try store.signingKey()
        let identity: KeyAgreementKey
        var joined = AccountJoined()
        do {
            identity = try KeyAgreementKey.generate()
            joined.identitySecret = try identity.secretKey().withUnsafeBytes { Data($0) }
        } catch {
            throw KeepsakeError.crypto("\(error)")
        }
        defer { joined.identitySecret.resetBytes(in: 0..<joined.identitySecret.count) }
        let bundle = ContactBundle.with {
            $0.accountKey = Data(account.publicKey)
            $0.installationID = Data(installation.id.bytes)
            $0.signingKey = Data(signing.publicKey)
            $0.identityKey = Data(identity.publicKey)
            $0.createdAtMs = Date().millis
            $0.role = role
        }
        joined.installationID = Data(installation.id.bytes)
        joined.account = account.id.rawValue
        joined.identityKey = Data(identity.publicKey)
        joined.signedBundle = Data(try SignedContactBundle.signing(bundle, with: account.key).wireBytes())
        var drafts = [EventDraft(.accountJoined(joined))]
        drafts += try prekeyEvents(for: installation.id, signing: signing, oneTime: options.prekeyBatch, fallback: true)
        try store.append(contentsOf: drafts)
        guard let membership = try store.membership() else { throw KeepsakeError.database("the account membership was not projected") }
        try await publishIdentity(membership)
        return membership
    }

    /// Publishes the contact bundle and the prekeys the relay does not hold yet (idempotent).
    private func publishIdentity(_ membership: Membership) async throws {
        try await relayCall { try await $0.publish(membership.signedBundle, to: .contact(account: membership.account.rawValue)) }
        try await uploadPrekeys(membership, store.unpublishedPrekeys(membership.installation))
    }

    /// The installations of `account`, refreshed from the relay's contact and
    /// revocation topics (every signature checked; what is new is logged).
    public func installations(of account: AccountID) async throws -> [KnownInstallation] {
        try await exclusive { try await refreshedInstallations(of: account) }
    }

    func refreshedInstallations(of account: AccountID) async throws -> [KnownInstallation] {
        guard AccountIdentity.publicKey(of: account.rawValue) != nil else { throw MessagingError.badAccountID(account) }
        try await refreshDirectory(of: account)
        return try store.knownInstallations(of: account)
    }

    /// Revokes one of the account's installations: publishes a revocation the
    /// account signed. Messages that installation sends from now on are refused.
    public func revoke(_ installation: InstallationID, with account: AccountKey) async throws {
        try await exclusive { try await revokeInstallation(installation, with: account) }
    }

    private func revokeInstallation(_ installation: InstallationID, with account: AccountKey) async throws {
        let revocation = Revocation.with {
            $0.accountKey = Data(account.publicKey)
            $0.installationID = Data(installation.bytes)
            $0.revokedAtMs = Date().millis
        }
        let signed = try SignedRevocation.signing(revocation, with: account.key).wireBytes()
        try await relayCall { try await $0.publish(signed, to: .revoked(account: account.id.rawValue)) }
        try await refreshDirectory(of: account.id)
    }

    /// Reads an account's contact topic (from where this store stopped) and its
    /// revocation topic, and logs the verified installations and revocations it did not know.
    func refreshDirectory(of account: AccountID) async throws {
        let topic = Topic.contact(account: account.rawValue)
        let contacts = try await allItems(of: topic, after: try store.record(topic.name, in: .relayCursors) ?? 0)
        var learned: [EventDraft] = []
        var seen = Set(try store.knownInstallations(of: account).map(\.id))
        for item in contacts.items {
            guard let bundle = try? parse(SignedContactBundle.self, item.data, as: "contact bundle").verified(),
                  bundle.account == account.rawValue, let id = InstallationID(bytes: bundle.installationID), !seen.contains(id) else { continue }
            seen.insert(id)
            learned.append(EventDraft(.peerInstallation(PeerInstallation(bundle))))
        }
        try store.append(contentsOf: learned)
        try store.setRecord(contacts.next, for: topic.name, in: .relayCursors)

        let known = Dictionary(try store.knownInstallations(of: account).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var revocations: [EventDraft] = []
        for item in try await allItems(of: .revoked(account: account.rawValue), after: 0).items {
            guard let revocation = try? parse(SignedRevocation.self, item.data, as: "revocation").verified(),
                  AccountIdentity.of(publicKey: Array(revocation.accountKey)) == account.rawValue,
                  let id = InstallationID(bytes: revocation.installationID), let peer = known[id],
                  peer.revokedAt.map({ $0.millis > revocation.revokedAtMs }) ?? true else { continue }
            var event = PeerInstallation(peer)
            event.revokedAtMs = max(1, revocation.revokedAtMs)
            revocations.append(EventDraft(.peerInstallation(event)))
        }
        try store.append(contentsOf: revocations)
    }

    /// Every item of `topic` after `cursor`, page by page, and the cursor to continue from.
    func allItems(of topic: Topic, after cursor: Int64) async throws -> (items: [RelayItem], next: Int64) {
        var items: [RelayItem] = []
        var cursor = cursor
        while true {
            let page = try await relayCall { [cursor, options] in try await $0.items(on: topic, after: cursor, limit: options.pageSize) }
            items += page.items
            cursor = page.next
            if page.items.count < options.pageSize { return (items, cursor) }
        }
    }

    /// Runs a relay request, reporting failures as `MessagingError.relay`.
    @discardableResult
    func relayCall<T: Sendable>(_ body: @Sendable (any RelayTransport) async throws -> T) async throws -> T {
        do { return try await body(relay) } catch let error as MessagingError { throw error } catch {
            throw MessagingError.relay("\(error)")
        }
    }

    func requireMembership() throws -> Membership {
        guard let membership = try store.membership() else { throw MessagingError.notJoined }
        return membership
    }
}

extension PeerInstallation {
    init(_ known: KnownInstallation) {
        self.init()
        installationID = Data(known.id.bytes)
        account = known.account.rawValue
        signingKey = Data(known.signingKey)
        identityKey = Data(known.identityKey)
        createdAtMs = known.createdAt.millis
        role = known.role
        revokedAtMs = known.revokedAt?.millis ?? 0
    }
}

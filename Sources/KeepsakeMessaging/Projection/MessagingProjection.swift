import Foundation
import GRDB
import KeepsakeStore
import KeepsakeWire

/// The messaging extension of a store: the tables messaging derives from the
/// log (sessions, the account membership, prekeys, peer installations, history
/// requests), and the policy that a superseded installation no longer acts.
///
/// `Messenger` installs it on its store; a store opened with it
/// (`StoreOptions(extensions: [MessagingExtension()])`) keeps its tables
/// current from the first append.
public struct MessagingExtension: StoreExtension {
    /// The messaging extension; install one per store.
    public init() {}

    /// `messaging`: its migrations are `messaging.<identifier>`.
    public var name: String { "messaging" }

    /// Its tables' migrations (`Migrations/Messaging/`).
    public var migrations: [ProjectionMigration] {
        EmbeddedMigrations.all.map { ProjectionMigration(identifier: $0.identifier, sql: $0.sql) }
    }

    /// Sessions, the account membership, prekeys, peer installations and history requests.
    public var tables: [ProjectedTable] {
        [.sessions, .accountMemberships, .prekeys, .peerInstallations, .historyRequests]
    }

    /// Ratchet steps, closed sessions, the account membership, prekeys, peer
    /// installations and history requests (kinds 7 and 15-20). Session states
    /// and secrets are sealed, and only hard backups carry them.
    public var eventKinds: [ExtensionEventKind] { MessagingEvent.declarations }

    /// A projector of messaging events into its tables.
    public func projector(for db: Database, bulk: Bool) -> any ExtensionProjector {
        MessagingProjector(db: db)
    }

    /// The contact bundle the account signed when this store's installation joined it.
    public func accountCredential(in store: Store) throws(KeepsakeError) -> AccountCredential? {
        guard let membership = try store.membership(),
              let signed = try? SignedContactBundle(serializedBytes: membership.signedBundle) else { return nil }
        return try? AccountCredential(bundle: Array(signed.bundle), signature: Array(signed.signature))
    }

    /// Moves bookkeeping an older store kept under string keys into messaging's tables.
    public func prepare(_ store: Store) throws(KeepsakeError) {
        try store.moveLegacyMessagingValues()
    }

    /// Refuses events that act as the installation (sending, session steps,
    /// commits, prekeys, joining) once another store holds a newer generation of it.
    public func checkAppend(_ drafts: [EventDraft], to store: Store) throws(KeepsakeError) {
        guard drafts.contains(where: \.actsAsInstallation), let installation = try store.installation(),
              installation.isSuperseded else { return }
        throw .installationSuperseded(installation)
    }
}

extension ProjectedTable {
    /// The newest state of each Double Ratchet session (the state stays sealed in the log).
    public static let sessions = Self(rawValue: "sessions")
    /// The account this store's installation joined.
    public static let accountMemberships = Self(rawValue: "account_memberships")
    /// This installation's prekeys, used or not.
    public static let prekeys = Self(rawValue: "prekeys")
    /// Other installations learned from verified bundles, with revocations.
    public static let peerInstallations = Self(rawValue: "peer_installations")
    /// History sync requests, either role.
    public static let historyRequests = Self(rawValue: "history_requests")
}

extension EventDraft {
    /// Whether appending this event means acting as the installation, which a superseded store must not do.
    var actsAsInstallation: Bool {
        switch payload {
        case .messageSent, .membershipCommit: true
        case .unknown: MessagingEvent(payload)?.actsAsInstallation ?? false
        default: false
        }
    }
}

/// Applies events to the messaging tables. Like the store's projector, every
/// rule depends only on the events and their order.
struct MessagingProjector: ExtensionProjector {
    let db: Database
    var changedTables: Set<ProjectedTable> = []

    init(db: Database) { self.db = db }

    mutating func apply(_ event: Event) throws {
        switch MessagingEvent(event.payload) {
        case let .ratchetStep(r)?: try ratchetStep(r, event)
        case let .sessionClosed(c)?: try sessionClosed(c)
        case let .accountJoined(j)?: try accountJoined(j, event)
        case let .prekeyCreated(p)?: try prekeyCreated(p, event)
        case let .prekeyUsed(p)?: try prekeyUsed(p, event)
        case let .peerInstallation(p)?: try peerInstallation(p, event)
        case let .historyRequest(h)?: try historyRequest(h, event)
        case nil: break
        }
    }

    mutating func finish() throws {}

    /// Runs one statement, compiled once per connection.
    private func run(sql: String, arguments: StatementArguments = []) throws {
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
    }

    private mutating func ratchetStep(_ r: RatchetStep, _ event: Event) throws {
        let upsert = try RawStatement(db, sql: """
            INSERT INTO sessions (stream_id, peer_account, peer_installation, step, sequence, base_key, active_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (stream_id) DO UPDATE SET
                peer_account = excluded.peer_account, peer_installation = excluded.peer_installation,
                step = excluded.step, sequence = excluded.sequence, base_key = excluded.base_key, active_at = excluded.active_at
            WHERE excluded.step > sessions.step
            """)
        upsert.bind(1, r.streamID)
        upsert.bind(2, r.peerAccount)
        upsert.bind(3, r.peerInstallation)
        upsert.bind(4, Int64(r.step))
        upsert.bind(5, Int64(event.sequence))
        upsert.bind(6, r.baseKey)
        upsert.bind(7, event.time.millis)
        try upsert.run()
        changedTables.insert(.sessions)
    }

    private mutating func sessionClosed(_ c: SessionClosed) throws {
        try run(sql: "DELETE FROM sessions WHERE stream_id = ?", arguments: [c.streamID])
        changedTables.insert(.sessions)
    }

    private mutating func accountJoined(_ j: AccountJoined, _ event: Event) throws {
        try run(
            sql: """
            INSERT OR IGNORE INTO account_memberships (installation_id, account, identity_key, signed_bundle, sequence)
            VALUES (?, ?, ?, ?, ?)
            """,
            arguments: [j.installationID, j.account, j.identityKey, j.signedBundle, Int64(event.sequence)])
        changedTables.insert(.accountMemberships)
    }

    private mutating func prekeyCreated(_ p: PrekeyCreated, _ event: Event) throws {
        try run(
            sql: "INSERT OR IGNORE INTO prekeys (installation_id, prekey_id, fallback, created_at, sequence) VALUES (?, ?, ?, ?, ?)",
            arguments: [p.installationID, Int64(p.prekeyID), p.fallback, event.time.millis, Int64(event.sequence)])
        changedTables.insert(.prekeys)
    }

    /// A used prekey keeps a row, so its ID is never handed out again. Its
    /// creation event is erased by the use (a rebuild never sees it), so the row
    /// then describes the use alone: fallback 0, the use's time and sequence.
    private mutating func prekeyUsed(_ p: PrekeyUsed, _ event: Event) throws {
        try run(
            sql: """
            INSERT INTO prekeys (installation_id, prekey_id, fallback, created_at, sequence, used) VALUES (?, ?, 0, ?, ?, 1)
            ON CONFLICT (installation_id, prekey_id) DO UPDATE SET
                fallback = 0, created_at = excluded.created_at, sequence = excluded.sequence, used = 1
            """,
            arguments: [p.installationID, Int64(p.prekeyID), event.time.millis, Int64(event.sequence)])
        changedTables.insert(.prekeys)
    }

    /// A request's newest status wins; its creation sets what does not change.
    private mutating func historyRequest(_ h: HistoryRequestChanged, _ event: Event) throws {
        try run(
            sql: """
            INSERT INTO history_requests (request_id, role, peer_installation, verification_pin, upload_url, status, reason, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (request_id) DO UPDATE SET status = excluded.status, reason = excluded.reason, updated_at = excluded.updated_at
            """,
            arguments: [h.requestID, h.role.rawValue, h.peerInstallation, Int64(h.verificationPin), h.uploadURL, h.status.rawValue,
                        h.reason, event.time.millis, event.time.millis])
        changedTables.insert(.historyRequests)
    }

    /// A bundle adds the installation; a revocation (revoked_at > 0) sets the
    /// earliest revocation time and never lifts it.
    private mutating func peerInstallation(_ p: PeerInstallation, _ event: Event) throws {
        let revokedAt: Int64? = p.revokedAtMs > 0 ? p.revokedAtMs : nil
        try run(
            sql: """
            INSERT INTO peer_installations (installation_id, account, signing_key, identity_key, created_at, role, revoked_at, sequence)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (installation_id) DO UPDATE SET
                revoked_at = CASE WHEN excluded.revoked_at IS NULL THEN revoked_at
                                  ELSE min(coalesce(revoked_at, excluded.revoked_at), excluded.revoked_at) END
            """,
            arguments: [p.installationID, p.account, p.signingKey, p.identityKey, p.createdAtMs, p.role, revokedAt, Int64(event.sequence)])
        changedTables.insert(.peerInstallations)
    }
}

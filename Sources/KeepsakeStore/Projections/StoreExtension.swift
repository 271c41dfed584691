import GRDB

/// A part of an app's storage built on the store, such as messaging: tables
/// derived from the log, kept by its projector in the store's own projector
/// transactions, and a policy on what may be appended.
///
/// Register extensions when opening a store (`StoreOptions.extensions`) or
/// later with `Store.install(_:)`. An extension's tables are a pure function of
/// the log like the store's: each extension has its own applied position, so
/// one installed late (or left out of one open) catches up from the log.
public protocol StoreExtension: Sendable {
    /// Unique among a store's extensions, and never `store`: it prefixes the
    /// identifiers of its migrations (`<name>.<identifier>`) and keys its applied position.
    var name: String { get }
    /// The SQL that creates and changes its tables, in order. Identifiers are
    /// unique within the extension; a migration, once shipped, never changes.
    var migrations: [ProjectionMigration] { get }
    /// Its tables: emptied before a rebuild, compared by `Store.check()`.
    var tables: [ProjectedTable] { get }
    /// The event kinds it defines: how the log files them and which backup
    /// element carries them. The store refuses new events of kinds no one declares.
    var eventKinds: [ExtensionEventKind] { get }
    /// A projector for one transaction of the store. `bulk` is set for a
    /// rebuild or a restore, where the projector may defer index work to `finish`.
    func projector(for db: Database, bulk: Bool) -> any ExtensionProjector
    /// Runs before new events are logged (not for copies a restore or sync
    /// imports); throwing refuses the whole batch and nothing is logged.
    func checkAppend(_ drafts: [EventDraft], to store: Store) throws(KeepsakeError)
    /// The account the store's installation belongs to, as the account signed it
    /// (for messaging, the contact bundle of the account it joined); nil for none.
    /// Backups carry it, and restores refuse files of other accounts.
    func accountCredential(in store: Store) throws(KeepsakeError) -> AccountCredential?
    /// Runs whenever a store starts keeping the extension (each open, or
    /// `Store.install`), once its tables are current: for work such as moving
    /// the extension's device-local bookkeeping out of an older format.
    func prepare(_ store: Store) throws(KeepsakeError)
}

extension StoreExtension {
    /// By default an extension defines no event kinds.
    public var eventKinds: [ExtensionEventKind] { [] }
    /// By default an extension refuses nothing.
    public func checkAppend(_ drafts: [EventDraft], to store: Store) throws(KeepsakeError) {}
    /// By default an extension knows of no account.
    public func accountCredential(in store: Store) throws(KeepsakeError) -> AccountCredential? { nil }
    /// By default there is nothing to prepare.
    public func prepare(_ store: Store) throws(KeepsakeError) {}
}

/// Applies events to an extension's tables inside the store's transaction.
public protocol ExtensionProjector {
    /// Applies one event. Events arrive in log order, each exactly once per
    /// projection (after a rebuild, again from the start on empty tables).
    mutating func apply(_ event: Event) throws
    /// Ends the transaction's work (anything deferred in bulk mode).
    mutating func finish() throws
    /// The tables this projector changed so far.
    var changedTables: Set<ProjectedTable> { get }
}

/// One migration of a projection's tables.
public struct ProjectionMigration: Sendable, Equatable {
    /// Unique within its extension; never changes once shipped.
    public let identifier: String
    /// The statements it runs, in one transaction.
    public let sql: String

    /// A migration running `sql`.
    public init(identifier: String, sql: String) {
        self.identifier = identifier
        self.sql = sql
    }
}

/// The name of a projection table, as `ProjectionChange.tables` announces it.
public struct ProjectedTable: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The table's SQLite name.
    public let rawValue: String

    /// The table named `rawValue`.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The table's SQLite name.
    public var description: String { rawValue }

    /// Conversations with their summaries (newest message, unread count, read marker).
    public static let conversations = Self(rawValue: "conversations")
    /// Conversation members.
    public static let members = Self(rawValue: "members")
    /// Messages, with their full-text index.
    public static let messages = Self(rawValue: "messages")
    /// The address book.
    public static let contacts = Self(rawValue: "contacts")
    /// Consent by account or conversation.
    public static let consent = Self(rawValue: "consent")
    /// Preferences by key.
    public static let preferences = Self(rawValue: "preferences")
    /// Installations whose keys the log holds.
    public static let installations = Self(rawValue: "installations")
    /// Which log runs each installation, by generation.
    public static let installationClaims = Self(rawValue: "installation_claims")

    /// The store's own tables (extensions list theirs in `StoreExtension.tables`).
    public static let storeTables: [Self] = [
        .conversations, .members, .messages, .contacts, .consent, .preferences, .installations, .installationClaims,
    ]
}

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
    /// A projector for one transaction of the store. `bulk` is set for a
    /// rebuild or a restore, where the projector may defer index work to `finish`.
    func projector(for db: Database, bulk: Bool) -> any ExtensionProjector
    /// Runs before new events are logged (not for copies a restore or sync
    /// imports); throwing refuses the whole batch and nothing is logged.
    func checkAppend(_ drafts: [EventDraft], to store: Store) throws(KeepsakeError)
}

extension StoreExtension {
    public func checkAppend(_ drafts: [EventDraft], to store: Store) throws(KeepsakeError) {}
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
    public let identifier: String
    public let sql: String

    public init(identifier: String, sql: String) {
        self.identifier = identifier
        self.sql = sql
    }
}

/// The name of a projection table, as `ProjectionChange.tables` announces it.
public struct ProjectedTable: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    public var description: String { rawValue }

    public static let conversations = Self(rawValue: "conversations")
    public static let members = Self(rawValue: "members")
    public static let messages = Self(rawValue: "messages")
    public static let contacts = Self(rawValue: "contacts")
    public static let consent = Self(rawValue: "consent")
    public static let preferences = Self(rawValue: "preferences")
    public static let installations = Self(rawValue: "installations")
    public static let installationClaims = Self(rawValue: "installation_claims")

    /// The store's own tables (extensions list theirs in `StoreExtension.tables`).
    public static let storeTables: [Self] = [
        .conversations, .members, .messages, .contacts, .consent, .preferences, .installations, .installationClaims,
    ]
}

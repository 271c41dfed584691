import Foundation
import GRDB
import KeepsakeLog

/// Where each projection stands: the log position its tables reflect, by
/// projection name (`store` for the store's own tables, an extension's name for its).
enum ProjectionCursors {
    static func all(_ db: Database) throws -> [String: Cursor] {
        var cursors: [String: Cursor] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT projection, log_id, applied_sequence FROM projection_cursors") {
            guard let log = LogID(bytes: row["log_id"] as Data) else { continue }
            cursors[row["projection"]] = Cursor(log: log, sequence: UInt64(row["applied_sequence"] as Int64))
        }
        return cursors
    }

    static func record(_ cursor: Cursor, for projection: String, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO projection_cursors (projection, log_id, applied_sequence) VALUES (?, ?, ?)
            ON CONFLICT (projection) DO UPDATE SET log_id = excluded.log_id, applied_sequence = excluded.applied_sequence
            """).execute(arguments: [projection, Data(cursor.log.bytes), Int64(cursor.sequence)])
    }
}

/// The projectors of one transaction: the store's own and its extensions'.
/// Each member applies only the events after the position it stood at, so
/// projections that stand at different places (an extension installed late)
/// share one pass over the log; `finish` records where each now stands.
struct ProjectorGroup {
    private var store: Projector?
    private var extensions: [(name: String, projector: any ExtensionProjector)] = []
    /// Each member's applied sequence: events at or below it are skipped.
    private var applied: [String: UInt64]
    private let db: Database

    /// `members`: the projections taking part, with the sequence each stands at.
    init(_ db: Database, bulk: Bool, members: [String: UInt64], extensions available: [any StoreExtension]) throws {
        self.db = db
        applied = members
        if members[Projector.name] != nil { store = try Projector(db, bulk: bulk) }
        for ext in available where members[ext.name] != nil {
            extensions.append((ext.name, ext.projector(for: db, bulk: bulk)))
        }
    }

    mutating func apply(_ event: Event) throws {
        if store != nil, event.sequence > applied[Projector.name]! { try store!.apply(event) }
        for index in extensions.indices where event.sequence > applied[extensions[index].name]! {
            try extensions[index].projector.apply(event)
        }
    }

    /// Finishes every member and records that it now reflects the log up to `cursor`.
    mutating func finish(appliedUpTo cursor: Cursor) throws -> ProjectionChange {
        var tables: Set<ProjectedTable> = []
        var conversations: Set<ConversationID> = []
        if store != nil {
            try store!.finish()
            tables.formUnion(store!.tables)
            conversations = store!.conversations
            try ProjectionCursors.record(cursor, for: Projector.name, db)
        }
        for index in extensions.indices {
            try extensions[index].projector.finish()
            tables.formUnion(extensions[index].projector.changedTables)
            try ProjectionCursors.record(cursor, for: extensions[index].name, db)
        }
        return ProjectionChange(cursor: cursor, tables: tables, conversations: conversations)
    }
}

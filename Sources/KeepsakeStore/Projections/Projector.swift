import Foundation
import GRDB
import KeepsakeLog

/// What one projector transaction changed, announced after it commits.
public struct ProjectionChange: Sendable {
    /// The log position the projections now reflect.
    public let cursor: Cursor
    /// The tables it changed.
    public let tables: Set<ProjectedTable>
    /// Conversations whose list entry or messages changed.
    public let conversations: Set<ConversationID>
}

/// Applies events to the store's own projection tables, in log order, inside
/// the caller's SQLite transaction (`ProjectorGroup` records the applied position).
///
/// Every rule here depends only on the events and their order, so replaying the
/// whole log (`rebuild`) gives the same rows as applying it piece by piece.
///
/// In bulk mode (a rebuild, or a restore into a fresh store) the projector loads
/// rows the fastest way SQLite allows: the secondary indexes of `messages` are
/// dropped first and created again by `finish`, the full-text index is built in
/// one pass at the end, and conversation summaries (newest message, activity,
/// unread count) are computed once for every conversation from the final rows,
/// which is what applying each event would have left.
struct Projector {
    let db: Database
    let bulk: Bool
    /// In bulk mode, the statements that create the indexes dropped for the load.
    private var droppedIndexes: [String] = []
    private(set) var tables: Set<ProjectedTable> = []
    private var touchedConversations: Set<Data> = []
    /// Conversations whose list entry or messages changed.
    var conversations: Set<ConversationID> { Set(touchedConversations.compactMap { ConversationID(bytes: $0) }) }
    /// Summary changes from added messages, applied once per conversation per
    /// batch (`finish`) or before anything reads the conversation's summary.
    private var pendingSummaries: [Data: SummaryDelta] = [:]

    private struct SummaryDelta {
        var newest: MessageKey
        var received: [MessageKey] = []
    }

    /// A message's display position: (sent time, ID), compared as SQLite compares (INTEGER, BLOB).
    private struct MessageKey: Comparable {
        let at: Int64
        let id: Data
        static func < (a: Self, b: Self) -> Bool { a.at != b.at ? a.at < b.at : a.id.lexicographicallyPrecedes(b.id) }
    }

    init(_ db: Database, bulk: Bool = false) throws {
        self.db = db
        self.bulk = bulk
        guard bulk else { return }
        let indexes = try Row.fetchAll(db, sql: """
            SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' AND sql IS NOT NULL ORDER BY name
            """)
        for index in indexes { try db.execute(sql: "DROP INDEX \((index["name"] as String).quotedDatabaseIdentifier)") }
        droppedIndexes = indexes.map { $0["sql"] }
    }

    /// The name under which the store's own tables record their applied position.
    static let name = "store"

    /// Empties the store's own tables (for a rebuild).
    static func clear(_ db: Database) throws {
        for table in ProjectedTable.storeTables { try db.execute(sql: "DELETE FROM \(table.rawValue)") }
        try db.execute(sql: "INSERT INTO message_search (message_search) VALUES ('delete-all')")
    }

    /// Runs one statement, compiled once per connection.
    private func run(sql: String, arguments: StatementArguments = []) throws {
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
    }

    /// Applies what is still pending, in the caller's transaction; in bulk mode,
    /// creates the dropped indexes, every conversation's summary and the full-text index.
    mutating func finish() throws {
        for conversation in Array(pendingSummaries.keys) { try flushSummary(conversation) }
        guard bulk else { return }
        for sql in droppedIndexes { try db.execute(sql: sql) }
        droppedIndexes = []
        try db.execute(sql: Self.allSummaries)
        try db.execute(sql: "INSERT INTO message_search (message_search) VALUES ('rebuild')")
    }

    /// Every conversation's summary from its rows: the newest message by (sent
    /// time, ID), the activity time (creation or newest message, whichever is
    /// later), and the received messages after the read marker.
    private static let allSummaries = """
        UPDATE conversations SET (last_message_at, last_message_id) = (
                SELECT sent_at, id FROM messages WHERE conversation_id = conversations.id ORDER BY sent_at DESC, id DESC LIMIT 1),
            unread_count = (
                SELECT count(*) FROM messages WHERE conversation_id = conversations.id AND direction = \(Direction.received.rawValue)
                AND (conversations.read_up_to_at IS NULL OR (sent_at, id) > (conversations.read_up_to_at, conversations.read_up_to_id)));
        UPDATE conversations SET last_activity_at = max(created_at, coalesce(last_message_at, created_at));
        """

    mutating func apply(_ event: Event) throws {
        switch event.payload {
        case let .conversationCreated(c): try conversationCreated(c, event)
        case let .messageSent(m): try messageAdded(m, direction: .sent, event)
        case let .messageReceived(m): try messageAdded(m, direction: .received, event)
        case let .messageEdited(e): try messageEdited(e, event)
        case let .messageDeleted(d): try messageDeleted(d)
        case let .membershipCommit(c): try membershipCommit(c)
        case let .contactAdded(c): try contactAdded(c, event)
        case let .contactRemoved(c): try contactRemoved(c)
        case let .consentChanged(c): try consentChanged(c, event)
        case let .preferenceChanged(p): try preferenceChanged(p, event)
        case let .conversationRead(r): try conversationRead(r)
        case let .installationKeys(k): try installationKeys(k, event)
        case let .installationRestored(r): try claim(r.installationID, generation: r.generation, log: r.restoredByLog, event)
        case .installationRetired: break  // its effect is in the log: the installation's keys are erased
        case .unknown, .erased: break  // extensions' kinds and unknown ones; erased content
        }
    }

    // MARK: - Conversations and members

    private mutating func conversationCreated(_ c: ConversationCreated, _ event: Event) throws {
        let at = event.time.millis
        try run(
            sql: """
            INSERT INTO conversations (id, kind, title, created_by, created_sequence, created_at, last_activity_at, created_by_log, epoch)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING
            """,
            arguments: [Data(c.conversationID), c.kind.rawValue, c.title, c.createdBy, Int64(event.sequence), at, at,
                        Data(event.id.origin.bytes), Int64(c.epoch)])
        guard db.changesCount > 0 else { return }
        pendingSummaries[c.conversationID] = nil
        for member in c.members { try addMember(member, to: c.conversationID) }
        if !bulk { try refreshSummary(c.conversationID) }
        touch(.conversations, c.conversationID)
        tables.insert(.members)
    }

    private mutating func membershipCommit(_ c: MembershipCommit) throws {
        try run(
            sql: "UPDATE conversations SET epoch = ? WHERE id = ? AND epoch = ?",
            arguments: [Int64(c.epoch), Data(c.conversationID), Int64(c.epoch) - 1])
        guard db.changesCount > 0 else { return }
        for account in c.added { try addMember(account, to: c.conversationID) }
        for account in c.removed {
            try run(sql: "DELETE FROM members WHERE conversation_id = ? AND account_id = ?",
                           arguments: [Data(c.conversationID), account])
        }
        touch(.conversations, c.conversationID)
        tables.insert(.members)
    }

    private func addMember(_ account: String, to conversation: Data) throws {
        try run(sql: "INSERT OR IGNORE INTO members (conversation_id, account_id) VALUES (?, ?)",
                       arguments: [Data(conversation), account])
    }

    // MARK: - Messages

    enum Direction: Int { case sent = 1, received = 2 }

    private mutating func messageAdded(_ m: MessageContent, direction: Direction, _ event: Event) throws {
        let insert = try RawStatement(db, sql: """
            INSERT INTO messages (sequence, id, conversation_id, sender, direction, text, content_type, sent_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING
            """)
        insert.bind(1, Int64(event.sequence))
        insert.bind(2, m.messageID)
        insert.bind(3, m.conversationID)
        insert.bind(4, m.sender)
        insert.bind(5, Int64(direction.rawValue))
        insert.bind(6, m.text)
        insert.bind(7, m.contentType)
        insert.bind(8, m.sentAtMs)
        try insert.run()
        guard db.changesCount > 0 else { return }
        touch(.messages, m.conversationID)
        guard !bulk else { return }
        try index(sequence: Int64(event.sequence), text: m.text)
        let key = MessageKey(at: m.sentAtMs, id: m.messageID)
        var delta = pendingSummaries[m.conversationID] ?? SummaryDelta(newest: key)
        delta.newest = max(delta.newest, key)
        if direction == .received { delta.received.append(key) }
        pendingSummaries[m.conversationID] = delta
    }

    /// Applies a conversation's pending summary change: newest message,
    /// activity time and unread count, as if each message had updated them.
    private mutating func flushSummary(_ conversation: Data) throws {
        guard let delta = pendingSummaries.removeValue(forKey: conversation),
              let summary = try summary(of: conversation) else { return }
        let newest = summary.lastMessage.map { max($0, delta.newest) } ?? delta.newest
        let unread = delta.received.reduce(0) { $0 + (summary.isUnread($1) ? 1 : 0) }
        try run(
            sql: """
            UPDATE conversations SET last_activity_at = max(last_activity_at, ?), last_message_at = ?, last_message_id = ?,
                unread_count = unread_count + ? WHERE id = ?
            """,
            arguments: [newest.at, newest.at, newest.id, unread, conversation])
    }

    private mutating func messageEdited(_ e: MessageEdited, _ event: Event) throws {
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT sequence, text FROM messages WHERE id = ? AND (edited_at IS NULL OR edited_at <= ?)"),
            arguments: [e.messageID, e.editedAtMs]) else { return }
        try run(sql: "UPDATE messages SET text = ?, edited_at = ? WHERE id = ?", arguments: [e.text, e.editedAtMs, e.messageID])
        try unindex(sequence: row["sequence"], text: row["text"])
        try index(sequence: row["sequence"], text: e.text)
        touch(.messages, e.conversationID)
    }

    /// Adds a message's text to the full-text index (in bulk mode, `finish` indexes everything at once).
    private func index(sequence: Int64, text: String) throws {
        guard !bulk else { return }
        let insert = try RawStatement(db, sql: "INSERT INTO message_search (rowid, text) VALUES (?, ?)")
        insert.bind(1, sequence)
        insert.bind(2, text)
        try insert.run()
    }

    /// Removes a message's text from the full-text index; `text` must be what was indexed.
    private func unindex(sequence: Int64, text: String) throws {
        guard !bulk else { return }
        try run(sql: "INSERT INTO message_search (message_search, rowid, text) VALUES ('delete', ?, ?)", arguments: [sequence, text])
    }

    /// Removes the message wherever it is: the log erases a message's events by
    /// its ID alone, so a rebuild never sees it, whatever conversation the deletion names.
    private mutating func messageDeleted(_ d: MessageDeleted) throws {
        guard let deleted = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT sequence, text, sent_at, direction, conversation_id FROM messages WHERE id = ?"),
            arguments: [d.messageID]) else { return }
        let conversation: Data = deleted["conversation_id"]
        try flushSummary(conversation)
        try run(sql: "DELETE FROM messages WHERE id = ?", arguments: [d.messageID])
        touch(.messages, conversation)
        guard !bulk else { return }
        try unindex(sequence: deleted["sequence"], text: deleted["text"])
        let key = MessageKey(at: deleted["sent_at"], id: d.messageID)
        guard let summary = try summary(of: conversation) else { return }
        let wasUnread = deleted["direction"] == Direction.received.rawValue && summary.isUnread(key)
        try run(sql: "UPDATE conversations SET unread_count = unread_count - ? WHERE id = ?",
                arguments: [wasUnread ? 1 : 0, conversation])
        if summary.lastMessage?.id == d.messageID { try refreshNewest(conversation) }
    }

    /// Moves the read marker forward to the position the event names (its
    /// message's sent time and ID), whether or not that message is still there.
    private mutating func conversationRead(_ r: ConversationRead) throws {
        try flushSummary(r.conversationID)
        guard let marker = try readMarker(r), let summary = try summary(of: r.conversationID), summary.isUnread(marker) else { return }
        touch(.conversations, r.conversationID)
        guard !bulk else {
            return try run(sql: "UPDATE conversations SET read_up_to_at = ?, read_up_to_id = ? WHERE id = ?",
                           arguments: [marker.at, marker.id, r.conversationID])
        }
        let unread = try Int.fetchOne(
            db.cachedStatement(sql: """
                SELECT count(*) FROM messages
                WHERE conversation_id = ? AND (sent_at, id) > (?, ?) AND direction = \(Direction.received.rawValue)
                """),
            arguments: [r.conversationID, marker.at, marker.id]) ?? 0
        try run(sql: "UPDATE conversations SET read_up_to_at = ?, read_up_to_id = ?, unread_count = ? WHERE id = ?",
                arguments: [marker.at, marker.id, unread, r.conversationID])
    }

    /// The position a read event names: carried by the event, or for events
    /// written before it was, the projected message's (nil when it is gone).
    private func readMarker(_ r: ConversationRead) throws -> MessageKey? {
        if r.hasUpToSentAtMs { return MessageKey(at: r.upToSentAtMs, id: r.upToMessageID) }
        return try Queries.sentTime(of: r.upToMessageID, in: r.conversationID, db).map { MessageKey(at: $0, id: r.upToMessageID) }
    }

    /// A conversation's read marker and newest message, as stored.
    private struct Summary {
        var readUpTo: MessageKey?
        var lastMessage: MessageKey?

        /// Whether a message at `key` counts as unread (it is after the read marker).
        func isUnread(_ key: MessageKey) -> Bool { readUpTo.map { key > $0 } ?? true }
    }

    private func summary(of conversation: Data) throws -> Summary? {
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT read_up_to_at, read_up_to_id, last_message_at, last_message_id FROM conversations WHERE id = ?"),
            arguments: [conversation]) else { return nil }
        func key(_ at: String, _ id: String) -> MessageKey? {
            guard let at = row[at] as Int64?, let id = row[id] as Data? else { return nil }
            return MessageKey(at: at, id: id)
        }
        return Summary(readUpTo: key("read_up_to_at", "read_up_to_id"), lastMessage: key("last_message_at", "last_message_id"))
    }

    /// Recomputes the newest message and activity time from the messages table.
    private func refreshNewest(_ conversation: Data) throws {
        let newest = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT sent_at, id FROM messages WHERE conversation_id = ? ORDER BY sent_at DESC, id DESC LIMIT 1"),
            arguments: [conversation])
        try run(
            sql: """
            UPDATE conversations SET last_message_at = ?, last_message_id = ?, last_activity_at = max(created_at, coalesce(?, created_at))
            WHERE id = ?
            """,
            arguments: [newest?["sent_at"] as Int64?, newest?["id"] as Data?, newest?["sent_at"] as Int64?, conversation])
    }

    /// Recomputes a new conversation's summary from messages that arrived before it.
    private func refreshSummary(_ conversation: Data) throws {
        try refreshNewest(conversation)
        try run(
            sql: """
            UPDATE conversations SET unread_count = (
                SELECT count(*) FROM messages WHERE conversation_id = ? AND direction = \(Direction.received.rawValue))
            WHERE id = ?
            """,
            arguments: [conversation, conversation])
    }

    // MARK: - Sessions, contacts, consent, preferences

    private mutating func installationKeys(_ k: InstallationKeys, _ event: Event) throws {
        let origin = Data(event.id.origin.bytes)
        try run(
            sql: "INSERT OR IGNORE INTO installations (id, public_key, keys_sequence, created_by_log) VALUES (?, ?, ?, ?)",
            arguments: [k.installationID, k.signingPublicKey, Int64(event.sequence), origin])
        try claim(k.installationID, generation: 1, log: origin, event)
    }

    private mutating func claim(_ installation: Data, generation: UInt64, log: Data, _ event: Event) throws {
        try run(
            sql: "INSERT OR IGNORE INTO installation_claims (installation_id, generation, log_id, sequence) VALUES (?, ?, ?, ?)",
            arguments: [installation, Int64(generation), log, Int64(event.sequence)])
        tables.insert(.installations)
    }

    private mutating func contactAdded(_ c: ContactAdded, _ event: Event) throws {
        try upsert(.contacts, key: ("account_id", c.accountID), value: ("display_name", c.displayName), event)
    }

    private mutating func contactRemoved(_ c: ContactRemoved) throws {
        try run(sql: "DELETE FROM contacts WHERE account_id = ?", arguments: [c.accountID])
        tables.insert(.contacts)
    }

    private mutating func consentChanged(_ c: ConsentChanged, _ event: Event) throws {
        try upsert(.consent, key: ("entity", c.entity), value: ("state", c.state.rawValue), event)
    }

    private mutating func preferenceChanged(_ p: PreferenceChanged, _ event: Event) throws {
        try upsert(.preferences, key: ("key", p.key), value: ("value", p.value), event)
    }

    /// Sets one value of a keyed row (contacts, consent, preferences): the last event in log order wins.
    private mutating func upsert(
        _ table: ProjectedTable, key: (column: String, value: String),
        value: (column: String, value: any DatabaseValueConvertible), _ event: Event
    ) throws {
        try run(
            sql: """
            INSERT INTO \(table.rawValue) (\(key.column), \(value.column), sequence) VALUES (?, ?, ?)
            ON CONFLICT (\(key.column)) DO UPDATE SET \(value.column) = excluded.\(value.column), sequence = excluded.sequence
            """,
            arguments: [key.value, value.value, Int64(event.sequence)])
        tables.insert(table)
    }

    private mutating func touch(_ table: ProjectedTable, _ conversation: Data) {
        tables.insert(table)
        tables.insert(.conversations)
        touchedConversations.insert(conversation)
    }
}

extension Date {
    /// Milliseconds since 1970.
    package var millis: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
}

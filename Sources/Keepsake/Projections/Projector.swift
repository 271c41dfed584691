import Foundation
import GRDB
import KeepsakeLog

/// The tables a projection change touched.
public enum ProjectedTable: String, Sendable, Hashable, CaseIterable {
    case conversations, members, messages, sessions, contacts, consent, preferences
}

/// What one projector transaction changed, announced after it commits.
public struct ProjectionChange: Sendable {
    /// The log position the projections now reflect.
    public let cursor: Cursor
    public let tables: Set<ProjectedTable>
    /// Conversations whose list entry or messages changed.
    public let conversations: Set<ConversationID>
}

/// Applies events to the projection tables, in log order, inside the caller's
/// SQLite transaction, and records the applied position in that same transaction.
///
/// Every rule here depends only on the events and their order, so replaying the
/// whole log (`rebuild`) gives the same rows as applying it piece by piece.
struct Projector {
    let db: Database
    private(set) var tables: Set<ProjectedTable> = []
    private(set) var conversations: Set<ConversationID> = []

    init(_ db: Database) {
        self.db = db
    }

    /// The sequence the projections reflect, and the log they reflect it for.
    static func appliedState(_ db: Database) throws -> (log: LogID, sequence: UInt64)? {
        guard let row = try Row.fetchOne(db, sql: "SELECT log_id, applied_sequence FROM projection_state WHERE id = 1"),
              let log = LogID(bytes: (row["log_id"] as Data)) else { return nil }
        return (log, UInt64(row["applied_sequence"] as Int64))
    }

    static func recordApplied(_ cursor: Cursor, _ db: Database) throws {
        try db.execute(
            sql: """
            INSERT INTO projection_state (id, log_id, applied_sequence) VALUES (1, ?, ?)
            ON CONFLICT (id) DO UPDATE SET log_id = excluded.log_id, applied_sequence = excluded.applied_sequence
            """,
            arguments: [Data(cursor.log.bytes), Int64(cursor.sequence)])
    }

    /// Empties every projection table (for a rebuild).
    static func clear(_ db: Database) throws {
        for table in ProjectedTable.allCases { try db.execute(sql: "DELETE FROM \(table.rawValue)") }
        try db.execute(sql: "DELETE FROM projection_state")
    }

    mutating func apply(_ event: Event) throws {
        switch event.payload {
        case let .conversationCreated(c): try conversationCreated(c, event)
        case let .messageSent(m): try messageAdded(m, direction: .sent, event)
        case let .messageReceived(m): try messageAdded(m, direction: .received, event)
        case let .messageEdited(e): try messageEdited(e, event)
        case let .messageDeleted(d): try messageDeleted(d)
        case let .membershipCommit(c): try membershipCommit(c)
        case let .ratchetStep(r): try ratchetStep(r, event)
        case let .contactAdded(c): try contactAdded(c, event)
        case let .contactRemoved(c): try contactRemoved(c)
        case let .consentChanged(c): try consentChanged(c, event)
        case let .preferenceChanged(p): try preferenceChanged(p, event)
        case let .conversationRead(r): try conversationRead(r)
        case .unknown, .erased: break
        }
    }

    // MARK: - Conversations and members

    private mutating func conversationCreated(_ c: ConversationCreated, _ event: Event) throws {
        let at = event.time.millis
        try db.execute(
            sql: """
            INSERT INTO conversations (id, kind, title, created_by, created_sequence, created_at, last_activity_at)
            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING
            """,
            arguments: [Data(c.conversationID), c.kind.rawValue, c.title, c.createdBy, Int64(event.sequence), at, at])
        guard db.changesCount > 0 else { return }
        for member in c.members { try addMember(member, to: c.conversationID) }
        try refreshSummary(c.conversationID)
        touch(.conversations, c.conversationID)
        tables.insert(.members)
    }

    private mutating func membershipCommit(_ c: MembershipCommit) throws {
        try db.execute(
            sql: "UPDATE conversations SET epoch = ? WHERE id = ? AND epoch = ?",
            arguments: [Int64(c.epoch), Data(c.conversationID), Int64(c.epoch) - 1])
        guard db.changesCount > 0 else { return }
        for account in c.added { try addMember(account, to: c.conversationID) }
        for account in c.removed {
            try db.execute(sql: "DELETE FROM members WHERE conversation_id = ? AND account_id = ?",
                           arguments: [Data(c.conversationID), account])
        }
        touch(.conversations, c.conversationID)
        tables.insert(.members)
    }

    private func addMember(_ account: String, to conversation: Data) throws {
        try db.execute(sql: "INSERT OR IGNORE INTO members (conversation_id, account_id) VALUES (?, ?)",
                       arguments: [Data(conversation), account])
    }

    // MARK: - Messages

    enum Direction: Int { case sent = 1, received = 2 }

    private mutating func messageAdded(_ m: MessageContent, direction: Direction, _ event: Event) throws {
        let insert = try db.cachedStatement(sql: """
            INSERT INTO messages (sequence, id, conversation_id, sender, direction, text, content_type, sent_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING
            """)
        let id = Data(m.messageID), conversation = Data(m.conversationID)
        try insert.execute(arguments: [Int64(event.sequence), id, conversation, m.sender, direction.rawValue,
                                       m.text, m.contentType, m.sentAtMs])
        guard db.changesCount > 0 else { return }
        let update = try db.cachedStatement(sql: """
            UPDATE conversations SET
                last_activity_at = max(last_activity_at, :at),
                last_message_at = CASE WHEN last_message_id IS NULL OR (:at, :id) > (last_message_at, last_message_id) THEN :at ELSE last_message_at END,
                last_message_id = CASE WHEN last_message_id IS NULL OR (:at, :id) > (last_message_at, last_message_id) THEN :id ELSE last_message_id END,
                unread_count = unread_count + (:received AND (read_up_to_id IS NULL OR (:at, :id) > (read_up_to_at, read_up_to_id)))
            WHERE id = :conversation
            """)
        try update.execute(arguments: ["at": m.sentAtMs, "id": id, "received": direction == .received, "conversation": conversation])
        touch(.messages, m.conversationID)
    }

    private mutating func messageEdited(_ e: MessageEdited, _ event: Event) throws {
        try db.execute(
            sql: "UPDATE messages SET text = ?, edited_at = ? WHERE id = ? AND (edited_at IS NULL OR edited_at <= ?)",
            arguments: [e.text, e.editedAtMs, Data(e.messageID), e.editedAtMs])
        if db.changesCount > 0 { touch(.messages, e.conversationID) }
    }

    private mutating func messageDeleted(_ d: MessageDeleted) throws {
        try db.execute(sql: "DELETE FROM messages WHERE id = ?", arguments: [Data(d.messageID)])
        guard db.changesCount > 0 else { return }
        try refreshSummary(d.conversationID)
        touch(.messages, d.conversationID)
    }

    private mutating func conversationRead(_ r: ConversationRead) throws {
        try db.execute(
            sql: """
            UPDATE conversations SET read_up_to_at = m.sent_at, read_up_to_id = m.id
            FROM (SELECT sent_at, id FROM messages WHERE id = ? AND conversation_id = ?) AS m
            WHERE conversations.id = ? AND (read_up_to_id IS NULL OR (m.sent_at, m.id) > (read_up_to_at, read_up_to_id))
            """,
            arguments: [Data(r.upToMessageID), Data(r.conversationID), Data(r.conversationID)])
        guard db.changesCount > 0 else { return }
        try refreshSummary(r.conversationID)
        touch(.conversations, r.conversationID)
    }

    /// Recomputes a conversation's newest message, activity time and unread
    /// count from its messages (after a deletion, a read marker, or creation).
    private func refreshSummary(_ conversation: Data) throws {
        try db.execute(
            sql: """
            UPDATE conversations SET
                last_message_at = newest.sent_at,
                last_message_id = newest.id,
                last_activity_at = max(created_at, coalesce(newest.sent_at, created_at)),
                unread_count = (
                    SELECT count(*) FROM messages m
                    WHERE m.conversation_id = conversations.id AND m.direction = 2
                      AND (conversations.read_up_to_id IS NULL OR (m.sent_at, m.id) > (conversations.read_up_to_at, conversations.read_up_to_id)))
            FROM (SELECT NULL) LEFT JOIN (
                SELECT sent_at, id FROM messages WHERE conversation_id = :c ORDER BY sent_at DESC, id DESC LIMIT 1
            ) AS newest
            WHERE conversations.id = :c
            """,
            arguments: ["c": Data(conversation)])
    }

    // MARK: - Sessions, contacts, consent, preferences

    private mutating func ratchetStep(_ r: RatchetStep, _ event: Event) throws {
        try db.execute(
            sql: """
            INSERT INTO sessions (stream_id, peer_account, peer_installation, step, sequence) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (stream_id) DO UPDATE SET
                peer_account = excluded.peer_account, peer_installation = excluded.peer_installation,
                step = excluded.step, sequence = excluded.sequence
            WHERE excluded.step > sessions.step
            """,
            arguments: [Data(r.streamID), r.peerAccount, r.peerInstallation, Int64(r.step), Int64(event.sequence)])
        tables.insert(.sessions)
    }

    private mutating func contactAdded(_ c: ContactAdded, _ event: Event) throws {
        try db.execute(
            sql: """
            INSERT INTO contacts (account_id, display_name, sequence) VALUES (?, ?, ?)
            ON CONFLICT (account_id) DO UPDATE SET display_name = excluded.display_name, sequence = excluded.sequence
            """,
            arguments: [c.accountID, c.displayName, Int64(event.sequence)])
        tables.insert(.contacts)
    }

    private mutating func contactRemoved(_ c: ContactRemoved) throws {
        try db.execute(sql: "DELETE FROM contacts WHERE account_id = ?", arguments: [c.accountID])
        tables.insert(.contacts)
    }

    private mutating func consentChanged(_ c: ConsentChanged, _ event: Event) throws {
        try db.execute(
            sql: """
            INSERT INTO consent (entity, state, sequence) VALUES (?, ?, ?)
            ON CONFLICT (entity) DO UPDATE SET state = excluded.state, sequence = excluded.sequence
            """,
            arguments: [c.entity, c.state.rawValue, Int64(event.sequence)])
        tables.insert(.consent)
    }

    private mutating func preferenceChanged(_ p: PreferenceChanged, _ event: Event) throws {
        try db.execute(
            sql: """
            INSERT INTO preferences (key, value, sequence) VALUES (?, ?, ?)
            ON CONFLICT (key) DO UPDATE SET value = excluded.value, sequence = excluded.sequence
            """,
            arguments: [p.key, Data(p.value), Int64(event.sequence)])
        tables.insert(.preferences)
    }

    private mutating func touch(_ table: ProjectedTable, _ conversation: Data) {
        tables.insert(table)
        tables.insert(.conversations)
        if let id = ConversationID(bytes: conversation) { conversations.insert(id) }
    }
}

extension Date {
    /// Milliseconds since 1970.
    var millis: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
}

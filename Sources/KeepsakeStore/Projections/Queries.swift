import Foundation
import GRDB
import KeepsakeLog

/// A conversation as the conversation list shows it.
public struct ConversationSummary: Sendable, Equatable {
    /// Direct or group.
    public typealias Kind = ConversationKind

    /// The conversation's ID.
    public let id: ConversationID
    /// Direct or group.
    public let kind: Kind
    /// Its title (empty for direct conversations made by messaging).
    public let title: String
    /// The account that started it.
    public let createdBy: AccountID
    /// A group's membership epoch (0 for direct conversations).
    public let epoch: UInt64
    /// The newest message's time, or the creation time for a conversation without messages.
    public let lastActivity: Date
    /// The newest message, or nil without messages.
    public let lastMessageID: MessageID?
    /// Received messages after the read marker.
    public let unreadCount: Int
    /// Whether this store's log created the conversation (not a restore or a
    /// sync from another store). Messaging's `Store.isWritable(_:)` builds on it:
    /// restored conversations are read-only until a member's installation reaches this one.
    public let createdHere: Bool
}

/// A message as the projections hold it.
public struct Message: Sendable, Equatable {
    /// Written by this installation, or received.
    public enum Direction: Int, Sendable { case sent = 1, received = 2 }

    /// The message's ID.
    public let id: MessageID
    /// Its conversation.
    public let conversationID: ConversationID
    /// The account that wrote it.
    public let sender: AccountID
    /// Sent from here or received.
    public let direction: Direction
    /// Its text, as last edited.
    public let text: String
    /// What `text` holds, e.g. `text/plain`.
    public let contentType: String
    /// When it was sent, by the sender's clock (display order only).
    public let sentAt: Date
    /// When it was last edited, or nil.
    public let editedAt: Date?
    /// Log sequence of the event that created the message.
    public let sequence: UInt64
}

/// Where a page of messages ends; pass it back to get the next (older) page.
///
/// Keyset pagination on (sent time, message ID): stable while messages arrive.
/// Text form: `<sent milliseconds>.<message id hex>`.
public struct MessagePageCursor: Sendable, Hashable, CustomStringConvertible {
    let sentAt: Int64
    let id: MessageID

    /// The text form, `<sent milliseconds>.<message id hex>`.
    public var description: String { "\(sentAt).\(id)" }

    /// Parses the text form; nil for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let at = Int64(parts[0]), let id = MessageID(parts[1]) else { return nil }
        self.sentAt = at
        self.id = id
    }

    init(sentAt: Int64, id: MessageID) {
        self.sentAt = sentAt
        self.id = id
    }
}

/// A page of a conversation's messages, newest first.
public struct MessagePage: Sendable, Equatable {
    /// The page's messages, newest first.
    public let messages: [Message]
    /// nil when there are no older messages.
    public let next: MessagePageCursor?
}

/// A contact in the address book.
public struct Contact: Sendable, Equatable {
    /// The contact's account.
    public let accountID: AccountID
    /// The name the user gave it.
    public let displayName: String
}

/// Read-only queries over the projection tables.
enum Queries {
    static func contacts(_ db: Database) throws -> [Contact] {
        try Row.fetchAll(db, sql: "SELECT account_id, display_name FROM contacts ORDER BY display_name, account_id")
            .map { Contact(accountID: AccountID($0["account_id"] as String), displayName: $0["display_name"]) }
    }

    static func consent(_ db: Database, for entity: String) throws -> ConsentState {
        try Int.fetchOne(db, sql: "SELECT state FROM consent WHERE entity = ?", arguments: [entity])
            .flatMap(ConsentState.init(rawValue:)) ?? .unknown
    }

    static func preference(_ db: Database, _ key: String) throws -> Data? {
        try Data.fetchOne(db, sql: "SELECT value FROM preferences WHERE key = ?", arguments: [key])
    }

    static let conversationColumns = """
        c.id, c.kind, c.title, c.created_by, c.epoch, c.last_activity_at, c.last_message_id, c.unread_count,
        coalesce(c.created_by_log = (SELECT log_id FROM projection_cursors WHERE projection = 'store'), 0) AS created_here
        """

    static func conversations(_ db: Database, limit: Int?) throws -> [ConversationSummary] {
        try Row.fetchAll(
            db,
            sql: "SELECT \(conversationColumns) FROM conversations c ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?",
            arguments: [limit ?? -1]
        ).map(conversation)
    }

    static func conversation(_ db: Database, id: ConversationID) throws -> ConversationSummary? {
        try Row.fetchOne(db, sql: "SELECT \(conversationColumns) FROM conversations c WHERE c.id = ?", arguments: [Data(id.bytes)])
            .map(conversation)
    }

    static func members(_ db: Database, of id: ConversationID) throws -> [AccountID] {
        try String.fetchAll(db, sql: "SELECT account_id FROM members WHERE conversation_id = ? ORDER BY account_id", arguments: [Data(id.bytes)])
            .map { AccountID($0) }
    }

    /// The columns `message(_:)` reads, from `messages` aliased as `m`.
    static let messageColumns = "m.sequence, m.id, m.conversation_id, m.sender, m.direction, m.text, m.content_type, m.sent_at, m.edited_at"

    static func messages(_ db: Database, in conversation: ConversationID, before: MessagePageCursor?, limit: Int) throws -> MessagePage {
        var sql = "SELECT \(messageColumns) FROM messages m WHERE conversation_id = ?"
        var arguments: StatementArguments = [Data(conversation.bytes)]
        if let before {
            sql += " AND (sent_at, id) < (?, ?)"
            arguments += [before.sentAt, Data(before.id.bytes)]
        }
        sql += " ORDER BY sent_at DESC, id DESC LIMIT ?"
        arguments += [limit + 1]
        var messages = try Row.fetchAll(db, sql: sql, arguments: arguments).map(message)
        var next: MessagePageCursor?
        if messages.count > limit {
            messages.removeLast()
            next = messages.last.map { MessagePageCursor(sentAt: $0.sentAt.millis, id: $0.id) }
        }
        return MessagePage(messages: messages, next: next)
    }

    /// The sent time of a projected message of `conversation`, or nil when it is not there.
    static func sentTime(of message: Data, in conversation: Data, _ db: Database) throws -> Int64? {
        try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT sent_at FROM messages WHERE id = ? AND conversation_id = ?"),
            arguments: [message, conversation])
    }

    static func message(_ db: Database, id: MessageID) throws -> Message? {
        try Row.fetchOne(db, sql: "SELECT \(messageColumns) FROM messages m WHERE id = ?", arguments: [Data(id.bytes)]).map(message)
    }

    /// Full-text search; every word of `text` must appear (words are quoted, so
    /// FTS5 operators in user input are taken literally). Best matches first.
    static func search(_ db: Database, text: String, limit: Int) throws -> [Message] {
        let terms = text.split(whereSeparator: \.isWhitespace).map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        guard !terms.isEmpty else { return [] }
        return try Row.fetchAll(
            db,
            sql: """
            SELECT \(messageColumns)
            FROM message_search JOIN messages m ON m.sequence = message_search.rowid
            WHERE message_search MATCH ? ORDER BY rank LIMIT ?
            """,
            arguments: [terms.joined(separator: " "), limit]
        ).map(message)
    }

    private static func conversation(_ row: Row) -> ConversationSummary {
        ConversationSummary(
            id: ConversationID(bytes: row["id"] as Data)!,
            kind: ConversationSummary.Kind(rawValue: row["kind"]) ?? .unspecified,
            title: row["title"],
            createdBy: AccountID(row["created_by"] as String),
            epoch: UInt64(row["epoch"] as Int64),
            lastActivity: Date(millis: row["last_activity_at"]),
            lastMessageID: (row["last_message_id"] as Data?).flatMap { MessageID(bytes: $0) },
            unreadCount: row["unread_count"],
            createdHere: row["created_here"])
    }

    private static func message(_ row: Row) -> Message {
        Message(
            id: MessageID(bytes: row["id"] as Data)!,
            conversationID: ConversationID(bytes: row["conversation_id"] as Data)!,
            sender: AccountID(row["sender"] as String),
            direction: Message.Direction(rawValue: row["direction"]) ?? .received,
            text: row["text"],
            contentType: row["content_type"],
            sentAt: Date(millis: row["sent_at"]),
            editedAt: (row["edited_at"] as Int64?).map { Date(millis: $0) },
            sequence: UInt64(row["sequence"] as Int64))
    }
}

extension Date {
    package init(millis: Int64) { self.init(timeIntervalSince1970: Double(millis) / 1000) }
}

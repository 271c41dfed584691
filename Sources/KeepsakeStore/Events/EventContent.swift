import Foundation
import GRDB

/// An account as conversations name it. For messaging accounts it is the
/// account's Ed25519 public key in lowercase hex; the store takes any text.
public struct AccountID: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible,
    ExpressibleByStringLiteral {
    /// The ID as text.
    public let rawValue: String

    /// An account ID from its text.
    public init(rawValue: String) { self.rawValue = rawValue }
    /// An account ID from its text.
    public init(_ rawValue: String) { self.rawValue = rawValue }
    /// An account ID written as a literal (`"alice"`).
    public init(stringLiteral value: String) { rawValue = value }

    /// The ID as text.
    public var description: String { rawValue }

    /// Orders IDs as their text.
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// What kind of event a log record holds: its number in the log, and a name for display.
public struct EventKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The kind's number in the log (`Protos/keepsake/v1/events.proto`).
    public let rawValue: UInt32

    /// The kind with this number, known or not.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// A short name for display and logs (`message-sent`), or `unknown(<number>)`.
    public var description: String { EventPayload.name(ofKind: rawValue) }

    /// A conversation was started.
    public static let conversationCreated = Self(rawValue: 1)
    /// This installation wrote a message.
    public static let messageSent = Self(rawValue: 2)
    /// A message arrived from another installation.
    public static let messageReceived = Self(rawValue: 3)
    /// A message's text changed.
    public static let messageEdited = Self(rawValue: 4)
    /// A message was deleted (its events are erased).
    public static let messageDeleted = Self(rawValue: 5)
    /// A group's membership changed.
    public static let membershipCommit = Self(rawValue: 6)
    /// An address book entry was added or renamed.
    public static let contactAdded = Self(rawValue: 8)
    /// An address book entry was removed.
    public static let contactRemoved = Self(rawValue: 9)
    /// Consent for an account or a conversation changed.
    public static let consentChanged = Self(rawValue: 10)
    /// A preference changed.
    public static let preferenceChanged = Self(rawValue: 11)
    /// A conversation was read up to a message.
    public static let conversationRead = Self(rawValue: 12)
}

/// Direct (two accounts) or group.
public enum ConversationKind: Int, Sendable, Hashable, Codable {
    case unspecified = 0, direct = 1, group = 2
}

/// Whether the user wants to hear from an account or a conversation.
public enum ConsentState: Int, Sendable, Hashable, Codable {
    case unknown = 0, allowed = 1, denied = 2
}

/// What an event says, as apps read and write it.
///
/// Events that carry keys or session state (installation keys, ratchet steps,
/// prekeys, account memberships), events of extensions such as messaging, and
/// kinds a newer Keepsake wrote arrive as `.opaque`: their kind, never their
/// bytes. A deleted message's events and superseded session states arrive as `.erased`.
public enum EventContent: Sendable, Hashable {
    case conversationCreated(ConversationStart)
    /// A message this installation wrote.
    case messageSent(MessagePost)
    /// A message from another installation.
    case messageReceived(MessagePost)
    case messageEdited(MessageEdit)
    case messageDeleted(MessageDeletion)
    /// A group's membership change at an epoch.
    case membershipCommitted(MembershipChange)
    case contactAdded(ContactEntry)
    case contactRemoved(AccountID)
    case consentChanged(ConsentChange)
    case preferenceChanged(PreferenceChange)
    /// The user read a conversation up to a message.
    case conversationRead(ReadMarker)
    /// An event shown by its kind only (see the type's documentation).
    case opaque(EventKind)
    /// An event whose content was erased.
    case erased(EventKind)
}

/// A new conversation.
public struct ConversationStart: Sendable, Hashable {
    /// The conversation's ID (time-ordered, random).
    public var id: ConversationID
    /// Direct or group.
    public var kind: ConversationKind
    /// Its title; empty for direct conversations.
    public var title: String
    /// Its members' accounts.
    public var members: [AccountID]
    /// The account that started it.
    public var createdBy: AccountID
    /// Groups: the membership epoch this store starts at (0 for the creator).
    public var epoch: UInt64

    /// A new conversation; a new ID by default.
    public init(
        id: ConversationID = .generate(), kind: ConversationKind = .direct, title: String = "", members: [AccountID],
        createdBy: AccountID, epoch: UInt64 = 0
    ) {
        self.id = id
        self.kind = kind
        self.title = title
        self.members = members
        self.createdBy = createdBy
        self.epoch = epoch
    }
}

/// A message's content, sent or received.
public struct MessagePost: Sendable, Hashable {
    /// The message's ID, unique across devices.
    public var id: MessageID
    /// The conversation it belongs to.
    public var conversation: ConversationID
    /// The account that wrote it.
    public var sender: AccountID
    /// Its text.
    public var text: String
    /// By the sender's clock: it orders the conversation for display, nothing else.
    public var sentAt: Date
    /// What `text` holds, e.g. `text/plain`.
    public var contentType: String

    /// A message; a new ID and the current time by default.
    public init(
        id: MessageID = .generate(), conversation: ConversationID, sender: AccountID, text: String, sentAt: Date = Date(),
        contentType: String = "text/plain"
    ) {
        self.id = id
        self.conversation = conversation
        self.sender = sender
        self.text = text
        self.sentAt = sentAt
        self.contentType = contentType
    }
}

/// A message's new text; the newest edit wins.
public struct MessageEdit: Sendable, Hashable {
    /// The edited message.
    public var message: MessageID
    /// Its conversation.
    public var conversation: ConversationID
    /// The new text.
    public var text: String
    /// When it was edited, by the editor's clock: the newest edit wins.
    public var editedAt: Date

    /// An edit of `message`.
    public init(message: MessageID, conversation: ConversationID, text: String, editedAt: Date = Date()) {
        self.message = message
        self.conversation = conversation
        self.text = text
        self.editedAt = editedAt
    }
}

/// A message's deletion: its events are erased from the log.
public struct MessageDeletion: Sendable, Hashable {
    /// The deleted message.
    public var message: MessageID
    /// Its conversation.
    public var conversation: ConversationID

    /// The deletion of `message`.
    public init(message: MessageID, conversation: ConversationID) {
        self.message = message
        self.conversation = conversation
    }
}

/// A group membership change; it applies when its epoch is the group's next.
public struct MembershipChange: Sendable, Hashable {
    /// The group.
    public var conversation: ConversationID
    /// The epoch the change moves the group to: its current epoch + 1.
    public var epoch: UInt64
    /// Accounts added.
    public var added: [AccountID]
    /// Accounts removed.
    public var removed: [AccountID]
    /// The account that made the change.
    public var committer: AccountID

    /// A membership change of `conversation` at `epoch`.
    public init(conversation: ConversationID, epoch: UInt64, added: [AccountID] = [], removed: [AccountID] = [], committer: AccountID) {
        self.conversation = conversation
        self.epoch = epoch
        self.added = added
        self.removed = removed
        self.committer = committer
    }
}

/// An address book entry.
public struct ContactEntry: Sendable, Hashable {
    /// The contact's account.
    public var account: AccountID
    /// The name the user gave it.
    public var displayName: String

    /// An address book entry.
    public init(account: AccountID, displayName: String) {
        self.account = account
        self.displayName = displayName
    }
}

/// What consent is recorded for: an account, or a whole conversation.
public enum ConsentSubject: Hashable, Sendable, CustomStringConvertible {
    case account(AccountID)
    case conversation(ConversationID)

    /// The form the log and the projections keep: the account ID, or `conversation:<id>`.
    public var description: String {
        switch self {
        case let .account(account): account.rawValue
        case let .conversation(id): "conversation:\(id)"
        }
    }

    /// Reads the stored form; text that names no conversation is an account.
    public init(_ text: String) {
        if text.hasPrefix("conversation:"), let id = ConversationID(text.dropFirst("conversation:".count)) {
            self = .conversation(id)
        } else {
            self = .account(AccountID(text))
        }
    }
}

/// Consent for an account or a conversation; the last change in log order wins.
public struct ConsentChange: Sendable, Hashable {
    /// Whom it is for.
    public var subject: ConsentSubject
    /// The new consent.
    public var state: ConsentState

    /// Consent for `subject`.
    public init(subject: ConsentSubject, state: ConsentState) {
        self.subject = subject
        self.state = state
    }
}

/// A preference's new value; the last one in log order wins.
public struct PreferenceChange: Sendable, Hashable {
    /// The preference's name.
    public var key: String
    /// Its new value.
    public var value: [UInt8]

    /// A new value for `key`.
    public init(key: String, value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// A read marker: the conversation is read up to a message (the store records
/// the message's sent time with it, so the marker keeps its place after a deletion).
public struct ReadMarker: Sendable, Hashable {
    /// The conversation read.
    public var conversation: ConversationID
    /// The last message read.
    public var upTo: MessageID

    /// The conversation is read up to `upTo`.
    public init(conversation: ConversationID, upTo: MessageID) {
        self.conversation = conversation
        self.upTo = upTo
    }
}

extension EventContent {
    /// The kind of event this content is.
    public var kind: EventKind {
        switch self {
        case .conversationCreated: .conversationCreated
        case .messageSent: .messageSent
        case .messageReceived: .messageReceived
        case .messageEdited: .messageEdited
        case .messageDeleted: .messageDeleted
        case .membershipCommitted: .membershipCommit
        case .contactAdded: .contactAdded
        case .contactRemoved: .contactRemoved
        case .consentChanged: .consentChanged
        case .preferenceChanged: .preferenceChanged
        case .conversationRead: .conversationRead
        case let .opaque(kind), let .erased(kind): kind
        }
    }

    /// The content an app sees of a stored payload: identifiers of the wrong
    /// size (a payload a newer or damaged writer made) show it as `.opaque`.
    init(_ payload: EventPayload) {
        self = Self.readable(payload) ?? .opaque(EventKind(rawValue: payload.kind))
    }

    private static func readable(_ payload: EventPayload) -> EventContent? {
        switch payload {
        case let .conversationCreated(c):
            guard let id = ConversationID(bytes: c.conversationID) else { return nil }
            return .conversationCreated(ConversationStart(
                id: id, kind: ConversationKind(rawValue: c.kind.rawValue) ?? .unspecified, title: c.title,
                members: c.members.map { AccountID($0) }, createdBy: AccountID(c.createdBy), epoch: c.epoch))
        case let .messageSent(m), let .messageReceived(m):
            guard let id = MessageID(bytes: m.messageID), let conversation = ConversationID(bytes: m.conversationID) else { return nil }
            let post = MessagePost(id: id, conversation: conversation, sender: AccountID(m.sender), text: m.text,
                                   sentAt: Date(millis: m.sentAtMs), contentType: m.contentType)
            if case .messageSent = payload { return .messageSent(post) } else { return .messageReceived(post) }
        case let .messageEdited(e):
            guard let id = MessageID(bytes: e.messageID), let conversation = ConversationID(bytes: e.conversationID) else { return nil }
            return .messageEdited(MessageEdit(message: id, conversation: conversation, text: e.text, editedAt: Date(millis: e.editedAtMs)))
        case let .messageDeleted(d):
            guard let id = MessageID(bytes: d.messageID), let conversation = ConversationID(bytes: d.conversationID) else { return nil }
            return .messageDeleted(MessageDeletion(message: id, conversation: conversation))
        case let .membershipCommit(c):
            guard let conversation = ConversationID(bytes: c.conversationID) else { return nil }
            return .membershipCommitted(MembershipChange(
                conversation: conversation, epoch: c.epoch, added: c.added.map { AccountID($0) }, removed: c.removed.map { AccountID($0) },
                committer: AccountID(c.committer)))
        case let .contactAdded(c): return .contactAdded(ContactEntry(account: AccountID(c.accountID), displayName: c.displayName))
        case let .contactRemoved(c): return .contactRemoved(AccountID(c.accountID))
        case let .consentChanged(c):
            return .consentChanged(ConsentChange(subject: ConsentSubject(c.entity), state: ConsentState(rawValue: c.state.rawValue) ?? .unknown))
        case let .preferenceChanged(p): return .preferenceChanged(PreferenceChange(key: p.key, value: Array(p.value)))
        case let .conversationRead(r):
            guard let conversation = ConversationID(bytes: r.conversationID), let message = MessageID(bytes: r.upToMessageID) else { return nil }
            return .conversationRead(ReadMarker(conversation: conversation, upTo: message))
        case let .erased(kind): return .erased(EventKind(rawValue: kind))
        default: return nil
        }
    }
}

extension EventPayload {
    /// The payload the log stores for an app's content; nil for `.opaque` and `.erased`, which cannot be appended.
    init?(_ content: EventContent) {
        switch content {
        case let .conversationCreated(c):
            self = .conversationCreated(.with {
                $0.conversationID = Data(c.id.bytes)
                $0.kind = .init(rawValue: c.kind.rawValue) ?? .unspecified
                $0.title = c.title
                $0.members = c.members.map(\.rawValue)
                $0.createdBy = c.createdBy.rawValue
                $0.epoch = c.epoch
            })
        case let .messageSent(m): self = .messageSent(Self.message(m))
        case let .messageReceived(m): self = .messageReceived(Self.message(m))
        case let .messageEdited(e):
            self = .messageEdited(.with {
                $0.messageID = Data(e.message.bytes)
                $0.conversationID = Data(e.conversation.bytes)
                $0.text = e.text
                $0.editedAtMs = e.editedAt.millis
            })
        case let .messageDeleted(d):
            self = .messageDeleted(.with {
                $0.messageID = Data(d.message.bytes)
                $0.conversationID = Data(d.conversation.bytes)
            })
        case let .membershipCommitted(c):
            self = .membershipCommit(.with {
                $0.conversationID = Data(c.conversation.bytes)
                $0.epoch = c.epoch
                $0.added = c.added.map(\.rawValue)
                $0.removed = c.removed.map(\.rawValue)
                $0.committer = c.committer.rawValue
            })
        case let .contactAdded(c):
            self = .contactAdded(.with {
                $0.accountID = c.account.rawValue
                $0.displayName = c.displayName
            })
        case let .contactRemoved(account): self = .contactRemoved(.with { $0.accountID = account.rawValue })
        case let .consentChanged(c):
            self = .consentChanged(.with {
                $0.entity = c.subject.description
                $0.state = .init(rawValue: c.state.rawValue) ?? .unknown
            })
        case let .preferenceChanged(p):
            self = .preferenceChanged(.with {
                $0.key = p.key
                $0.value = Data(p.value)
            })
        case let .conversationRead(r):
            self = .conversationRead(.with {
                $0.conversationID = Data(r.conversation.bytes)
                $0.upToMessageID = Data(r.upTo.bytes)
            })
        case .opaque, .erased:
            return nil
        }
    }

    private static func message(_ m: MessagePost) -> MessageContent {
        .with {
            $0.messageID = Data(m.id.bytes)
            $0.conversationID = Data(m.conversation.bytes)
            $0.sender = m.sender.rawValue
            $0.text = m.text
            $0.sentAtMs = m.sentAt.millis
            $0.contentType = m.contentType
        }
    }
}

extension AccountID: DatabaseValueConvertible {
    /// Stored as its text.
    public var databaseValue: DatabaseValue { rawValue.databaseValue }

    /// Read from its text.
    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> AccountID? {
        String.fromDatabaseValue(dbValue).map(AccountID.init(rawValue:))
    }
}

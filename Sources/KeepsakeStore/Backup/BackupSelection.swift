import Foundation
import KeepsakeLog

/// Which events of a log go into a backup: by element kind, by conversation
/// and conversation kind, and never more than the backup's kind allows (soft
/// backups carry no secrets).
struct BackupSelection {
    let elements: BackupElements
    let conversations: Set<Data>
    /// Only conversations of these kinds (empty: every kind).
    var conversationKinds: Set<ConversationKind> = []
    /// The kind of a conversation, by ID (from the projections); nil when unknown.
    var kindOfConversation: (Data) -> ConversationKind? = { _ in nil }
    /// The elements of the event kinds installed extensions declare.
    let extensionElements: [UInt32: BackupElements]

    init(kind: BackupKind, elements: BackupElements, conversations: [ConversationID], extensionKinds: [UInt32: ExtensionEventKind]) {
        self.elements = elements.intersection(kind == .soft ? .soft : .hard)
        self.conversations = Set(conversations.map { Data($0.bytes) })
        extensionElements = extensionKinds.mapValues(\.element)
    }

    /// The element an event kind belongs to: as the backup format assigns it
    /// (`formatElements`), else as an installed extension declares it, else `.unknownKinds`.
    func element(ofKind kind: UInt32) -> BackupElements {
        Self.element(ofKind: kind, extensionElements: extensionElements)
    }

    static func element(ofKind kind: UInt32, extensionElements: [UInt32: BackupElements]) -> BackupElements {
        formatElements[kind] ?? extensionElements[kind] ?? .unknownKinds
    }

    /// The element of every kind the backup format names (docs/BACKUP-FORMAT.md,
    /// "Elements and event kinds"): the store's kinds and the messaging
    /// extension's (7 and 15-20). Readers apply this table whichever extensions
    /// they have, so a file means the same to every reader.
    static let formatElements: [UInt32: BackupElements] = [
        1: .conversations, 6: .conversations, 12: .conversations,
        2: .messages, 3: .messages, 4: .messages, 5: .messages,
        8: .contacts, 9: .contacts, 18: .contacts,
        10: .consent,
        11: .preferences,
        7: .sessions, 19: .sessions,
        13: .identity, 14: .identity, 15: .identity, 16: .identity, 17: .identity, 20: .identity, 21: .identity,
    ]

    func includes(kind: UInt32) -> Bool { elements.contains(element(ofKind: kind)) }

    /// Whether `record` belongs in the backup. With a conversation filter, events
    /// of a conversation are kept only for the chosen ones (erased ones, whose
    /// conversation is unreadable, are left out).
    func includes(_ record: LogRecord) throws(KeepsakeError) -> Bool {
        guard includes(kind: record.kind) else { return false }
        guard !conversations.isEmpty || !conversationKinds.isEmpty, [.conversations, .messages].contains(element(ofKind: record.kind)) else {
            return true
        }
        guard let payload = record.payload else { return false }
        let decoded: EventPayload
        do { decoded = try EventPayload(kind: record.kind, bytes: payload) } catch {
            throw .corruptEventPayload(id: record.id, kind: record.kind)
        }
        guard let conversation = decoded.conversationID else { return true }
        if !conversations.isEmpty && !conversations.contains(conversation) { return false }
        return conversationKinds.isEmpty || kindOfConversation(conversation).map(conversationKinds.contains) == true
    }
}

extension EventPayload {
    /// The conversation the event belongs to, for kinds that belong to one.
    var conversationID: Data? {
        switch self {
        case let .conversationCreated(c): c.conversationID
        case let .messageSent(m), let .messageReceived(m): m.conversationID
        case let .messageEdited(e): e.conversationID
        case let .messageDeleted(d): d.conversationID
        case let .membershipCommit(c): c.conversationID
        case let .conversationRead(r): r.conversationID
        default: nil
        }
    }
}

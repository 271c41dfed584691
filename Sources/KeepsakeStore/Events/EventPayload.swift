import Foundation
import KeepsakeLog
import SwiftProtobuf

package typealias ConversationCreated = Keepsake_V1_ConversationCreated
package typealias MessageContent = Keepsake_V1_MessageContent
package typealias MessageEdited = Keepsake_V1_MessageEdited
package typealias MessageDeleted = Keepsake_V1_MessageDeleted
package typealias MembershipCommit = Keepsake_V1_MembershipCommit
package typealias ContactAdded = Keepsake_V1_ContactAdded
package typealias ContactRemoved = Keepsake_V1_ContactRemoved
package typealias ConsentChanged = Keepsake_V1_ConsentChanged
package typealias PreferenceChanged = Keepsake_V1_PreferenceChanged
package typealias ConversationRead = Keepsake_V1_ConversationRead
package typealias InstallationKeys = Keepsake_V1_InstallationKeys
package typealias InstallationRestored = Keepsake_V1_InstallationRestored
package typealias InstallationRetired = Keepsake_V1_InstallationRetired
package typealias StoredEventKind = Keepsake_V1_EventKind

/// What an event says, as the log stores it (the protobuf messages of
/// `Protos/keepsake/v1/events.proto`). Apps see `EventContent`. Kinds the
/// store does not define (an extension's, or ones a newer Keepsake wrote)
/// arrive as `.unknown` with their bytes, and are kept as they are.
package enum EventPayload: Sendable, Equatable {
    case conversationCreated(ConversationCreated)
    case messageSent(MessageContent)
    case messageReceived(MessageContent)
    case messageEdited(MessageEdited)
    case messageDeleted(MessageDeleted)
    case membershipCommit(MembershipCommit)
    case contactAdded(ContactAdded)
    case contactRemoved(ContactRemoved)
    case consentChanged(ConsentChanged)
    case preferenceChanged(PreferenceChanged)
    case conversationRead(ConversationRead)
    case installationKeys(InstallationKeys)
    case installationRestored(InstallationRestored)
    case installationRetired(InstallationRetired)
    /// A kind the store does not define; `bytes` are the payload as written.
    case unknown(kind: UInt32, bytes: [UInt8])
    /// The event's content was erased (deleted message, superseded session state).
    case erased(kind: UInt32)

    /// The kind number stored in the log.
    package var kind: UInt32 {
        let known: StoredEventKind
        switch self {
        case .conversationCreated: known = .conversationCreated
        case .messageSent: known = .messageSent
        case .messageReceived: known = .messageReceived
        case .messageEdited: known = .messageEdited
        case .messageDeleted: known = .messageDeleted
        case .membershipCommit: known = .membershipCommit
        case .contactAdded: known = .contactAdded
        case .contactRemoved: known = .contactRemoved
        case .consentChanged: known = .consentChanged
        case .preferenceChanged: known = .preferenceChanged
        case .conversationRead: known = .conversationRead
        case .installationKeys: known = .installationKeys
        case .installationRestored: known = .installationRestored
        case .installationRetired: known = .installationRetired
        case let .unknown(kind, _), let .erased(kind): return kind
        }
        return UInt32(known.rawValue)
    }

    /// A short name for display and logs (never the content).
    package var kindName: String {
        if case .erased = self { "erased(\(EventPayload.name(ofKind: kind)))" } else { EventPayload.name(ofKind: kind) }
    }

    /// The kind's name: the store's own, or the one an installed extension declared.
    static func name(ofKind kind: UInt32) -> String {
        if let known = StoredEventKind(rawValue: Int(kind)), let name = storeKindNames[known] { return name }
        return ExtensionEventKind.registeredName(of: kind) ?? "unknown(\(kind))"
    }

    private static let storeKindNames: [StoredEventKind: String] = [
        .conversationCreated: "conversation-created", .messageSent: "message-sent",
        .messageReceived: "message-received", .messageEdited: "message-edited",
        .messageDeleted: "message-deleted", .membershipCommit: "membership-commit",
        .contactAdded: "contact-added", .contactRemoved: "contact-removed",
        .consentChanged: "consent-changed", .preferenceChanged: "preference-changed",
        .conversationRead: "conversation-read", .installationKeys: "installation-keys",
        .installationRestored: "installation-restored", .installationRetired: "installation-retired",
    ]

    /// Whether the store itself defines kind `kind`.
    static func isStoreKind(_ kind: UInt32) -> Bool {
        StoredEventKind(rawValue: Int(kind)).map { storeKindNames[$0] != nil } ?? false
    }
}

extension EventPlacement {
    /// How the log files one of the store's own events. Message content and
    /// edits are sealed and filed under the message (so a deletion erases
    /// them); installation keys are sealed and filed under the installation (so
    /// its retirement erases them). Extensions' kinds place themselves.
    init(_ payload: EventPayload) {
        switch payload {
        case let .messageSent(m), let .messageReceived(m):
            self.init(subject: [Self.messageSubject] + Array(m.messageID), sealed: true)
        case let .messageEdited(m):
            self.init(subject: [Self.messageSubject] + Array(m.messageID), sealed: true)
        case let .messageDeleted(m):
            self.init(subject: [Self.messageSubject] + Array(m.messageID), effect: .erasesSubject)
        case let .installationKeys(keys):
            self.init(subject: [Self.installationSubject] + Array(keys.installationID), sealed: true)
        case let .installationRetired(retired):
            self.init(subject: [Self.installationSubject] + Array(retired.installationID), effect: .erasesSubject)
        default:
            self.init()
        }
    }
}

extension EventPayload {
    /// Serialises the payload's message.
    func serialized() throws -> [UInt8] {
        switch self {
        case let .conversationCreated(m): try m.serializedBytes()
        case let .messageSent(m), let .messageReceived(m): try m.serializedBytes()
        case let .messageEdited(m): try m.serializedBytes()
        case let .messageDeleted(m): try m.serializedBytes()
        case let .membershipCommit(m): try m.serializedBytes()
        case let .contactAdded(m): try m.serializedBytes()
        case let .contactRemoved(m): try m.serializedBytes()
        case let .consentChanged(m): try m.serializedBytes()
        case let .preferenceChanged(m): try m.serializedBytes()
        case let .conversationRead(m): try m.serializedBytes()
        case let .installationKeys(m): try m.serializedBytes()
        case let .installationRestored(m): try m.serializedBytes()
        case let .installationRetired(m): try m.serializedBytes()
        case let .unknown(_, bytes): bytes
        case .erased: []
        }
    }

    /// Decodes a payload of `kind`; unknown kinds are kept as bytes. Throws when
    /// the bytes of a known kind do not parse.
    init(kind: UInt32, bytes: [UInt8]) throws {
        let known = StoredEventKind(rawValue: Int(kind)) ?? .UNRECOGNIZED(Int(kind))
        switch known {
        case .conversationCreated: self = .conversationCreated(try .init(serializedBytes: bytes))
        case .messageSent: self = .messageSent(try .init(serializedBytes: bytes))
        case .messageReceived: self = .messageReceived(try .init(serializedBytes: bytes))
        case .messageEdited: self = .messageEdited(try .init(serializedBytes: bytes))
        case .messageDeleted: self = .messageDeleted(try .init(serializedBytes: bytes))
        case .membershipCommit: self = .membershipCommit(try .init(serializedBytes: bytes))
        case .contactAdded: self = .contactAdded(try .init(serializedBytes: bytes))
        case .contactRemoved: self = .contactRemoved(try .init(serializedBytes: bytes))
        case .consentChanged: self = .consentChanged(try .init(serializedBytes: bytes))
        case .preferenceChanged: self = .preferenceChanged(try .init(serializedBytes: bytes))
        case .conversationRead: self = .conversationRead(try .init(serializedBytes: bytes))
        case .installationKeys: self = .installationKeys(try .init(serializedBytes: bytes))
        case .installationRestored: self = .installationRestored(try .init(serializedBytes: bytes))
        case .installationRetired: self = .installationRetired(try .init(serializedBytes: bytes))
        case .unspecified, .UNRECOGNIZED: self = .unknown(kind: kind, bytes: bytes)
        }
    }
}

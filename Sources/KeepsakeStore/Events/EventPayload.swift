import Foundation
import KeepsakeLog
import SwiftProtobuf

package typealias ConversationCreated = Keepsake_V1_ConversationCreated
package typealias MessageContent = Keepsake_V1_MessageContent
package typealias MessageEdited = Keepsake_V1_MessageEdited
package typealias MessageDeleted = Keepsake_V1_MessageDeleted
package typealias MembershipCommit = Keepsake_V1_MembershipCommit
package typealias RatchetStep = Keepsake_V1_RatchetStep
package typealias ContactAdded = Keepsake_V1_ContactAdded
package typealias ContactRemoved = Keepsake_V1_ContactRemoved
package typealias ConsentChanged = Keepsake_V1_ConsentChanged
package typealias PreferenceChanged = Keepsake_V1_PreferenceChanged
package typealias ConversationRead = Keepsake_V1_ConversationRead
package typealias InstallationKeys = Keepsake_V1_InstallationKeys
package typealias InstallationRestored = Keepsake_V1_InstallationRestored
package typealias AccountJoined = Keepsake_V1_AccountJoined
package typealias PrekeyCreated = Keepsake_V1_PrekeyCreated
package typealias PrekeyUsed = Keepsake_V1_PrekeyUsed
package typealias PeerInstallation = Keepsake_V1_PeerInstallation
package typealias SessionClosed = Keepsake_V1_SessionClosed
package typealias HistoryRequestChanged = Keepsake_V1_HistoryRequestChanged
package typealias InstallationRetired = Keepsake_V1_InstallationRetired
package typealias StoredEventKind = Keepsake_V1_EventKind

/// What an event says, as the log stores it (the protobuf messages of
/// `Protos/keepsake/v1/events.proto`). Apps see `EventContent`. Kinds a newer
/// Keepsake wrote and this one does not know arrive as `.unknown` with their
/// bytes, and are kept as they are.
package enum EventPayload: Sendable, Equatable {
    case conversationCreated(ConversationCreated)
    case messageSent(MessageContent)
    case messageReceived(MessageContent)
    case messageEdited(MessageEdited)
    case messageDeleted(MessageDeleted)
    case membershipCommit(MembershipCommit)
    case ratchetStep(RatchetStep)
    case contactAdded(ContactAdded)
    case contactRemoved(ContactRemoved)
    case consentChanged(ConsentChanged)
    case preferenceChanged(PreferenceChanged)
    case conversationRead(ConversationRead)
    case installationKeys(InstallationKeys)
    case installationRestored(InstallationRestored)
    case accountJoined(AccountJoined)
    case prekeyCreated(PrekeyCreated)
    case prekeyUsed(PrekeyUsed)
    case peerInstallation(PeerInstallation)
    case sessionClosed(SessionClosed)
    case historyRequest(HistoryRequestChanged)
    case installationRetired(InstallationRetired)
    /// A kind this version does not know; `bytes` are the payload as written.
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
        case .ratchetStep: known = .ratchetStep
        case .contactAdded: known = .contactAdded
        case .contactRemoved: known = .contactRemoved
        case .consentChanged: known = .consentChanged
        case .preferenceChanged: known = .preferenceChanged
        case .conversationRead: known = .conversationRead
        case .installationKeys: known = .installationKeys
        case .installationRestored: known = .installationRestored
        case .accountJoined: known = .accountJoined
        case .prekeyCreated: known = .prekeyCreated
        case .prekeyUsed: known = .prekeyUsed
        case .peerInstallation: known = .peerInstallation
        case .sessionClosed: known = .sessionClosed
        case .historyRequest: known = .historyRequest
        case .installationRetired: known = .installationRetired
        case let .unknown(kind, _), let .erased(kind): return kind
        }
        return UInt32(known.rawValue)
    }

    /// A short name for display and logs (never the content).
    package var kindName: String {
        switch self {
        case .unknown(let kind, _): return "unknown(\(kind))"
        case .erased(let kind): return "erased(\(EventPayload.name(ofKind: kind)))"
        default: return EventPayload.name(ofKind: kind)
        }
    }

    static func name(ofKind kind: UInt32) -> String {
        guard let known = StoredEventKind(rawValue: Int(kind)), known != .unspecified else { return "unknown(\(kind))" }
        let names: [StoredEventKind: String] = [
            .conversationCreated: "conversation-created", .messageSent: "message-sent",
            .messageReceived: "message-received", .messageEdited: "message-edited",
            .messageDeleted: "message-deleted", .membershipCommit: "membership-commit",
            .ratchetStep: "ratchet-step", .contactAdded: "contact-added", .contactRemoved: "contact-removed",
            .consentChanged: "consent-changed", .preferenceChanged: "preference-changed",
            .conversationRead: "conversation-read", .installationKeys: "installation-keys",
            .installationRestored: "installation-restored", .accountJoined: "account-joined",
            .prekeyCreated: "prekey-created", .prekeyUsed: "prekey-used", .peerInstallation: "peer-installation",
            .sessionClosed: "session-closed", .historyRequest: "history-request",
            .installationRetired: "installation-retired",
        ]
        return names[known] ?? "unknown(\(kind))"
    }
}

/// How a payload maps onto the log: its subject, effect and sealing.
///
/// Message content and edits are sealed and filed under the message (so a
/// deletion erases them); ratchet steps are sealed and supersede their
/// session's previous step. docs/LOG-FORMAT.md lists the subject prefixes.
struct LogMapping {
    var subject: [UInt8]?
    var effect: RecordEffect = .none
    var sealed = false

    static let messageSubject: UInt8 = 0x01
    static let sessionSubject: UInt8 = 0x02
    static let installationSubject: UInt8 = 0x03
    static let prekeySubject: UInt8 = 0x04

    init(_ payload: EventPayload) {
        switch payload {
        case let .messageSent(m), let .messageReceived(m):
            self.init(subject: [Self.messageSubject] + Array(m.messageID), sealed: true)
        case let .messageEdited(m):
            self.init(subject: [Self.messageSubject] + Array(m.messageID), sealed: true)
        case let .messageDeleted(m):
            self.init(subject: [Self.messageSubject] + Array(m.messageID), effect: .erasesSubject)
        case let .ratchetStep(step):
            self.init(subject: [Self.sessionSubject] + Array(step.streamID), effect: .supersedes(step: step.step), sealed: true)
        case let .installationKeys(keys):
            self.init(subject: [Self.installationSubject] + Array(keys.installationID), sealed: true)
        case let .accountJoined(joined):
            self.init(subject: [Self.installationSubject] + Array(joined.installationID), sealed: true)
        case let .prekeyCreated(prekey):
            self.init(subject: Self.prekeySubject(prekey.installationID, prekey.prekeyID), sealed: true)
        case let .prekeyUsed(used):
            self.init(subject: Self.prekeySubject(used.installationID, used.prekeyID), effect: .erasesSubject)
        case let .sessionClosed(closed):
            self.init(subject: [Self.sessionSubject] + Array(closed.streamID), effect: .erasesSubject)
        case let .installationRetired(retired):
            self.init(subject: [Self.installationSubject] + Array(retired.installationID), effect: .erasesSubject)
        default:
            self.init()
        }
    }

    /// 0x04 ‖ installation ID (16) ‖ prekey ID (u32 big-endian).
    static func prekeySubject(_ installation: Data, _ prekey: UInt32) -> [UInt8] {
        [prekeySubject] + Array(installation) + withUnsafeBytes(of: prekey.bigEndian) { Array($0) }
    }

    private init(subject: [UInt8]? = nil, effect: RecordEffect = .none, sealed: Bool = false) {
        self.subject = subject
        self.effect = effect
        self.sealed = sealed
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
        case let .ratchetStep(m): try m.serializedBytes()
        case let .contactAdded(m): try m.serializedBytes()
        case let .contactRemoved(m): try m.serializedBytes()
        case let .consentChanged(m): try m.serializedBytes()
        case let .preferenceChanged(m): try m.serializedBytes()
        case let .conversationRead(m): try m.serializedBytes()
        case let .installationKeys(m): try m.serializedBytes()
        case let .installationRestored(m): try m.serializedBytes()
        case let .accountJoined(m): try m.serializedBytes()
        case let .prekeyCreated(m): try m.serializedBytes()
        case let .prekeyUsed(m): try m.serializedBytes()
        case let .peerInstallation(m): try m.serializedBytes()
        case let .sessionClosed(m): try m.serializedBytes()
        case let .historyRequest(m): try m.serializedBytes()
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
        case .ratchetStep: self = .ratchetStep(try .init(serializedBytes: bytes))
        case .contactAdded: self = .contactAdded(try .init(serializedBytes: bytes))
        case .contactRemoved: self = .contactRemoved(try .init(serializedBytes: bytes))
        case .consentChanged: self = .consentChanged(try .init(serializedBytes: bytes))
        case .preferenceChanged: self = .preferenceChanged(try .init(serializedBytes: bytes))
        case .conversationRead: self = .conversationRead(try .init(serializedBytes: bytes))
        case .installationKeys: self = .installationKeys(try .init(serializedBytes: bytes))
        case .installationRestored: self = .installationRestored(try .init(serializedBytes: bytes))
        case .accountJoined: self = .accountJoined(try .init(serializedBytes: bytes))
        case .prekeyCreated: self = .prekeyCreated(try .init(serializedBytes: bytes))
        case .prekeyUsed: self = .prekeyUsed(try .init(serializedBytes: bytes))
        case .peerInstallation: self = .peerInstallation(try .init(serializedBytes: bytes))
        case .sessionClosed: self = .sessionClosed(try .init(serializedBytes: bytes))
        case .historyRequest: self = .historyRequest(try .init(serializedBytes: bytes))
        case .installationRetired: self = .installationRetired(try .init(serializedBytes: bytes))
        case .unspecified, .UNRECOGNIZED: self = .unknown(kind: kind, bytes: bytes)
        }
    }
}

import Foundation
import KeepsakeStore
import SwiftProtobuf

package typealias RatchetStep = Keepsake_Messaging_V1_RatchetStep
package typealias AccountJoined = Keepsake_Messaging_V1_AccountJoined
package typealias PrekeyCreated = Keepsake_Messaging_V1_PrekeyCreated
package typealias PrekeyUsed = Keepsake_Messaging_V1_PrekeyUsed
package typealias PeerInstallation = Keepsake_Messaging_V1_PeerInstallation
package typealias SessionClosed = Keepsake_Messaging_V1_SessionClosed
package typealias HistoryRequestChanged = Keepsake_Messaging_V1_HistoryRequestChanged
package typealias HistoryRole = Keepsake_Messaging_V1_HistoryRole
package typealias HistoryStatus = Keepsake_Messaging_V1_HistoryStatus
package typealias MessagingEventKind = Keepsake_Messaging_V1_MessagingEventKind

/// An event of a kind messaging defines (`Protos/keepsake/messaging/v1/messaging_events.proto`).
/// The store keeps these as kinds it does not know itself, filed as
/// `MessagingEvent.declarations` say.
package enum MessagingEvent: Sendable, Equatable {
    case ratchetStep(RatchetStep)
    case accountJoined(AccountJoined)
    case prekeyCreated(PrekeyCreated)
    case prekeyUsed(PrekeyUsed)
    case peerInstallation(PeerInstallation)
    case sessionClosed(SessionClosed)
    case historyRequest(HistoryRequestChanged)

    /// The messaging event a stored payload holds; nil for other kinds, erased
    /// events and bytes that do not parse.
    package init?(_ payload: EventPayload) {
        guard case let .unknown(kind, bytes) = payload else { return nil }
        self.init(kind: kind, bytes: bytes)
    }

    private init?(kind: UInt32, bytes: [UInt8]) {
        do {
            switch MessagingEventKind(rawValue: Int(kind)) {
            case .ratchetStep?: self = .ratchetStep(try .init(serializedBytes: bytes))
            case .accountJoined?: self = .accountJoined(try .init(serializedBytes: bytes))
            case .prekeyCreated?: self = .prekeyCreated(try .init(serializedBytes: bytes))
            case .prekeyUsed?: self = .prekeyUsed(try .init(serializedBytes: bytes))
            case .peerInstallation?: self = .peerInstallation(try .init(serializedBytes: bytes))
            case .sessionClosed?: self = .sessionClosed(try .init(serializedBytes: bytes))
            case .historyRequest?: self = .historyRequest(try .init(serializedBytes: bytes))
            default: return nil
            }
        } catch {
            return nil
        }
    }

    /// The kind number the log stores.
    package var kind: MessagingEventKind {
        switch self {
        case .ratchetStep: .ratchetStep
        case .accountJoined: .accountJoined
        case .prekeyCreated: .prekeyCreated
        case .prekeyUsed: .prekeyUsed
        case .peerInstallation: .peerInstallation
        case .sessionClosed: .sessionClosed
        case .historyRequest: .historyRequest
        }
    }

    private var message: any SwiftProtobuf.Message {
        switch self {
        case let .ratchetStep(m): m
        case let .accountJoined(m): m
        case let .prekeyCreated(m): m
        case let .prekeyUsed(m): m
        case let .peerInstallation(m): m
        case let .sessionClosed(m): m
        case let .historyRequest(m): m
        }
    }

    /// The event as the store keeps it: a kind it does not define, with its bytes.
    package var payload: EventPayload {
        // Serializing a message without extensions or `Any` fields cannot fail;
        // were it to, the empty payload is refused by the kind's placement.
        .unknown(kind: UInt32(kind.rawValue), bytes: (try? message.serializedBytes()) ?? [])
    }

    /// Whether appending this event means acting as the installation, which a superseded store must not do.
    var actsAsInstallation: Bool {
        switch self {
        case .ratchetStep, .prekeyCreated, .accountJoined: true
        default: false
        }
    }
}

extension MessagingEvent {
    /// 0x02 ‖ stream ID: a session's states, each superseding the previous one.
    static let sessionSubject: UInt8 = 0x02
    /// 0x04 ‖ installation ID (16) ‖ prekey ID (u32 big-endian): a prekey's secret.
    static let prekeySubject: UInt8 = 0x04

    /// How the log files each messaging kind, and the backup element that carries it.
    /// Secrets (session states, identity and prekey secrets) are sealed and
    /// belong to elements only hard backups carry.
    static let declarations: [ExtensionEventKind] = [
        declare(.ratchetStep, "ratchet-step", .sessions),
        declare(.accountJoined, "account-joined", .identity),
        declare(.prekeyCreated, "prekey-created", .identity),
        declare(.prekeyUsed, "prekey-used", .identity),
        declare(.peerInstallation, "peer-installation", .contacts),
        declare(.sessionClosed, "session-closed", .sessions),
        declare(.historyRequest, "history-request", .identity),
    ]

    private static func declare(_ kind: MessagingEventKind, _ name: String, _ element: BackupElements) -> ExtensionEventKind {
        ExtensionEventKind(kind: EventKind(rawValue: UInt32(kind.rawValue)), name: name, element: element) { bytes in
            MessagingEvent(kind: UInt32(kind.rawValue), bytes: bytes)?.placement
        }
    }

    /// Where the event goes in the log; nil when a field the messaging tables
    /// rely on has the wrong size.
    var placement: EventPlacement? {
        switch self {
        case let .ratchetStep(r):
            guard Self.isStreamID(r.streamID) else { return nil }
            return EventPlacement(subject: [Self.sessionSubject] + r.streamID, effect: .supersedes(step: r.step), sealed: true)
        case let .sessionClosed(c):
            guard Self.isStreamID(c.streamID) else { return nil }
            return EventPlacement(subject: [Self.sessionSubject] + c.streamID, effect: .erasesSubject)
        case let .accountJoined(j):
            guard j.identitySecret.count == 32, j.identityKey.count == 32, !j.signedBundle.isEmpty,
                  let installation = InstallationID(bytes: j.installationID) else { return nil }
            return EventPlacement(subject: EventPlacement.installationSubject(installation), sealed: true)
        case let .prekeyCreated(p):
            guard p.secret.count == 32, !p.signedPrekey.isEmpty, p.installationID.count == 16 else { return nil }
            return EventPlacement(subject: Self.prekeySubject(p.installationID, p.prekeyID), sealed: true)
        case let .prekeyUsed(p):
            guard p.installationID.count == 16 else { return nil }
            return EventPlacement(subject: Self.prekeySubject(p.installationID, p.prekeyID), effect: .erasesSubject)
        case let .peerInstallation(p):
            guard p.signingKey.count == 32, p.identityKey.count == 32, p.installationID.count == 16 else { return nil }
            return EventPlacement()
        case let .historyRequest(h):
            guard h.requestID.count == 16 else { return nil }
            return EventPlacement()
        }
    }

    private static func isStreamID(_ id: Data) -> Bool { !id.isEmpty && id.count <= 256 }

    private static func prekeySubject(_ installation: Data, _ prekey: UInt32) -> [UInt8] {
        [prekeySubject] + installation + withUnsafeBytes(of: prekey.bigEndian) { Array($0) }
    }
}

extension EventDraft {
    /// A new messaging event.
    package init(_ event: MessagingEvent, at time: Date = Date()) {
        self.init(event.payload, at: time)
    }
}

extension Store {
    /// Appends one new messaging event.
    @discardableResult
    package func append(_ event: MessagingEvent, at time: Date = Date()) throws(KeepsakeError) -> Event {
        try append(event.payload, at: time)
    }
}

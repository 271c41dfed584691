import Foundation
import KeepsakeLog

extension EventPayload {
    /// Checks what the projections rely on: identifiers have their fixed size.
    func validate(id: EventID?) throws(KeepsakeError) {
        let identifiers: [Data]
        switch self {
        case let .conversationCreated(c): identifiers = [c.conversationID]
        case let .messageSent(m), let .messageReceived(m): identifiers = [m.messageID, m.conversationID]
        case let .messageEdited(e): identifiers = [e.messageID, e.conversationID]
        case let .messageDeleted(d): identifiers = [d.messageID, d.conversationID]
        case let .membershipCommit(c): identifiers = [c.conversationID]
        case let .conversationRead(r): identifiers = [r.conversationID, r.upToMessageID]
        case let .ratchetStep(r):
            guard !r.streamID.isEmpty, r.streamID.count <= 256 else { throw .corruptEventPayload(id: id, kind: kind) }
            identifiers = []
        case let .installationKeys(k):
            guard k.signingSeed.count == 32, k.signingPublicKey.count == 32 else { throw .corruptEventPayload(id: id, kind: kind) }
            identifiers = [k.installationID]
        case let .installationRestored(r): identifiers = [r.installationID, r.restoredByLog, r.backupID]
        case let .accountJoined(j):
            guard j.identitySecret.count == 32, j.identityKey.count == 32, !j.signedBundle.isEmpty else {
                throw .corruptEventPayload(id: id, kind: kind)
            }
            identifiers = [j.installationID]
        case let .prekeyCreated(p):
            guard p.secret.count == 32, !p.signedPrekey.isEmpty else { throw .corruptEventPayload(id: id, kind: kind) }
            identifiers = [p.installationID]
        case let .prekeyUsed(p): identifiers = [p.installationID]
        case let .peerInstallation(p):
            guard p.signingKey.count == 32, p.identityKey.count == 32 else { throw .corruptEventPayload(id: id, kind: kind) }
            identifiers = [p.installationID]
        case let .historyRequest(h): identifiers = [h.requestID]
        case let .installationRetired(r): identifiers = [r.installationID]
        case let .sessionClosed(c):
            guard !c.streamID.isEmpty, c.streamID.count <= 256 else { throw .corruptEventPayload(id: id, kind: kind) }
            identifiers = []
        default: identifiers = []
        }
        guard identifiers.allSatisfy({ $0.count == 16 }) else { throw .corruptEventPayload(id: id, kind: kind) }
    }
}

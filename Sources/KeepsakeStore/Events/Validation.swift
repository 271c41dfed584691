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
        case let .installationKeys(k):
            guard k.signingSeed.count == 32, k.signingPublicKey.count == 32 else { throw .corruptEventPayload(id: id, kind: kind) }
            identifiers = [k.installationID]
        case let .installationRestored(r): identifiers = [r.installationID, r.restoredByLog, r.backupID]
        case let .installationRetired(r): identifiers = [r.installationID]
        default: identifiers = []
        }
        guard identifiers.allSatisfy({ $0.count == 16 }) else { throw .corruptEventPayload(id: id, kind: kind) }
    }
}

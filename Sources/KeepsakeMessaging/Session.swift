import Foundation
import GRDB
import KeepsakeCrypto
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

/// One Double Ratchet session with another installation, as loaded from its
/// newest ratchet-step event. Saving it appends the next step, which erases
/// the previous state in the log (forward secrecy).
struct Session {
    let streamID: Data
    /// The step this state was saved as (0 for a session not saved yet).
    let step: UInt64
    let peerAccount: AccountID
    let peerInstallation: InstallationID
    var ratchet: DoubleRatchet
    /// The initiator's ephemeral key: prekey messages name their session by it.
    let baseKey: Data
    /// The PrekeySetup to attach while the peer has not replied yet (empty after).
    var pendingSetup: Data

    /// The ratchet-step event that records this state as the next step.
    func nextStep() throws(KeepsakeError) -> MessagingEvent {
        var event = RatchetStep()
        event.streamID = streamID
        event.peerAccount = peerAccount.rawValue
        event.peerInstallation = peerInstallation.description
        event.step = step + 1
        event.baseKey = baseKey
        event.pendingSetup = pendingSetup
        do { event.state = try ratchet.serialized().withUnsafeBytes { Data($0) } } catch { throw .crypto("\(error)") }
        return .ratchetStep(event)
    }
}

extension Store {
    /// Sessions with an installation, the most recently active first.
    func sessions(with installation: InstallationID) throws(KeepsakeError) -> [Session] {
        let sequences = try readMessaging { db in
            try Int64.fetchAll(db, sql: """
                SELECT sequence FROM sessions WHERE peer_installation = ? ORDER BY active_at DESC, step DESC
                """, arguments: [installation.description])
        }
        var found: [Session] = []
        for sequence in sequences { if let session = try session(at: UInt64(sequence)) { found.append(session) } }
        return found
    }

    /// The session a prekey message with `baseKey` belongs to, if it was started already.
    func session(baseKey: Data) throws(KeepsakeError) -> Session? {
        guard let sequence = try readMessaging({ db in
            try Int64.fetchOne(db, sql: "SELECT sequence FROM sessions WHERE base_key = ?", arguments: [baseKey])
        }) else { return nil }
        return try session(at: UInt64(sequence))
    }

    private func session(at sequence: UInt64) throws(KeepsakeError) -> Session? {
        guard let event = try event(at: sequence), case var .ratchetStep(step)? = MessagingEvent(event.payload),
              let peer = InstallationID(step.peerInstallation) else { return nil }
        defer { step.state.resetBytes(in: 0..<step.state.count) }
        let ratchet: DoubleRatchet
        do {
            ratchet = try DoubleRatchet(serialized: SecureBytes(copying: step.state))
        } catch {
            throw .crypto("session \(Hex.encode(step.streamID)): \(error)")
        }
        return Session(streamID: step.streamID, step: step.step, peerAccount: AccountID(step.peerAccount), peerInstallation: peer,
                       ratchet: ratchet, baseKey: step.baseKey, pendingSetup: step.pendingSetup)
    }

    /// Sessions that lost to a newer one with the same installation and have
    /// been idle since `idleBefore`: closing them erases their state.
    func idleSupersededSessions(idleBefore: Date) throws(KeepsakeError) -> [Data] {
        try readMessaging { db in
            try Data.fetchAll(db, sql: """
                SELECT s.stream_id FROM sessions s
                WHERE s.active_at < ? AND EXISTS (
                    SELECT 1 FROM sessions n WHERE n.peer_installation = s.peer_installation AND n.stream_id != s.stream_id
                    AND (n.active_at, n.step) > (s.active_at, s.step))
                """, arguments: [idleBefore.millis])
        }
    }
}

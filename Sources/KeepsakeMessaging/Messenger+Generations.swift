import Foundation
import GRDB
import KeepsakeCrypto
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

/// The go-offline notice of hard restores (XIP-56). A store restored from a
/// hard backup runs the installation at a newer generation and says so on
/// the installation's notice topic, signed with the installation's key; a
/// store still holding the keys at an older generation that reads the notice
/// records the newer claim, erases the installation's keys, prekeys and
/// sessions from its log, and stops: generations decide, never clocks.
extension Messenger {
    /// Publishes this store's claim when it runs the installation at a generation above 1 (once per generation).
    func announceGeneration() async throws {
        guard let installation = try store.installation(), installation.generation > 1, !installation.isSuperseded,
              let backup = try store.restoredFrom(installation) else { return }
        let generation = Int64(installation.generation)
        guard try store.record(generation, in: .publishedNotices) == nil else { return }
        let (_, signing) = try store.signingKey()
        let notice = try SignedInstallationNotice.signing(InstallationNotice.with {
            $0.installationID = Data(installation.id.bytes)
            $0.generation = installation.generation
            $0.restoredByLog = Data(store.logID.bytes)
            $0.backupID = backup
        }, with: signing).wireBytes()
        try await relayCall { try await $0.publish(notice, to: .installation(installation: installation.id.bytes)) }
        try store.setRecord(PublishedNotice(at: Date()), for: generation, in: .publishedNotices)
    }

    /// Reads the installation's notices; when one names a newer generation,
    /// retires this store's copy of the installation and throws `installationSuperseded`.
    func heedNotices() async throws {
        guard let installation = try store.installation() else { return }
        var newest: InstallationNotice?
        for item in try await allItems(of: .installation(installation: installation.id.bytes), after: 0).items {
            guard let notice = try? parse(SignedInstallationNotice.self, item.data, as: "notice").verified(signingKey: installation.publicKey),
                  Array(notice.installationID) == installation.id.bytes, notice.generation > installation.generation else { continue }
            if notice.generation > newest?.generation ?? 0 { newest = notice }
        }
        if let newest { try retire(installation, for: newest) }
        if let current = try store.installation(), current.isSuperseded { throw KeepsakeError.installationSuperseded(current) }
    }

    private func retire(_ installation: Installation, for notice: InstallationNotice) throws {
        var claim = InstallationRestored()
        claim.installationID = notice.installationID
        claim.generation = notice.generation
        claim.restoredByLog = notice.restoredByLog
        claim.backupID = notice.backupID
        var retired = InstallationRetired()
        retired.installationID = notice.installationID
        retired.supersededByGeneration = notice.generation
        var drafts = [EventDraft(.installationRestored(claim)), EventDraft(.installationRetired(retired))]
        drafts += try store.unusedPrekeys(installation.id).map { id in
            var used = PrekeyUsed()
            used.installationID = notice.installationID
            used.prekeyID = id
            return EventDraft(.prekeyUsed(used))
        }
        drafts += try store.sessionStreams().map { Self.closing($0, because: "the installation moved to a newer generation") }
        try store.append(contentsOf: drafts)
    }
}

extension Store {
    func unusedPrekeys(_ installation: InstallationID) throws(KeepsakeError) -> [UInt32] {
        try readMessaging { db in
            try Int64.fetchAll(db, sql: "SELECT prekey_id FROM prekeys WHERE installation_id = ? AND used = 0",
                               arguments: [Data(installation.bytes)]).map { UInt32($0) }
        }
    }

    func sessionStreams() throws(KeepsakeError) -> [Data] {
        try readMessaging { db in try Data.fetchAll(db, sql: "SELECT stream_id FROM sessions") }
    }
}

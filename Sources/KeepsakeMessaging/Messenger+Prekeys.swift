import Foundation
import GRDB
import KeepsakeCrypto
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

extension Messenger {
    /// Events for new prekeys: `oneTime` one-time prekeys and, when asked, a
    /// fallback; each signed by the installation, its secret sealed in its event.
    func prekeyEvents(for installation: InstallationID, signing: SigningKey, oneTime: Int, fallback: Bool) throws -> [EventDraft] {
        var next = try store.nextPrekeyID(installation)
        var drafts: [EventDraft] = []
        for isFallback in Array(repeating: false, count: oneTime) + (fallback ? [true] : []) {
            let key = try KeyAgreementKey.generate()
            let prekey = Prekey.with {
                $0.installationID = Data(installation.bytes)
                $0.prekeyID = next
                $0.publicKey = Data(key.publicKey)
                $0.fallback = isFallback
                $0.createdAtMs = Date().millis
            }
            var event = PrekeyCreated()
            event.installationID = Data(installation.bytes)
            event.prekeyID = next
            event.fallback = isFallback
            event.secret = try key.secretKey().withUnsafeBytes { Data($0) }
            event.signedPrekey = Data(try SignedPrekey.signing(prekey, with: signing).wireBytes())
            drafts.append(EventDraft(.prekeyCreated(event)))
            event.secret.resetBytes(in: 0..<event.secret.count)
            next += 1
        }
        return drafts
    }

    /// Uploads signed prekeys with the installation's bundle, then remembers the
    /// highest ID uploaded so a claimed prekey is never offered again.
    func uploadPrekeys(_ membership: Membership, _ prekeys: [(id: UInt32, signed: Data)]) async throws {
        guard let highest = prekeys.map(\.id).max() else { return }
        let upload = try PrekeyUpload.with {
            $0.contact = try SignedContactBundle(serializedBytes: membership.signedBundle)
            $0.prekeys = try prekeys.map { try SignedPrekey(serializedBytes: $0.signed) }
        }.wireBytes()
        try await relayCall { try await $0.publish(upload, to: .prekey(installation: membership.installation.bytes)) }
        try store.setRecord(Int64(highest), for: membership.installation.description, in: .publishedPrekeys)
    }

    /// Keeps the relay stocked: a new batch of one-time prekeys when it holds
    /// fewer than `replenishBelow`, or fewer than were served in the last hour
    /// (so a stock in heavy use does not run out before the next sync); and a
    /// new fallback once the current one is older than `fallbackLifetime` (the
    /// one before it is then erased; the newest previous fallback stays for
    /// prekey messages still in flight). Returns the stock the relay reports afterwards.
    func maintainPrekeys(_ membership: Membership) async throws -> PrekeyStock {
        let stock = try await prekeyStock(membership)
        let fallbacks = try store.fallbackPrekeys(membership.installation)
        let lifetime = Double(options.fallbackLifetime.components.seconds)
        let rotate = fallbacks.first.map { Date().timeIntervalSince($0.createdAt) > lifetime } ?? true
        let low = stock.oneTimeRemaining < max(options.replenishBelow, stock.oneTimeServedLastHour)
        let oneTime = low ? options.prekeyBatch : 0
        guard oneTime > 0 || rotate else { return stock }
        let (_, signing) = try store.signingKey()
        var drafts = try prekeyEvents(for: membership.installation, signing: signing, oneTime: oneTime, fallback: rotate)
        if rotate {
            for old in fallbacks.dropFirst() {
                var used = PrekeyUsed()
                used.installationID = Data(membership.installation.bytes)
                used.prekeyID = old.id
                drafts.append(EventDraft(.prekeyUsed(used)))
            }
        }
        try store.append(contentsOf: drafts)
        try await uploadPrekeys(membership, store.unpublishedPrekeys(membership.installation))
        return try await prekeyStock(membership)
    }

    /// The relay's count of this installation's one-time prekeys and how fast they went in the last hour (a signed read).
    private func prekeyStock(_ membership: Membership) async throws -> PrekeyStock {
        let path = Topic.prekey(installation: membership.installation.bytes).path
        let authentication = try store.authenticateRequest(method: "GET", path: path, contentDigest: RequestAuthentication.emptyBodyDigest)
        return try await relayCall { try await $0.prekeyStock(of: membership.installation.bytes, authentication: authentication) }
    }
}

extension Store {
    func nextPrekeyID(_ installation: InstallationID) throws(KeepsakeError) -> UInt32 {
        try readMessaging { db in
            UInt32(try Int64.fetchOne(db, sql: "SELECT max(prekey_id) FROM prekeys WHERE installation_id = ?",
                                      arguments: [Data(installation.bytes)]) ?? 0) + 1
        }
    }

    /// Unused prekeys above the highest ID already uploaded, with their signed public halves.
    func unpublishedPrekeys(_ installation: InstallationID) throws(KeepsakeError) -> [(id: UInt32, signed: Data)] {
        let published = try record(installation.description, in: .publishedPrekeys) ?? 0
        let rows = try readMessaging { db in
            try Row.fetchAll(db, sql: """
                SELECT prekey_id, sequence FROM prekeys WHERE installation_id = ? AND used = 0 AND prekey_id > ? ORDER BY prekey_id
                """, arguments: [Data(installation.bytes), published])
        }
        var found: [(id: UInt32, signed: Data)] = []
        for row in rows {
            guard let event = try event(at: UInt64(row["sequence"] as Int64)), case let .prekeyCreated(prekey)? = MessagingEvent(event.payload) else { continue }
            found.append((prekey.prekeyID, prekey.signedPrekey))
        }
        return found
    }

    /// Unused fallback prekeys, newest first.
    func fallbackPrekeys(_ installation: InstallationID) throws(KeepsakeError) -> [(id: UInt32, createdAt: Date)] {
        try readMessaging { db in
            try Row.fetchAll(db, sql: """
                SELECT prekey_id, created_at FROM prekeys WHERE installation_id = ? AND fallback = 1 AND used = 0
                ORDER BY prekey_id DESC
                """, arguments: [Data(installation.bytes)]).map {
                (UInt32($0["prekey_id"] as Int64), Date(timeIntervalSince1970: Double($0["created_at"] as Int64) / 1000))
            }
        }
    }
}

import Foundation
import GRDB
import KeepsakeWire

/// The relay's topics without HTTP: what a publish must pass, prekey uploads,
/// and the stored items. `Relay` serves them over HTTP; `InMemoryRelay` calls them directly.
struct RelayTopics: Sendable {
    let storage: RelayStorage
    let limits: Relay.Limits
    let notifier = TopicNotifier()

    /// Prekey claims and stock reads, signed and rate limited.
    var prekeyClaims: PrekeyClaims { PrekeyClaims(storage: storage, limits: limits) }

    /// Stores a wire message on `topic` after the topic's checks (in the same
    /// transaction) and wakes the topic's followers; returns its cursor.
    /// Prekey topics take uploads through `storePrekeys` instead.
    func accept(_ body: [UInt8], on topic: Topic) async throws -> Int64 {
        let cursor: Int64
        do {
            cursor = try await storage.publish(body, on: topic) { db in try check(body, on: topic, db) }
        } catch let error as WireError {
            throw RelayError(error)
        }
        notifier.published(on: topic.name)
        return cursor
    }

    /// The checks a publish must pass, inside its transaction.
    private func check(_ body: [UInt8], on topic: Topic, _ db: Database) throws {
        switch topic {
        case let .contact(account):
            let bundle = try parse(SignedContactBundle.self, body, as: "contact bundle").verified()
            guard bundle.account == account else { throw WireError.mismatch("the bundle is signed by another account than the topic's") }
            guard try !storage.isRevoked(Array(bundle.installationID), db) else { throw RelayError.revoked }
            try storage.learn(bundle, db)
        case let .revoked(account):
            let revocation = try parse(SignedRevocation.self, body, as: "revocation").verified()
            guard AccountIdentity.of(publicKey: Array(revocation.accountKey)) == account else {
                throw WireError.mismatch("the revocation is signed by another account than the topic's")
            }
            try storage.revoke(installation: Array(revocation.installationID), account: account, at: revocation.revokedAtMs, db)
        case .message:
            let envelope = try parse(Envelope.self, body, as: "envelope")
            let header = try parse(EnvelopeHeader.self, envelope.header, as: "envelope header")
            guard !envelope.ciphertext.isEmpty else { throw WireError.malformed("envelope") }
            try SendTimeWindow.check(header.sentNs, receivedAt: Date())
        case .commits:
            let claim = try parse(CommitClaim.self, body, as: "commit claim")
            guard claim.commitDigest.count == 32 else { throw WireError.malformed("commit claim") }
            if case let .refused(holder, next) = try storage.claim(epoch: claim.epoch, digest: Array(claim.commitDigest), on: topic, db) {
                guard holder != nil else {
                    throw RelayError(.conflict, code: "epoch_ahead", """
                        epoch \(claim.epoch) of this group cannot be claimed yet: the group's claims end before it, \
                        and the next free epoch is \(next); apply the commits before it first
                        """)
                }
                throw RelayError(.conflict, code: "epoch_taken",
                                 "epoch \(claim.epoch) of this group is already claimed by another commit; the next free epoch is \(next)")
            }
        case let .installation(installation):
            let notice = try parse(SignedInstallationNotice.self, body, as: "installation notice")
            guard try Array(notice.verified(signingKey: storage.signingKey(of: installation, db).key).installationID) == installation else {
                throw WireError.mismatch("the notice is about another installation than its topic")
            }
        case .prekey:
            break
        }
    }

    func storePrekeys(_ body: [UInt8], for installation: [UInt8]) async throws -> Relay.PrekeysStored {
        let upload: PrekeyUpload, bundle: ContactBundle, prekeys: [(Prekey, SignedPrekey)]
        do {
            upload = try parse(PrekeyUpload.self, body, as: "prekey upload")
            guard upload.prekeys.count <= limits.maxPrekeysPerUpload else {
                throw RelayError(.contentTooLarge, code: "too_many_prekeys", "an upload carries at most \(limits.maxPrekeysPerUpload) prekeys")
            }
            (bundle, prekeys) = try upload.verified(for: installation)
        } catch let error as WireError {
            throw RelayError(error)
        }
        let remaining = try await storage.database.write { db in
            guard try !storage.isRevoked(installation, db) else { throw RelayError.revoked }
            try storage.learn(bundle, db)
            try storage.store(prekeys: prekeys.map { (id: $0.0.prekeyID, fallback: $0.0.fallback, signed: try $0.1.wireBytes()) },
                              for: installation, db)
            return try storage.oneTimePrekeys(of: installation, db)
        }
        return Relay.PrekeysStored(stored: prekeys.count, oneTimeRemaining: remaining)
    }
}

extension RelayError {
    /// A wire message that does not parse or verify, refused as the relay
    /// refuses everything: 403 for a bad signature, 400 otherwise.
    init(_ error: WireError) {
        self.init(error.isSignature ? .forbidden : .badRequest, code: error.code, error.description)
    }
}

/// The send times the relay accepts: `sent_ns` is nanoseconds since the Unix
/// epoch, at most `past` before the relay's clock (an outbox may hold an
/// envelope that long) and at most `future` after it (clock skew). A time in
/// another unit (milliseconds are 10^6 too small) lands far outside.
enum SendTimeWindow {
    static let past: TimeInterval = 30 * 24 * 3600
    static let future: TimeInterval = 10 * 60

    static func check(_ sentNs: UInt64, receivedAt now: Date) throws {
        let sent = Double(sentNs) / 1e9
        let received = now.timeIntervalSince1970
        guard sent >= received - past, sent <= received + future else {
            throw RelayError(.badRequest, code: "sent_time_out_of_range", """
                the envelope's sent_ns \(sentNs) is not a time in nanoseconds since 1970 within 30 days before \
                and 10 minutes after the relay's clock (\(UInt64(received * 1e9)))
                """)
        }
    }
}

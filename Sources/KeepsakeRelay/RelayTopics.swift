import Foundation
import KeepsakeWire

/// The relay's topics without HTTP: what a publish must pass, prekey uploads,
/// and the stored items. `Relay` serves them over HTTP; `InMemoryRelay` calls them directly.
struct RelayTopics: Sendable {
    let storage: any RelayStore
    let limits: Relay.Limits
    let notifier: TopicNotifier
    let metrics: RelayMetrics

    init(storage: any RelayStore, limits: Relay.Limits, metrics: RelayMetrics) {
        self.storage = storage
        self.limits = limits
        self.metrics = metrics
        notifier = TopicNotifier(keepAlive: limits.keepAlive)
    }

    /// Prekey claims and stock reads, signed and rate limited.
    var prekeyClaims: PrekeyClaims { PrekeyClaims(storage: storage, limits: limits) }

    /// Stores a wire message on `topic` after the topic's checks (its rule
    /// applied in the same transaction) and wakes the topic's followers; returns its cursor.
    /// Prekey topics take uploads through `storePrekeys` instead.
    func accept(_ body: [UInt8], on topic: Topic) async throws -> Int64 {
        let cursor: Int64
        do {
            cursor = try await storage.publish(body, on: topic, rule: try rule(for: body, on: topic), receivedAt: .nowMillis)
        } catch let error as WireError {
            throw RelayError(error)
        }
        notifier.published(on: topic.name)
        metrics.published(on: topic)
        return cursor
    }

    /// What a publish must pass before it is stored: the message parses and
    /// verifies, and names its topic's account or installation; returns what
    /// its transaction must also do.
    private func rule(for body: [UInt8], on topic: Topic) throws -> PublishRule {
        switch topic {
        case let .contact(account):
            let bundle = try parse(SignedContactBundle.self, body, as: "contact bundle").verified()
            guard bundle.account == account else { throw WireError.mismatch("the bundle is signed by another account than the topic's") }
            return .learn(KnownInstallation(bundle))
        case let .revoked(account):
            let revocation = try parse(SignedRevocation.self, body, as: "revocation").verified()
            guard AccountIdentity.of(publicKey: Array(revocation.accountKey)) == account else {
                throw WireError.mismatch("the revocation is signed by another account than the topic's")
            }
            return .revoke(installation: Array(revocation.installationID), account: account, at: revocation.revokedAtMs)
        case .message:
            let envelope = try parse(Envelope.self, body, as: "envelope")
            let header = try parse(EnvelopeHeader.self, envelope.header, as: "envelope header")
            guard !envelope.ciphertext.isEmpty else { throw WireError.malformed("envelope") }
            try SendTimeWindow.check(header.sentNs, receivedAt: Date())
            return .none
        case .commits:
            let claim = try parse(CommitClaim.self, body, as: "commit claim")
            guard claim.commitDigest.count == 32 else { throw WireError.malformed("commit claim") }
            return .claimEpoch(claim.epoch, digest: Array(claim.commitDigest))
        case let .installation(installation):
            let notice = try parse(SignedInstallationNotice.self, body, as: "installation notice")
            return .signedBy(installation: installation) { signingKey in
                guard Array(try notice.verified(signingKey: signingKey).installationID) == installation else {
                    throw WireError.mismatch("the notice is about another installation than its topic")
                }
            }
        case .prekey:
            return .none
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
        let uploaded = try prekeys.map { UploadedPrekey(id: $0.0.prekeyID, fallback: $0.0.fallback, signed: try $0.1.wireBytes()) }
        let remaining = try await storage.storePrekeys(uploaded, of: KnownInstallation(bundle))
        return Relay.PrekeysStored(stored: prekeys.count, oneTimeRemaining: remaining)
    }

    /// Hands every item of `topic` after `cursor` to `body`, oldest first, a page
    /// at a time; returns the cursor of the last one (or `cursor` when there was none).
    func forEachItem(on topic: Topic, after cursor: Int64, _ body: (StoredItem) async throws -> Void) async throws -> Int64 {
        var cursor = cursor
        var page: [StoredItem]
        repeat {
            page = try await storage.items(on: topic, after: cursor, limit: limits.maxQueryItems)
            for item in page {
                try await body(item)
                cursor = item.cursor
            }
        } while page.count == limits.maxQueryItems
        return cursor
    }
}

extension KnownInstallation {
    init(_ bundle: ContactBundle) {
        self.init(id: Array(bundle.installationID), account: bundle.account, signingKey: Array(bundle.signingKey))
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

import Foundation
import KeepsakeCrypto
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire
import SwiftProtobuf

/// What one `sync()` did.
public struct SyncReport: Sendable, Equatable {
    /// Messages received, in inbox order.
    public var received: [MessageID] = []
    /// Envelopes already received before (duplicate delivery or replay), ignored.
    public var duplicates = 0
    /// Envelopes refused, with their inbox cursor and why.
    public var rejected: [Rejected] = []
    /// Envelopes that were still waiting in the outbox and reached the relay now.
    public var published = 0
    /// Envelopes that did not decrypt and whose senders were asked to send them again.
    public var retransmissionsRequested = 0
    /// Messages sent again because a recipient asked.
    public var resent = 0
    /// Texts whose envelopes waited in the outbox longer than `Options.outboxLifetime`,
    /// sealed again with a new send time (same message ID: still one message).
    public var resealed = 0
    /// Other envelopes (commits, requests) that waited that long, dropped: the relay would refuse them.
    public var expiredEnvelopes = 0
    /// Group commits applied (creations, additions, removals).
    public var commits = 0
    /// History requests other installations of this account made.
    public var historyRequests: [HistoryRequestID] = []
    /// History answers imported.
    public var historyApplied: [HistoryRequestID] = []
    /// History answers that failed a check, with why.
    public var historyFailures: [HistorySyncError] = []
    /// This installation's prekeys on the relay after the sync's upkeep: how
    /// many one-time prekeys are left and how many were served in the last hour.
    public var prekeys: PrekeyStock?

    /// Whether the sync brought or did nothing (the prekey stock aside).
    public var isEmpty: Bool {
        var bare = self
        bare.prekeys = nil
        return bare == SyncReport()
    }

    /// An envelope the sync refused, and why.
    public struct Rejected: Sendable, Equatable {
        /// Its cursor in the inbox.
        public let cursor: Int64
        /// Why it was refused.
        public let reason: EnvelopeRejection
    }
}

extension Store {
    /// Keeps an envelope that cannot apply yet (`LocalTable.deferredEnvelopes`).
    func `defer`(_ item: RelayItem) throws(KeepsakeError) {
        try setRecord(DeferredEnvelope(receivedAt: item.receivedAt, envelope: item.data), for: item.cursor, in: .deferredEnvelopes)
    }

    func undefer(_ item: RelayItem) throws(KeepsakeError) {
        try setRecord(nil, for: item.cursor, in: .deferredEnvelopes)
    }

    /// Deferred envelopes in inbox order.
    func deferred() throws(KeepsakeError) -> [RelayItem] {
        try records(in: .deferredEnvelopes).map { RelayItem(cursor: $0.key, data: $0.record.envelope, receivedAt: $0.record.receivedAt) }
    }
}

extension Messenger {
    /// Publishes what the outbox holds, pulls this installation's inbox from
    /// where the last sync stopped and processes every envelope, then keeps the
    /// prekey stock up and closes idle superseded sessions. Cancelling the
    /// calling task stops it between envelopes with `CancellationError`; the
    /// next sync goes on from there.
    public func sync() async throws -> SyncReport {
        try await exclusive { try await pullInbox() }
    }

    private func pullInbox() async throws -> SyncReport {
        let me = try requireMembership()
        try await heedNotices()
        try await announceGeneration()
        var report = SyncReport()
        (report.resealed, report.expiredEnvelopes) = try await renewStaleOutbox()
        let waiting = try store.outbox().count
        report.published = waiting - (await flushOutbox())
        let inbox = Topic.message(installation: me.installation.bytes)
        var cursor = try inboxCursor(inbox)
        var refreshed: Set<String> = []
        while true {
            let page = try await relayCall { [cursor, options] in try await $0.items(on: inbox, after: cursor, limit: options.pageSize) }
            for item in page.items {
                // A cancelled sync stops between envelopes, after the last one's inbox cursor is stored.
                try Task.checkCancellation()
                if try await process(item, as: me, refreshed: &refreshed, into: &report) == .deferred {
                    try store.defer(item)
                }
                try store.setRecord(item.cursor, for: inbox.name, in: .relayCursors)
            }
            cursor = page.next
            if page.items.count < options.pageSize { break }
        }
        // Deferred envelopes, until a round applies none of them.
        var progress = true
        while progress {
            progress = false
            for item in try store.deferred() where try await process(item, as: me, refreshed: &refreshed, into: &report) != .deferred {
                try store.undefer(item)
                progress = true
            }
        }
        report.prekeys = try await maintainPrekeys(me)
        try closeIdleSupersededSessions()
        try expireHistoryRequests()
        return report
    }

    /// Syncs now, then again whenever the relay announces a new envelope in
    /// this installation's inbox; yields each sync that brought something.
    /// Ends with an error when the relay connection fails (call again to resume).
    public nonisolated func live() -> AsyncThrowingStream<SyncReport, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let me = try await self.requireMembership()
                    let inbox = Topic.message(installation: me.installation.bytes)
                    let first = try await self.sync()
                    if !first.isEmpty { continuation.yield(first) }
                    for try await item in self.relay.watch(inbox, after: try await self.inboxCursor(inbox)) {
                        guard item.cursor > (try await self.inboxCursor(inbox)) else { continue }
                        let report = try await self.sync()
                        if !report.isEmpty { continuation.yield(report) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    private func inboxCursor(_ inbox: Topic) throws -> Int64 { try store.record(inbox.name, in: .relayCursors) ?? 0 }

    private enum Processed { case done, deferred }

    /// Receives one inbox item and records the outcome in `report`. An envelope
    /// from a known sender that does not decrypt makes this installation ask
    /// the sender, on a new session, to send its content again (once per envelope).
    private func process(_ item: RelayItem, as me: Membership, refreshed: inout Set<String>, into report: inout SyncReport) async throws -> Processed {
        var sender: KnownInstallation?
        do {
            switch try await receive(item.data, receivedAt: item.receivedAt, as: me, refreshed: &refreshed, sender: &sender) {
            case let .message(id): report.received.append(id)
            case .commit: report.commits += 1
            case let .historyRequest(id):
                report.historyRequests.append(id)
                if let consent = options.historyConsent, let request = try store.historyRequest(id) {
                    if await consent(request) { try await answerHistoryRequest(id) } else { try refuseHistoryRequest(id, reason: "refused by the user") }
                }
            case let .historyResponse(response, from: responder):
                do {
                    try await applyHistoryResponse(response, from: responder)
                    report.historyApplied += HistoryRequestID(bytes: response.requestID).map { [$0] } ?? []
                } catch let failure as HistorySyncError {
                    report.historyFailures.append(failure)
                }
            case let .retransmission(id, target):
                try await resend(id, to: target)
                report.resent += 1
            case .nothing: break
            }
        } catch is Deferral {
            return .deferred
        } catch EnvelopeRejection.replayed {
            report.duplicates += 1
        } catch let rejection as EnvelopeRejection {
            report.rejected.append(.init(cursor: item.cursor, reason: rejection))
            if rejection.callsForRetransmission, let sender, try await requestRetransmission(of: Blake2b.hash(item.data), from: sender) {
                report.retransmissionsRequested += 1
            }
        }
        return .done
    }

    /// Asks `sender` to send an envelope's content again, on a new session that
    /// replaces the ones with it. False when it was asked already.
    private func requestRetransmission(of digest: [UInt8], from sender: KnownInstallation) async throws -> Bool {
        let key = Hex.encode(digest)
        guard try store.record(key, in: .retransmitRequests) == nil else { return false }
        let request = Content.with { $0.retransmitRequest = .with { $0.envelopeDigest = Data(digest) } }
        _ = try await deliver(request, in: nil, to: [sender], newSession: true, logging: [])
        try store.setRecord(RetransmitRequested(at: Date()), for: key, in: .retransmitRequests)
        return true
    }

    /// Sends a message this store sent before again, to one installation, in its newest session.
    func resend(_ id: MessageID, to target: KnownInstallation) async throws {
        guard let message = try store.message(id), message.direction == .sent,
              let summary = try store.conversation(message.conversationID) else { return }
        let members = try store.members(of: message.conversationID)
        guard members.contains(target.account) else { return }
        let convo = Self.convoID(of: summary, members: members)
        let content = Content.with {
            $0.text = .with {
                $0.messageID = Data(id.bytes)
                $0.text = message.text
                $0.contentType = message.contentType
                $0.sentAtMs = message.sentAt.millis
            }
        }
        _ = try await deliver(content, in: convo, to: [target], logging: [])
    }

    private func closeIdleSupersededSessions() throws {
        let idle = Date().addingTimeInterval(-Double(options.supersededSessionIdleLimit.components.seconds))
        try store.append(contentsOf: try store.idleSupersededSessions(idleBefore: idle).map {
            Self.closing($0, because: "superseded by a newer session and idle")
        })
    }

    /// What an envelope brought.
    enum Received: Equatable {
        case message(MessageID)
        /// A group commit that changed this store's view of a group.
        case commit
        /// The sender asks for a message again (it could not decrypt it).
        case retransmission(MessageID, to: KnownInstallation)
        /// Another installation of this account asks for history (logged as pending).
        case historyRequest(HistoryRequestID)
        /// An answer to one of this installation's history requests, to apply.
        case historyResponse(HistoryResponse, from: KnownInstallation)
        case nothing
    }

    /// Validates and applies one envelope (docs/PROTOCOL.md, "Receiving"): the
    /// six steps of the XMTP design, then the content. Throws an
    /// `EnvelopeRejection` when a step fails; nothing is logged then. `sender`
    /// is set once the sender installation is known and valid (step 2).
    func receive(
        _ bytes: [UInt8], receivedAt: Date? = nil, as me: Membership, refreshed: inout Set<String>, sender identified: inout KnownInstallation?
    ) async throws -> Received {
        let envelope = try reject(Envelope.self, bytes, "envelope")
        let header = try reject(EnvelopeHeader.self, envelope.header, "envelope header")
        let identity = try store.identityKey(of: me)

        // 1. Open the sealed metadata.
        guard let opened = try? SealedBox.open(Array(header.sealedMetadata), as: identity) else { throw EnvelopeRejection.unsealFailed }
        let metadata = try reject(SealedMetadata.self, opened, "sealed metadata")

        // 2. For this installation; from a valid installation of the sender account, unrevoked when sent.
        guard metadata.recipientAccount == me.account.rawValue, Array(metadata.recipientInstallation) == me.installation.bytes else {
            throw EnvelopeRejection.notForThisInstallation
        }
        guard let senderID = InstallationID(bytes: metadata.senderInstallation),
              AccountIdentity.publicKey(of: metadata.senderAccount) != nil else { throw EnvelopeRejection.unknownSender }
        if !refreshed.contains(metadata.senderAccount) {
            try await refreshDirectory(of: AccountID(metadata.senderAccount))
            refreshed.insert(metadata.senderAccount)
        }
        guard let sender = try store.knownInstallation(senderID), sender.account.rawValue == metadata.senderAccount else {
            throw EnvelopeRejection.unknownSender
        }
        // The sender's clock, and the relay's when it reported one: a revoked installation cannot backdate.
        let sentAt = Date(timeIntervalSince1970: Double(header.sentNs) / 1_000_000_000)
        guard sender.mayHaveSent(at: sentAt), receivedAt.map(sender.mayHaveSent) ?? true else { throw EnvelopeRejection.senderRevoked }
        identified = sender

        // 3. Find the session, or start it from a prekey message.
        let message = try reject(SessionMessage.self, envelope.ciphertext, "session message")
        guard message.hasSetup == metadata.isPrekeyMessage else { throw EnvelopeRejection.malformed("the prekey flag disagrees with the message") }
        guard let ratchetHeader = DoubleRatchet.Header(bytes: message.ratchetHeader) else { throw EnvelopeRejection.malformed("ratchet header") }
        var candidates: [Session]
        var usedPrekey: UInt32?
        if message.hasSetup {
            let setup = message.setup
            guard Array(setup.identityKey) == sender.identityKey else { throw EnvelopeRejection.identityKeyMismatch }
            if let existing = try store.session(baseKey: setup.baseKey) {
                candidates = [existing]
            } else {
                candidates = [try inboundSession(setup, from: sender, me: me, identity: identity)]
                usedPrekey = setup.prekeyID
            }
        } else {
            candidates = try store.sessions(with: sender.id)
            guard !candidates.isEmpty else { throw EnvelopeRejection.noSession }
        }

        // 4. Decrypt (every session with the sender is tried, the most recently active first).
        let associatedData = Self.associatedData(header: Array(envelope.header), sender: sender.identityKey, recipient: me.identityKey)
        var decrypted: (session: Session, plaintext: [UInt8])?
        var replayed = false
        for var candidate in candidates {
            do {
                let plaintext = try candidate.ratchet.decrypt(
                    header: ratchetHeader, ciphertext: Array(message.ciphertext), associatedData: associatedData)
                decrypted = (candidate, plaintext)
                break
            } catch DoubleRatchet.Failure.replayed {
                replayed = true
            } catch {
                continue
            }
        }
        guard var (session, plaintext) = decrypted else { throw replayed ? EnvelopeRejection.replayed : EnvelopeRejection.undecryptable }
        defer { plaintext.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        if !message.hasSetup { session.pendingSetup = Data() }

        // 5. The header was signed by the sender installation.
        let payload = try reject(Payload.self, plaintext, "payload")
        guard SignaturePurpose.envelopeHeader.verify(Array(payload.headerSignature), of: Array(envelope.header), publicKey: sender.signingKey) else {
            throw EnvelopeRejection.badHeaderSignature
        }
        guard payload.version == Messenger.payloadVersion else {
            throw EnvelopeRejection.malformed("payload version \(payload.version); this installation reads version \(Messenger.payloadVersion)")
        }

        // 6. Both accounts are members of the conversation; then the content.
        var drafts = [EventDraft(try session.nextStep())]
        if let usedPrekey, let prekey = try store.prekeySecret(installation: me.installation, id: usedPrekey), !prekey.fallback {
            var used = PrekeyUsed()
            used.installationID = Data(me.installation.bytes)
            used.prekeyID = usedPrekey
            drafts.append(EventDraft(.prekeyUsed(used)))
        }
        var delivered = Received.nothing
        let convo = ConvoID(payload.convoID)
        switch payload.content.body {
        case let .retransmitRequest(request)? where payload.convoID.isEmpty:
            if let sent = try store.sentMessage(envelope: Array(request.envelopeDigest)), sent.recipient == sender.id {
                delivered = .retransmission(sent.message, to: sender)
            }
        case let .historyRequest(request)? where payload.convoID.isEmpty:
            guard sender.account == me.account else { throw EnvelopeRejection.notThisAccount }
            guard let id = HistoryRequestID(bytes: request.requestID), request.verificationPin < 10_000,
                  let url = URL(string: request.uploadURL), ["http", "https"].contains(url.scheme ?? "") else {
                throw EnvelopeRejection.malformed("history request")
            }
            if try store.historyRequest(id) == nil {
                drafts.append(EventDraft(.historyRequest(HistoryRequestChanged(
                    id, role: .provider, peer: sender.id, pin: request.verificationPin, uploadURL: request.uploadURL, status: .pending))))
                delivered = .historyRequest(id)
            }
        case let .historyResponse(response)? where payload.convoID.isEmpty:
            guard sender.account == me.account else { throw EnvelopeRejection.notThisAccount }
            guard HistoryRequestID(bytes: response.requestID) != nil else { throw EnvelopeRejection.malformed("history answer") }
            delivered = .historyResponse(response, from: sender)
        case _ where convo == nil:
            throw EnvelopeRejection.malformed("conversation ID '\(payload.convoID.prefix(80))'")
        case let .text(text)?:
            let convo = convo!
            drafts += try conversationEvents(for: convo, sender: sender.account, me: me.account)
            guard let id = MessageID(bytes: text.messageID) else { throw EnvelopeRejection.malformed("message ID") }
            var received = MessageContent()
            received.messageID = text.messageID
            received.conversationID = Data(convo.conversationID.bytes)
            received.sender = sender.account.rawValue
            received.text = text.text
            received.sentAtMs = text.sentAtMs
            received.contentType = text.contentType
            drafts.append(EventDraft(.messageReceived(received)))
            delivered = .message(id)
        case let .commit(commit)?:
            let applied = try await commitEvents(commit, in: convo!, from: sender, me: me)
            if !applied.isEmpty { delivered = .commit }
            drafts += applied
        case .retransmitRequest?, .historyRequest?, .historyResponse?:
            throw EnvelopeRejection.malformed("session-level content belongs to no conversation")
        case nil:
            throw EnvelopeRejection.malformed("empty content")
        }
        try store.append(contentsOf: drafts)
        return delivered
    }

    /// The responder's side of a new session: 3DH with this installation's
    /// prekey named in the setup, then a ratchet whose first key is that prekey.
    private func inboundSession(_ setup: PrekeySetup, from sender: KnownInstallation, me: Membership, identity: KeyAgreementKey) throws -> Session {
        guard let prekey = try store.prekeySecret(installation: me.installation, id: setup.prekeyID) else {
            throw EnvelopeRejection.prekeyUnavailable(setup.prekeyID)
        }
        do {
            let secret = try X3DH.respond(identity: identity, signedPrekey: prekey.key, oneTimePrekey: nil,
                                          initiatorIdentity: sender.identityKey, ephemeralKey: Array(setup.baseKey))
            let ratchet = try DoubleRatchet.responder(sharedSecret: secret, ratchet: prekey.key)
            return Session(streamID: Data(Random.bytes(16)), step: 0, peerAccount: sender.account, peerInstallation: sender.id,
                           ratchet: ratchet, baseKey: setup.baseKey, pendingSetup: Data())
        } catch {
            throw EnvelopeRejection.undecryptable
        }
    }

    /// Step 6 for a text: the events that create the conversation when this store
    /// does not have it yet (direct conversations only), after checking membership.
    private func conversationEvents(for convo: ConvoID, sender: AccountID, me: AccountID) throws -> [EventDraft] {
        switch convo {
        case let .direct(a, b):
            guard [a, b].contains(sender), [a, b].contains(me) else { throw EnvelopeRejection.notAMember }
            guard try store.conversation(convo.conversationID) == nil else { return [] }
            return [Self.directConversation(convo, members: [a, b], createdBy: sender)]
        case let .group(id):
            guard try store.conversation(id) != nil else { throw Deferral() }
            let members = try store.members(of: id)
            guard members.contains(sender), members.contains(me) else { throw EnvelopeRejection.notAMember }
            return []
        }
    }

    private func reject<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: some Collection<UInt8>, _ what: String) throws -> M {
        do { return try parse(type, bytes, as: what) } catch { throw EnvelopeRejection.malformed(what) }
    }
}

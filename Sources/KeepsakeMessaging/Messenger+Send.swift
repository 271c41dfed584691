import Foundation
import KeepsakeCrypto
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

/// What a send did.
public struct SendReceipt: Sendable, Equatable {
    /// The message sent.
    public let message: MessageID
    /// The conversation it went to (created for a first direct message).
    public let conversation: ConversationID
    /// Envelopes made: one per recipient installation.
    public let envelopes: Int
    /// Envelopes not yet accepted by the relay; `sync()` publishes them again.
    public let pending: Int
    /// Recipient installations without a session or a prekey to start one (none
    /// served, or the relay's prekey claim limits reached: try again later).
    public let unreachable: Int
}

extension Messenger {
    /// Sends a text in a conversation this store can write in, to every
    /// installation of every member (this account's other installations too).
    public func send(_ text: String, to conversation: ConversationID, contentType: String = "text/plain") async throws -> SendReceipt {
        try await exclusive { try await sendText(text, to: conversation, contentType: contentType) }
    }

    private func sendText(_ text: String, to conversation: ConversationID, contentType: String) async throws -> SendReceipt {
        let me = try requireMembership()
        guard let summary = try store.conversation(conversation) else { throw KeepsakeError.unknownConversation(conversation) }
        let members = try store.members(of: conversation)
        guard members.contains(me.account) else { throw MessagingError.notAMember(conversation) }
        guard try store.isWritable(summary) else { throw MessagingError.readOnly(conversation) }
        return try await sendText(
            text, contentType: contentType, in: Self.convoID(of: summary, members: members), members: members, creating: nil)
    }

    /// Sends a text to an account in the direct conversation between the two
    /// accounts, which the first message creates.
    public func send(_ text: String, toAccount account: AccountID, contentType: String = "text/plain") async throws -> SendReceipt {
        try await exclusive { try await sendText(text, toAccount: account, contentType: contentType) }
    }

    private func sendText(_ text: String, toAccount account: AccountID, contentType: String) async throws -> SendReceipt {
        let me = try requireMembership()
        guard AccountIdentity.publicKey(of: account.rawValue) != nil else { throw MessagingError.badAccountID(account) }
        guard account != me.account else { throw MessagingError.invalidChange("a direct conversation is with another account") }
        let convo = ConvoID.direct(between: me.account, and: account)
        if try store.conversation(convo.conversationID) != nil { return try await sendText(text, to: convo.conversationID, contentType: contentType) }
        let members = [me.account, account].sorted()
        return try await sendText(text, contentType: contentType, in: convo, members: members,
                                  creating: Self.directConversation(convo, members: members, createdBy: me.account))
    }

    /// The `convo_id` of a conversation this store holds.
    static func convoID(of summary: ConversationSummary, members: [AccountID]) -> ConvoID {
        summary.kind == .group ? .group(summary.id) : .direct(between: members.first ?? "", and: members.last ?? "")
    }

    static func directConversation(_ convo: ConvoID, members: [AccountID], createdBy: AccountID) -> EventDraft {
        var created = ConversationCreated()
        created.conversationID = Data(convo.conversationID.bytes)
        created.kind = .direct
        created.members = members.map(\.rawValue)
        created.createdBy = createdBy.rawValue
        return EventDraft(.conversationCreated(created))
    }

    private func sendText(
        _ text: String, contentType: String, in convo: ConvoID, members: [AccountID], creating: EventDraft?
    ) async throws -> SendReceipt {
        let me = try requireMembership()
        let id = MessageID.generate()
        let now = Date()
        var sent = MessageContent()
        sent.messageID = Data(id.bytes)
        sent.conversationID = Data(convo.conversationID.bytes)
        sent.sender = me.account.rawValue
        sent.text = text
        sent.sentAtMs = now.millis
        sent.contentType = contentType
        let content = Content.with {
            $0.text = .with {
                $0.messageID = Data(id.bytes)
                $0.text = text
                $0.contentType = contentType
                $0.sentAtMs = now.millis
            }
        }
        let delivery = try await deliver(content, in: convo, to: members, logging: [creating].compactMap { $0 } + [EventDraft(.messageSent(sent), at: now)])
        return SendReceipt(message: id, conversation: convo.conversationID, envelopes: delivery.envelopes,
                           pending: delivery.pending, unreachable: delivery.unreachable)
    }

    /// Encrypts `content` for every unrevoked installation of `accounts` but
    /// this one, logs `events` with every session step in one append, then
    /// publishes the envelopes (kept in the outbox until the relay has them).
    func deliver(
        _ content: Content, in convo: ConvoID, to accounts: [AccountID], logging events: [EventDraft]
    ) async throws -> (envelopes: Int, pending: Int, unreachable: Int) {
        let me = try requireMembership()
        var targets: [KnownInstallation] = []
        for account in Set(accounts).sorted() {
            targets += try await refreshedInstallations(of: account).filter { $0.revokedAt == nil && $0.id != me.installation }
        }
        return try await deliver(content, in: convo, to: targets, logging: events)
    }

    /// Encrypts `content` for `targets`, in their most recently active session
    /// or a new one from a claimed prekey (always a new one with `newSession`,
    /// closing the others), logs the steps with `events`, then publishes.
    func deliver(
        _ content: Content, in convo: ConvoID?, to targets: [KnownInstallation], newSession: Bool = false, logging events: [EventDraft]
    ) async throws -> (envelopes: Int, pending: Int, unreachable: Int) {
        let me = try requireMembership()
        var prekeys: [InstallationID: Prekey] = [:]
        for target in targets {
            let needsSession = try newSession || store.sessions(with: target.id).isEmpty
            if needsSession { prekeys[target.id] = try await claimPrekey(of: target) }
        }

        // From here to the append nothing awaits: sessions are read and stepped without interleaving.
        let identity = try store.identityKey(of: me)
        let (_, signing) = try store.signingKey()
        var drafts = events
        var outbox: [(Topic, [UInt8])] = []
        var sent: [(digest: [UInt8], message: MessageID, recipient: InstallationID)] = []
        var unreachable = 0
        for target in targets {
            let existing = try store.sessions(with: target.id)
            var session: Session
            if let prekey = prekeys[target.id] {
                session = try Self.outboundSession(to: target, prekey: prekey, identity: identity)
                if newSession { drafts += existing.map { Self.closing($0.streamID, because: "replaced by a new session after a decryption failure") } }
            } else if !newSession, let newest = existing.first {
                session = newest
            } else {
                unreachable += 1
                continue
            }
            let envelope = try Self.seal(content, convo: convo, session: &session, from: me, signing: signing, to: target)
            drafts.append(EventDraft(try session.nextStep()))
            outbox.append((.message(installation: target.id.bytes), envelope))
            if case let .text(text)? = content.body, let message = MessageID(bytes: text.messageID) { sent.append((Blake2b.hash(envelope), message, target.id)) }
        }
        try store.append(contentsOf: drafts)
        try store.addToOutbox(outbox)
        try store.rememberSent(sent)
        let pending = await flushOutbox()
        return (outbox.count, pending, unreachable)
    }

    static func closing(_ stream: Data, because reason: String) -> EventDraft {
        var closed = SessionClosed()
        closed.streamID = stream
        closed.reason = reason
        return EventDraft(.sessionClosed(closed))
    }

    /// Takes a prekey of `target` from the relay (a claim signed by this
    /// installation) and checks that its installation signed it. Nil when the
    /// relay has none for it, or will not serve more now (its rate limits): the
    /// target is then unreachable this time.
    private func claimPrekey(of target: KnownInstallation) async throws -> Prekey? {
        let path = Topic.prekey(installation: target.id.bytes).path + "/claim"
        let authentication = try store.authenticateRequest(method: "POST", path: path, contentDigest: RequestAuthentication.emptyBodyDigest)
        let served = try await relayCall { relay -> ClaimedPrekey? in
            do { return try await relay.claimPrekey(of: target.id.bytes, authentication: authentication) } catch is PrekeyClaimLimited { return nil }
        }
        guard let claimed = served else { return nil }
        let bundle = ContactBundle.with {
            $0.installationID = Data(target.id.bytes)
            $0.signingKey = Data(target.signingKey)
        }
        do {
            return try parse(SignedPrekey.self, claimed.data, as: "prekey").verified(by: bundle)
        } catch {
            throw MessagingError.invalidPrekey("\(error)")
        }
    }

    /// A new session with `target` from its prekey (3DH: identities, ephemeral, prekey).
    static func outboundSession(to target: KnownInstallation, prekey: Prekey, identity: KeyAgreementKey) throws -> Session {
        let (secret, baseKey) = try X3DH.initiate(
            identity: identity, responderIdentity: target.identityKey, signedPrekey: Array(prekey.publicKey), oneTimePrekey: nil)
        let ratchet = try DoubleRatchet.initiator(sharedSecret: secret, responderRatchetKey: Array(prekey.publicKey))
        let setup = PrekeySetup.with {
            $0.identityKey = Data(identity.publicKey)
            $0.baseKey = Data(baseKey)
            $0.prekeyID = prekey.prekeyID
        }
        return Session(streamID: Data(Random.bytes(16)), step: 0, peerAccount: target.account, peerInstallation: target.id,
                       ratchet: ratchet, baseKey: Data(baseKey), pendingSetup: Data(try setup.wireBytes()))
    }

    /// One envelope: sealed metadata, signed header, payload encrypted in the
    /// session. Session-level requests (retransmission) belong to no conversation.
    static func seal(
        _ content: Content, convo: ConvoID?, session: inout Session, from me: Membership, signing: SigningKey, to target: KnownInstallation,
        at time: Date = Date(), payloadVersion: UInt32 = Messenger.payloadVersion
    ) throws -> [UInt8] {
        let metadata = try SealedMetadata.with {
            $0.senderAccount = me.account.rawValue
            $0.senderInstallation = Data(me.installation.bytes)
            $0.recipientAccount = target.account.rawValue
            $0.recipientInstallation = Data(target.id.bytes)
            $0.isPrekeyMessage = !session.pendingSetup.isEmpty
        }.wireBytes()
        let header = try EnvelopeHeader.with {
            $0.sentNs = UInt64(time.timeIntervalSince1970 * 1_000_000_000)
            $0.sealedMetadata = Data(try SealedBox.seal(metadata, to: target.identityKey))
        }.wireBytes()
        let payload = try Payload.with {
            $0.version = payloadVersion
            $0.headerSignature = Data(SignaturePurpose.envelopeHeader.sign(header, with: signing))
            $0.convoID = convo?.text ?? ""
            $0.content = content
        }.wireBytes()
        let (ratchetHeader, ciphertext) = try session.ratchet.encrypt(
            payload, associatedData: associatedData(header: header, sender: me.identityKey, recipient: target.identityKey))
        let message = try SessionMessage.with {
            if !session.pendingSetup.isEmpty { $0.setup = try PrekeySetup(serializedBytes: session.pendingSetup) }
            $0.ratchetHeader = Data(ratchetHeader.bytes)
            $0.ciphertext = Data(ciphertext)
        }.wireBytes()
        return try Envelope.with {
            $0.header = Data(header)
            $0.ciphertext = Data(message)
        }.wireBytes()
    }

    /// What each ratchet message authenticates besides itself: the envelope
    /// header and both identity keys (sender first).
    static func associatedData(header: [UInt8], sender: [UInt8], recipient: [UInt8]) -> [UInt8] {
        header + sender + recipient
    }

    /// Publishes what the outbox holds; returns how many envelopes are still pending.
    /// Envelopes that waited in the outbox longer than `Options.outboxLifetime`
    /// (the relay refuses a `sent_ns` older than 30 days): a text is sealed again
    /// for its recipient in the newest session, with the same message ID; anything
    /// else is dropped. Returns how many were sealed again and how many dropped.
    func renewStaleOutbox() async throws -> (resealed: Int, dropped: Int) {
        let oldest = Date().addingTimeInterval(-Double(options.outboxLifetime.components.seconds))
        var resealed = 0, dropped = 0
        for entry in try store.outbox() {
            let header = try? EnvelopeHeader(serializedBytes: Envelope(serializedBytes: entry.envelope).header)
            if let header, Date(timeIntervalSince1970: Double(header.sentNs) / 1e9) >= oldest { continue }
            // Sealed again before the old envelope leaves the outbox, so a failure keeps it for the next sync.
            if let sent = try store.sentMessage(envelope: Blake2b.hash(entry.envelope)),
               let target = try store.knownInstallation(sent.recipient), target.revokedAt == nil {
                try await resend(sent.message, to: target)
                resealed += 1
            } else {
                dropped += 1
            }
            try store.removeFromOutbox(entry.key)
        }
        return (resealed, dropped)
    }

    func flushOutbox() async -> Int {
        guard let entries = try? store.outbox() else { return 0 }
        var pending = 0
        for entry in entries {
            do {
                _ = try await relay.publish(entry.envelope, to: entry.topic)
                try store.removeFromOutbox(entry.key)
            } catch {
                pending += 1
            }
        }
        return pending
    }
}

extension Store {
    /// Keeps envelopes until the relay accepts them (`LocalTable.outbox`).
    func addToOutbox(_ envelopes: [(Topic, [UInt8])]) throws(KeepsakeError) {
        for (topic, envelope) in envelopes {
            let key = "\(topic.name).\(Hex.encode(Blake2b.hash(envelope)))"
            try setRecord(OutboxEntry(topic: topic.name, envelope: envelope), for: key, in: .outbox)
        }
    }

    func outbox() throws(KeepsakeError) -> [(key: String, topic: Topic, envelope: [UInt8])] {
        try records(in: .outbox).compactMap { entry in Topic(name: entry.record.topic).map { (entry.key, $0, entry.record.envelope) } }
    }

    func removeFromOutbox(_ key: String) throws(KeepsakeError) {
        try setRecord(nil, for: key, in: .outbox)
    }

    /// Remembers which message each sent envelope carried and for whom, so a
    /// recipient that could not decrypt it can ask for it again (`LocalTable.sentEnvelopes`).
    func rememberSent(_ sent: [(digest: [UInt8], message: MessageID, recipient: InstallationID)]) throws(KeepsakeError) {
        for entry in sent {
            try setRecord(SentEnvelope(message: entry.message, recipient: entry.recipient), for: Hex.encode(entry.digest), in: .sentEnvelopes)
        }
    }

    /// The message an envelope this store sent carried, and the installation it was for.
    func sentMessage(envelope digest: [UInt8]) throws(KeepsakeError) -> (message: MessageID, recipient: InstallationID)? {
        try record(Hex.encode(digest), in: .sentEnvelopes).map { ($0.message, $0.recipient) }
    }
}

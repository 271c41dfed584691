import Foundation
import Testing
import KeepsakeRelay
@testable import KeepsakeMessaging
@testable import KeepsakeStore
import KeepsakeCrypto
import KeepsakeRelayClient
import KeepsakeTransport
import KeepsakeWire

/// End to end over a relay process on loopback: two accounts, three installations.
@Suite struct DirectMessagingTests {
    let relay: InMemoryRelay
    let scratch = Scratch()
    let alice: AccountKey, bob: AccountKey
    let alicePhone: Device, aliceLaptop: Device, bobPhone: Device

    init() async throws {
        relay = try InMemoryRelay()
        alice = try AccountKey.generate()
        bob = try AccountKey.generate()
        var options = Messenger.Options()
        options.prekeyBatch = 5
        options.replenishBelow = 2
        alicePhone = try Device("alice-phone", in: scratch, relay: relay, options: options)
        aliceLaptop = try Device("alice-laptop", in: scratch, relay: relay, options: options)
        bobPhone = try Device("bob-phone", in: scratch, relay: relay, options: options)
        try await alicePhone.messenger.join(alice, role: "phone")
        try await aliceLaptop.messenger.join(alice, role: "laptop")
        try await bobPhone.messenger.join(bob, role: "phone")
    }

    /// The envelopes on an installation's inbox topic, as published.
    func inbox(of device: Device) async throws -> [[UInt8]] {
        let me = try #require(try device.store.membership())
        return try await relay.client.items(on: .message(installation: me.installation.bytes), after: 0, limit: 1_000).items.map(\.data)
    }

    func receive(_ envelope: [UInt8], at device: Device) async throws -> Messenger.Received {
        let me = try #require(try device.store.membership())
        var refreshed: Set<String> = []
        var sender: KnownInstallation?
        return try await device.messenger.receive(envelope, as: me, refreshed: &refreshed, sender: &sender)
    }

    @Test func messagesFanOutToEveryInstallationOfBothAccountsBothWays() async throws {
        let hello = try await alicePhone.messenger.send("hi bob", toAccount: bob.id)
        #expect(hello.envelopes == 2, "bob's phone and alice's laptop")
        #expect(try await bobPhone.messenger.sync().received == [hello.message])
        #expect(try await aliceLaptop.messenger.sync().received == [hello.message])
        #expect(try bobPhone.texts(in: hello.conversation) == ["hi bob"])
        #expect(try aliceLaptop.store.isWritable(#require(try aliceLaptop.store.conversation(hello.conversation))))

        let reply = try await bobPhone.messenger.send("hi alice", to: hello.conversation)
        #expect(reply.envelopes == 2)
        #expect(try await alicePhone.messenger.sync().received == [reply.message])
        #expect(try await aliceLaptop.messenger.sync().received == [reply.message])
        #expect(try alicePhone.texts(in: hello.conversation) == ["hi bob", "hi alice"])
        #expect(try aliceLaptop.texts(in: hello.conversation) == ["hi bob", "hi alice"])
        #expect(try alicePhone.store.members(of: hello.conversation) == [alice.id, bob.id].sorted())

        let again = try await bobPhone.messenger.sync()
        #expect(again.received.isEmpty && again.rejected.isEmpty, "nothing new, nothing pulled twice")
    }

    @Test func simultaneousFirstMessagesLandInOneConversation() async throws {
        let fromAlice = try await alicePhone.messenger.send("from alice", toAccount: bob.id)
        let fromBob = try await bobPhone.messenger.send("from bob", toAccount: alice.id)
        #expect(fromAlice.conversation == fromBob.conversation, "dm:<lower>:<higher> names one conversation")
        _ = try await alicePhone.messenger.sync()
        _ = try await bobPhone.messenger.sync()
        #expect(Set(try alicePhone.texts(in: fromAlice.conversation)) == ["from alice", "from bob"])
        #expect(Set(try bobPhone.texts(in: fromAlice.conversation)) == ["from alice", "from bob"])
        let next = try await alicePhone.messenger.send("one session wins", to: fromAlice.conversation)
        #expect(try await bobPhone.messenger.sync().received == [next.message])
    }

    @Test func outOfOrderAndDuplicatedDeliveryGiveEachMessageOnce() async throws {
        var sent: [MessageID] = []
        for text in ["one", "two", "three"] { sent.append(try await alicePhone.messenger.send(text, toAccount: bob.id).message) }
        let envelopes = try await inbox(of: bobPhone)
        #expect(envelopes.count == 3)
        for index in [2, 0, 1] {
            #expect(try await receive(envelopes[index], at: bobPhone) == .message(sent[index]))
        }
        for envelope in envelopes {
            await #expect(throws: EnvelopeRejection.replayed) { try await receive(envelope, at: bobPhone) }
        }
        let cursor = try await relay.client.publish(envelopes[0], to: .message(installation: try #require(try bobPhone.store.membership()).installation.bytes))
        #expect(cursor == 1 || cursor > 0, "republishing the same envelope finds it again")
        let report = try await bobPhone.messenger.sync()
        #expect(report.received.isEmpty && report.duplicates == 3, "a sync over already received envelopes only counts duplicates")
        let conversation = try #require(try bobPhone.store.conversations().first).id
        #expect(try bobPhone.texts(in: conversation) == ["one", "two", "three"])
    }

    @Test func tamperedAndMisSignedEnvelopesAreRejectedAndLeaveNothing() async throws {
        let first = try await alicePhone.messenger.send("first", toAccount: bob.id)
        let envelope = try #require(try await inbox(of: bobPhone).first)
        _ = try await bobPhone.messenger.installations(of: alice.id)
        let before = try bobPhone.store.cursor()

        var tampered = try Envelope(serializedBytes: envelope)
        var message = try SessionMessage(serializedBytes: tampered.ciphertext)
        message.ciphertext[message.ciphertext.count - 1] ^= 1
        tampered.ciphertext = Data(try message.wireBytes())
        await #expect(throws: EnvelopeRejection.undecryptable) { try await receive(try tampered.wireBytes(), at: bobPhone) }

        var otherHeader = try Envelope(serializedBytes: envelope)
        var header = try EnvelopeHeader(serializedBytes: otherHeader.header)
        header.sentNs += 1
        otherHeader.header = Data(try header.wireBytes())
        await #expect(throws: EnvelopeRejection.undecryptable, "the header is authenticated by the ratchet too") {
            try await receive(try otherHeader.wireBytes(), at: bobPhone)
        }
        await #expect(throws: EnvelopeRejection.malformed("envelope")) { try await receive([0xFF, 0x01], at: bobPhone) }
        await #expect(throws: EnvelopeRejection.unsealFailed, "sealed to bob, so alice's laptop cannot open it") {
            try await receive(envelope, at: aliceLaptop)
        }
        #expect(try bobPhone.store.cursor() == before, "refusals log nothing")
        #expect(try await receive(envelope, at: bobPhone) == .message(first.message), "the genuine envelope still opens: the session was untouched")

        // A header signed by another key than the sender installation's.
        let me = try #require(try alicePhone.store.membership())
        let target = try #require(try alicePhone.store.knownInstallations(of: bob.id).first)
        var session = try #require(try alicePhone.store.sessions(with: target.id).first)
        let forged = try Messenger.seal(
            Content.with { $0.text = .with { $0.messageID = Data(MessageID.generate().bytes); $0.text = "forged" } },
            convo: .direct(between: alice.id, and: bob.id), session: &session, from: me, signing: SigningKey.generate(), to: target)
        let beforeForged = try bobPhone.store.cursor()
        await #expect(throws: EnvelopeRejection.badHeaderSignature) { try await receive(forged, at: bobPhone) }

        // A payload of a version this installation does not read.
        let signing = try alicePhone.store.signingKey().1
        let newer = try Messenger.seal(
            Content.with { $0.text = .with { $0.messageID = Data(MessageID.generate().bytes); $0.text = "from the future" } },
            convo: .direct(between: alice.id, and: bob.id), session: &session, from: me, signing: signing, to: target, payloadVersion: 2)
        await #expect(throws: EnvelopeRejection.malformed("payload version 2; this installation reads version 1")) {
            try await receive(newer, at: bobPhone)
        }
        #expect(try bobPhone.store.cursor() == beforeForged)
    }

    @Test func aRevokedInstallationsMessagesAreRefused() async throws {
        let hello = try await aliceLaptop.messenger.send("before revocation", toAccount: bob.id)
        #expect(try await bobPhone.messenger.sync().received == [hello.message])
        let laptop = try #require(try aliceLaptop.store.membership()).installation
        try await alicePhone.messenger.revoke(laptop, with: alice)
        #expect(try await alicePhone.messenger.installations(of: alice.id).first { $0.id == laptop }?.revokedAt != nil)

        let after = try await aliceLaptop.messenger.send("after revocation", to: hello.conversation)
        #expect(after.envelopes >= 1)
        let report = try await bobPhone.messenger.sync()
        #expect(report.received.isEmpty)
        #expect(report.rejected.map(\.reason) == [.senderRevoked])
        #expect(try bobPhone.texts(in: hello.conversation) == ["before revocation"])

        // Backdating does not help: the relay's receive time is after the revocation too.
        let laptopMe = try #require(try aliceLaptop.store.membership())
        let bobTarget = try #require(try aliceLaptop.store.knownInstallations(of: bob.id).first)
        var session = try #require(try aliceLaptop.store.sessions(with: bobTarget.id).first)
        let backdated = try Messenger.seal(
            Content.with { $0.text = .with { $0.messageID = Data(MessageID.generate().bytes); $0.text = "from the past" } },
            convo: .direct(between: alice.id, and: bob.id), session: &session, from: laptopMe, signing: aliceLaptop.store.signingKey().1,
            to: bobTarget, at: Date().addingTimeInterval(-3_600))
        _ = try await relay.client.publish(backdated, to: .message(installation: bobTarget.id.bytes))
        #expect(try await bobPhone.messenger.sync().rejected.map(\.reason) == [.senderRevoked])

        #expect(try await alicePhone.messenger.sync().received == [hello.message], "the laptop's message from before, fanned out to the phone")
        let fromPhone = try await alicePhone.messenger.send("phone still works", to: hello.conversation)
        #expect(fromPhone.envelopes == 1, "bob only: the revoked laptop gets nothing")
        #expect(try await bobPhone.messenger.sync().received == [fromPhone.message])
    }

    @Test func aOneTimePrekeyIsServedOnceThenTheFallback() async throws {
        let installation = try #require(try bobPhone.store.membership()).installation
        let bundle = try SignedContactBundle(serializedBytes: try #require(try bobPhone.store.membership()).signedBundle).verified()
        var served: [UInt32] = []
        var fallbacks: [UInt32] = []
        // Three claimants, each within the relay's limit of claims of one installation per hour.
        let claimants = [alicePhone.store, aliceLaptop.store, bobPhone.store]
        var claims = 0
        func claim() async throws -> ClaimedPrekey? {
            claims += 1
            return try await relay.client.claimPrekey(of: installation.bytes, as: claimants[claims % claimants.count])
        }
        for _ in 0..<7 {
            let claimed = try #require(try await claim())
            let prekey = try SignedPrekey(serializedBytes: claimed.data).verified(by: bundle)
            #expect(prekey.fallback == claimed.fallback)
            if claimed.fallback { fallbacks.append(prekey.prekeyID) } else { served.append(prekey.prekeyID) }
        }
        #expect(served.count == 5 && Set(served).count == 5, "each one-time prekey once")
        #expect(fallbacks.count == 2 && Set(fallbacks).count == 1, "then the fallback, again and again")
        let stock = try await relay.client.prekeyStock(of: bobPhone.store)
        #expect(stock == PrekeyStock(oneTimeRemaining: 0, oneTimeServedLastHour: 5, fallbackServedLastHour: 2), "bob sees how fast his prekeys went")

        // A sync notices the empty stock and uploads a new batch, never one already served.
        _ = try await bobPhone.messenger.sync()
        var replenished: [UInt32] = []
        while let claimed = try await claim(), !claimed.fallback {
            replenished.append(try SignedPrekey(serializedBytes: claimed.data).verified(by: bundle).prekeyID)
        }
        #expect(replenished.count == 5 && Set(replenished).isDisjoint(with: served))
    }

    @Test func usedOneTimePrekeysAndSupersededSessionStatesAreErasedFromTheLog() async throws {
        let hello = try await alicePhone.messenger.send("hello", toAccount: bob.id)
        _ = try await bobPhone.messenger.sync()
        for round in 0..<3 {
            _ = try await bobPhone.messenger.send("b\(round)", to: hello.conversation)
            _ = try await alicePhone.messenger.sync()
            _ = try await alicePhone.messenger.send("a\(round)", to: hello.conversation)
            _ = try await bobPhone.messenger.sync()
        }
        let events = try bobPhone.store.events(after: Cursor(log: bobPhone.store.logID, sequence: 0), limit: 10_000)
        let steps = events.filter { $0.payload.kind == UInt32(MessagingEventKind.ratchetStep.rawValue) }
        let readable = steps.filter { if case .ratchetStep? = MessagingEvent($0.payload) { true } else { false } }
        #expect(steps.count > 4, "every session change is a ratchet-step event")
        #expect(readable.count == Set(readable.compactMap { if case let .ratchetStep(s)? = MessagingEvent($0.payload) { s.streamID } else { nil } }).count,
                "only each session's newest state is readable; older ones are erased")
        let used = events.compactMap { if case let .prekeyUsed(u)? = MessagingEvent($0.payload) { u.prekeyID } else { nil } }
        #expect(used.count == 1)
        #expect(try bobPhone.store.prekeySecret(installation: try #require(try bobPhone.store.membership()).installation, id: used[0]) == nil)

        let old = try await inbox(of: bobPhone)
        try bobPhone.store.rebuildProjections()
        for envelope in old {
            await #expect(throws: EnvelopeRejection.replayed, "no state that could open an old envelope again survives") {
                try await receive(envelope, at: bobPhone)
            }
        }
        let after = try await alicePhone.messenger.send("after rebuild", to: hello.conversation)
        #expect(try await bobPhone.messenger.sync().received == [after.message], "the rebuilt store continues its sessions")
    }
}

extension DirectMessagingTests {
    @Test func anEnvelopeWithoutItsSessionIsSentAgainOnANewSession() async throws {
        let hello = try await alicePhone.messenger.send("hello", toAccount: bob.id)
        _ = try await bobPhone.messenger.sync()
        _ = try await bobPhone.messenger.send("hi", to: hello.conversation)
        _ = try await alicePhone.messenger.sync()

        // Bob's side of the session is gone (as when it was closed for idleness while Alice kept it).
        let alicePhoneID = try #require(try alicePhone.store.membership()).installation
        for session in try bobPhone.store.sessions(with: alicePhoneID) {
            try bobPhone.store.append(contentsOf: [Messenger.closing(session.streamID, because: "test")])
        }
        let lost = try await alicePhone.messenger.send("did you get this?", to: hello.conversation)

        let first = try await bobPhone.messenger.sync()
        #expect(first.rejected.map(\.reason) == [.noSession])
        #expect(first.retransmissionsRequested == 1)
        let answer = try await alicePhone.messenger.sync()
        #expect(answer.resent == 1)
        let second = try await bobPhone.messenger.sync()
        #expect(second.received == [lost.message], "the message arrives on the new session")
        #expect(try bobPhone.texts(in: hello.conversation) == ["hello", "hi", "did you get this?"])
        #expect(try await bobPhone.messenger.sync().retransmissionsRequested == 0, "asked once per envelope")

        let after = try await alicePhone.messenger.send("and after", to: hello.conversation)
        #expect(try await bobPhone.messenger.sync().received == [after.message], "the new session carries on")
    }
}

extension DirectMessagingTests {
    @Test func aLiveInboxDeliversMessagesAsTheyArrive() async throws {
        let first = try await alicePhone.messenger.send("before listening", toAccount: bob.id)
        var reports = bobPhone.messenger.live().makeAsyncIterator()
        #expect(try await reports.next()?.received == [first.message], "what waited is synced first")
        var expected: [MessageID] = []
        for text in ["live one", "live two"] {
            expected.append(try await alicePhone.messenger.send(text, to: first.conversation).message)
        }
        var received: [MessageID] = []
        while received.count < expected.count, let report = try await reports.next() { received += report.received }
        #expect(received == expected)
    }
}

@Suite struct SessionLifetimeTests {
    @Test func aLosingSessionIsClosedOnceIdleAndMessagesStillFlow() async throws {
        let relay = try InMemoryRelay()
        let scratch = Scratch()
        var options = Messenger.Options()
        options.supersededSessionIdleLimit = .zero
        let alice = try AccountKey.generate(), bob = try AccountKey.generate()
        let a = try Device("alice", in: scratch, relay: relay, options: options)
        let b = try Device("bob", in: scratch, relay: relay, options: options)
        try await a.messenger.join(alice)
        try await b.messenger.join(bob)
        let bobInstallation = try #require(try b.store.membership()).installation
        let aliceInstallation = try #require(try a.store.membership()).installation

        // Both start a session at once: two sessions between the same installations.
        let fromAlice = try await a.messenger.send("from alice", toAccount: bob.id)
        _ = try await b.messenger.send("from bob", toAccount: alice.id)
        #expect(try a.store.sessions(with: bobInstallation).count == 1)
        _ = try await a.messenger.sync()
        _ = try await b.messenger.sync()
        #expect(try a.store.sessions(with: bobInstallation).count == 1, "the older session, idle past the limit, was closed")
        #expect(try b.store.sessions(with: aliceInstallation).count == 1)

        for round in 0..<2 {
            let ping = try await a.messenger.send("ping \(round)", to: fromAlice.conversation)
            let report = try await b.messenger.sync()
            let pong = try await b.messenger.send("pong \(round)", to: fromAlice.conversation)
            let back = try await a.messenger.sync()
            // A message on a session the other side closed is recovered by a retransmission.
            if !report.received.contains(ping.message) { #expect(try await b.messenger.sync().received.contains(ping.message)) }
            if !back.received.contains(pong.message) { #expect(try await a.messenger.sync().received.contains(pong.message)) }
        }
        #expect(try b.texts(in: fromAlice.conversation).filter { $0.hasPrefix("ping") } == ["ping 0", "ping 1"])
    }
}

extension DirectMessagingTests {
    @Test func eachValidationStepRefusesWithItsOwnError() async throws {
        let hello = try await alicePhone.messenger.send("hello", toAccount: bob.id)
        _ = try await bobPhone.messenger.sync()
        let me = try #require(try alicePhone.store.membership())
        let (_, signing) = try alicePhone.store.signingKey()
        let bobTarget = try #require(try alicePhone.store.knownInstallations(of: bob.id).first)
        let dm = ConvoID.direct(between: alice.id, and: bob.id)
        let text = Content.with { $0.text = .with { $0.messageID = Data(MessageID.generate().bytes); $0.text = "crafted" } }
        /// An envelope in Alice's current session, which is not saved (each one reuses the same message number).
        func craft(_ convo: ConvoID, to target: KnownInstallation, from sender: Membership, session: Session? = nil) throws -> [UInt8] {
            var session = try session ?? #require(try alicePhone.store.sessions(with: bobTarget.id).first)
            return try Messenger.seal(text, convo: convo, session: &session, from: sender, signing: signing, to: target)
        }
        let before = try bobPhone.store.cursor()

        let elsewhere = KnownInstallation(id: .generate(), account: bob.id, signingKey: bobTarget.signingKey,
                                          identityKey: bobTarget.identityKey, createdAt: Date(), role: "", revokedAt: nil)
        await #expect(throws: EnvelopeRejection.notForThisInstallation) { try await receive(try craft(dm, to: elsewhere, from: me), at: bobPhone) }

        let ghost = Membership(account: me.account, installation: .generate(), identityKey: me.identityKey,
                               signedBundle: me.signedBundle, sequence: me.sequence)
        await #expect(throws: EnvelopeRejection.unknownSender) { try await receive(try craft(dm, to: bobTarget, from: ghost), at: bobPhone) }

        let carol = try AccountKey.generate()
        await #expect(throws: EnvelopeRejection.notAMember, "a direct conversation of bob and carol, from alice") {
            try await receive(try craft(.direct(between: bob.id, and: carol.id), to: bobTarget, from: me), at: bobPhone)
        }

        let prekey = try SignedPrekey(serializedBytes: try #require(try await relay.client.claimPrekey(of: bobTarget.id.bytes, as: alicePhone.store)).data)
            .verified(by: ContactBundle.with { $0.installationID = Data(bobTarget.id.bytes); $0.signingKey = Data(bobTarget.signingKey) })
        let impostor = try Messenger.outboundSession(to: bobTarget, prekey: prekey, identity: KeyAgreementKey.generate())
        await #expect(throws: EnvelopeRejection.identityKeyMismatch, "a prekey message whose identity key is not the sender's") {
            try await receive(try craft(dm, to: bobTarget, from: me, session: impostor), at: bobPhone)
        }
        var missing = prekey
        missing.prekeyID = 999_999
        let identity = try alicePhone.store.identityKey(of: me)
        let unknownPrekey = try Messenger.outboundSession(to: bobTarget, prekey: missing, identity: identity)
        await #expect(throws: EnvelopeRejection.prekeyUnavailable(999_999)) {
            try await receive(try craft(dm, to: bobTarget, from: me, session: unknownPrekey), at: bobPhone)
        }
        #expect(try bobPhone.store.cursor() == before, "no refusal logged anything")

        let genuine = try await alicePhone.messenger.send("still fine", to: hello.conversation)
        #expect(try await bobPhone.messenger.sync().received == [genuine.message])
    }
}

@Suite struct PrekeyRotationTests {
    @Test func anOldFallbackIsReplacedAndTheOneBeforeItErased() async throws {
        var limits = Relay.Limits()
        limits.prekeyClaimsPerPair = 100
        let relay = try InMemoryRelay(limits: limits)
        let scratch = Scratch()
        var options = Messenger.Options()
        options.prekeyBatch = 2
        options.replenishBelow = 0
        options.fallbackLifetime = .zero
        let device = try Device("rotating", in: scratch, relay: relay, options: options)
        let me = try await device.messenger.join(AccountKey.generate())
        let bundle = try SignedContactBundle(serializedBytes: me.signedBundle).verified()
        func servedFallback() async throws -> UInt32 {
            while true {
                let claimed = try #require(try await relay.client.claimPrekey(of: me.installation.bytes, as: device.store))
                if claimed.fallback { return try SignedPrekey(serializedBytes: claimed.data).verified(by: bundle).prekeyID }
            }
        }
        let first = try await servedFallback()
        _ = try await device.messenger.sync()
        let second = try await servedFallback()
        #expect(second > first, "the relay serves the newer fallback")
        #expect(try device.store.prekeySecret(installation: me.installation, id: first) != nil, "the previous one stays for messages in flight")
        _ = try await device.messenger.sync()
        #expect(try await servedFallback() > second)
        #expect(try device.store.prekeySecret(installation: me.installation, id: first) == nil, "the one before is erased")
    }
}

extension DirectMessagingTests {
    /// Every reason an envelope is `malformed`, each produced by a crafted
    /// envelope in a real session; none of them logs anything.
    @Test func eachMalformedReasonIsRefusedWithItsReason() async throws {
        _ = try await alicePhone.messenger.send("hello", toAccount: bob.id)
        _ = try await bobPhone.messenger.sync()
        _ = try await aliceLaptop.messenger.sync()
        let me = try #require(try alicePhone.store.membership())
        let (_, signing) = try alicePhone.store.signingKey()
        let bobTarget = try #require(try alicePhone.store.knownInstallations(of: bob.id).first)
        let dm = ConvoID.direct(between: alice.id, and: bob.id)
        func text(id: [UInt8] = MessageID.generate().bytes) -> Content {
            Content.with { $0.text = .with { $0.messageID = Data(id); $0.text = "crafted" } }
        }
        /// An envelope in Alice's current session (not saved: each reuses one message number).
        func craft(_ content: Content, _ convo: ConvoID?, to target: KnownInstallation? = nil) throws -> [UInt8] {
            let target = target ?? bobTarget
            var session = try #require(try alicePhone.store.sessions(with: target.id).first)
            return try Messenger.seal(content, convo: convo, session: &session, from: me, signing: signing, to: target)
        }
        /// The same envelope with its session message changed.
        func altered(_ envelope: [UInt8], _ change: (inout SessionMessage) -> Void) throws -> [UInt8] {
            var outer = try Envelope(serializedBytes: envelope)
            var message = try SessionMessage(serializedBytes: outer.ciphertext)
            change(&message)
            outer.ciphertext = Data(try message.wireBytes())
            return try outer.wireBytes()
        }
        let before = try bobPhone.store.cursor()
        let (lower, higher) = alice.id < bob.id ? (alice.id, bob.id) : (bob.id, alice.id)

        await #expect(throws: EnvelopeRejection.malformed("conversation ID '\("dm:\(higher):\(lower)".prefix(80))'"), "the higher account first") {
            try await receive(try craft(text(), .direct(higher, lower)), at: bobPhone)
        }
        await #expect(throws: EnvelopeRejection.malformed("message ID")) {
            try await receive(try craft(text(id: [1, 2, 3]), dm), at: bobPhone)
        }
        await #expect(throws: EnvelopeRejection.malformed("empty content")) {
            try await receive(try craft(Content(), dm), at: bobPhone)
        }
        let retransmit = Content.with { $0.retransmitRequest = .with { $0.envelopeDigest = Data(Random.bytes(32)) } }
        await #expect(throws: EnvelopeRejection.malformed("session-level content belongs to no conversation")) {
            try await receive(try craft(retransmit, dm), at: bobPhone)
        }
        let request = Content.with { $0.historyRequest = .with { $0.requestID = Data([1, 2, 3]) } }
        let laptopID = try #require(try aliceLaptop.store.membership()).installation
        let laptop = try #require(try alicePhone.store.knownInstallations(of: alice.id).first { $0.id == laptopID })
        let laptopBefore = try aliceLaptop.store.cursor()
        await #expect(throws: EnvelopeRejection.malformed("history request"), "from an installation of the same account") {
            try await receive(try craft(request, nil, to: laptop), at: aliceLaptop)
        }
        #expect(try aliceLaptop.store.cursor() == laptopBefore)
        let genuine = try craft(text(), dm)
        await #expect(throws: EnvelopeRejection.malformed("ratchet header")) {
            try await receive(try altered(genuine) { $0.ratchetHeader = Data([1, 2, 3]) }, at: bobPhone)
        }
        await #expect(throws: EnvelopeRejection.malformed("the prekey flag disagrees with the message"), "alice's session still sends its setup") {
            try await receive(try altered(genuine) { $0.clearSetup() }, at: bobPhone)
        }
        await #expect(throws: EnvelopeRejection.malformed("envelope")) { try await receive([0xFF, 0x01], at: bobPhone) }
        #expect(try bobPhone.store.cursor() == before, "no refusal logged anything")
    }
}

extension DirectMessagingTests {
    /// A text whose envelope waited in the outbox past `outboxLifetime` (the relay
    /// would refuse its `sent_ns`) is sealed again with a new send time and
    /// arrives once; another stale envelope is dropped and counted.
    @Test func anEnvelopeThatWaitedTooLongIsSealedAgainNotLeftPending() async throws {
        let hello = try await alicePhone.messenger.send("hello", toAccount: bob.id)
        _ = try await bobPhone.messenger.sync()
        // "lost" is logged as sent; bob's inbox skips its envelope, as if it never reached the relay.
        let lost = try await alicePhone.messenger.send("lost", to: hello.conversation)
        let bobInbox = Topic.message(installation: try #require(try bobPhone.store.membership()).installation.bytes)
        let page = try await relay.client.items(on: bobInbox, after: 0, limit: 100)
        try bobPhone.store.setRecord(page.next, for: bobInbox.name, in: .relayCursors)

        // Its envelope, sealed 31 days ago, still waits in alice's outbox, next to a stale commit-like envelope.
        let me = try #require(try alicePhone.store.membership())
        let bobTarget = try #require(try alicePhone.store.knownInstallations(of: bob.id).first)
        var session = try #require(try alicePhone.store.sessions(with: bobTarget.id).first)
        let monthAgo = Date().addingTimeInterval(-31 * 24 * 3600)
        let text = Content.with { $0.text = .with { $0.messageID = Data(lost.message.bytes); $0.text = "lost" } }
        let stale = try Messenger.seal(text, convo: .direct(between: alice.id, and: bob.id), session: &session, from: me,
                                       signing: alicePhone.store.signingKey().1, to: bobTarget, at: monthAgo)
        let request = Content.with { $0.retransmitRequest = .with { $0.envelopeDigest = Data(Random.bytes(32)) } }
        let staleRequest = try Messenger.seal(request, convo: nil, session: &session, from: me,
                                              signing: alicePhone.store.signingKey().1, to: bobTarget, at: monthAgo)
        try alicePhone.store.addToOutbox([(bobInbox, stale), (bobInbox, staleRequest)])
        try alicePhone.store.rememberSent([(Blake2b.hash(stale), lost.message, bobTarget.id)])

        let report = try await alicePhone.messenger.sync()
        #expect(report.resealed == 1 && report.expiredEnvelopes == 1)
        #expect(try alicePhone.store.outbox().isEmpty, "nothing is left pending forever")
        #expect(try await bobPhone.messenger.sync().received == [lost.message], "the text arrives, sent again")
        #expect(try bobPhone.texts(in: hello.conversation) == ["hello", "lost"])
    }
}

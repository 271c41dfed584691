import Foundation
import Testing
import KeepsakeRelay
@testable import KeepsakeMessaging
@testable import KeepsakeStore
import KeepsakeCrypto
import KeepsakeWire

@Suite struct GroupMessagingTests {
    let relay: InMemoryRelay
    let scratch = Scratch()
    let alice: AccountKey, bob: AccountKey, carol: AccountKey
    let alicePhone: Device, aliceLaptop: Device, bobPhone: Device, carolPhone: Device

    init() async throws {
        relay = try InMemoryRelay()
        alice = try AccountKey.generate()
        bob = try AccountKey.generate()
        carol = try AccountKey.generate()
        alicePhone = try Device("alice-phone", in: scratch, relay: relay)
        aliceLaptop = try Device("alice-laptop", in: scratch, relay: relay)
        bobPhone = try Device("bob-phone", in: scratch, relay: relay)
        carolPhone = try Device("carol-phone", in: scratch, relay: relay)
        try await alicePhone.messenger.join(alice)
        try await aliceLaptop.messenger.join(alice)
        try await bobPhone.messenger.join(bob)
        try await carolPhone.messenger.join(carol)
    }

    @Test func membersComeAndGoByCommitsAppliedInEpochOrder() async throws {
        let group = try await alicePhone.messenger.createGroup(title: "Trip", members: [bob.id])
        _ = try await bobPhone.messenger.sync()
        _ = try await aliceLaptop.messenger.sync()
        #expect(try bobPhone.store.conversation(group)?.title == "Trip")
        #expect(try bobPhone.store.members(of: group) == [alice.id, bob.id].sorted())
        #expect(try aliceLaptop.store.members(of: group) == [alice.id, bob.id].sorted())

        #expect(try await alicePhone.messenger.addMembers([carol.id], to: group) == 1)
        #expect(try await carolPhone.messenger.sync().commits == 1, "carol learns the group from the commit that adds her")
        #expect(try await bobPhone.messenger.sync().commits == 1)
        for device in [alicePhone, bobPhone, carolPhone] {
            #expect(try device.store.members(of: group) == [alice.id, bob.id, carol.id].sorted())
            #expect(try device.store.conversation(group)?.epoch == 1)
        }

        let fromCarol = try await carolPhone.messenger.send("hello all", to: group)
        #expect(fromCarol.envelopes == 3, "alice's two installations and bob's")
        #expect(try await bobPhone.messenger.sync().received == [fromCarol.message])
        #expect(try await alicePhone.messenger.sync().received == [fromCarol.message])

        #expect(try await bobPhone.messenger.removeMembers([carol.id], from: group) == 2)
        _ = try await carolPhone.messenger.sync()
        _ = try await alicePhone.messenger.sync()
        #expect(try carolPhone.store.members(of: group) == [alice.id, bob.id].sorted(), "the removed member is told")
        await #expect(throws: MessagingError.notAMember(group)) { try await carolPhone.messenger.send("still here?", to: group) }
        let afterRemoval = try await alicePhone.messenger.send("just us", to: group)
        #expect(afterRemoval.envelopes == 2, "bob and alice's laptop; carol gets nothing")
        #expect(try await carolPhone.messenger.sync().received.isEmpty)

        _ = try await aliceLaptop.messenger.sync()
        #expect(try aliceLaptop.store.conversation(group)?.epoch == 2)
        #expect(try aliceLaptop.texts(in: group) == ["hello all", "just us"])
    }

    /// IDs the relay sees (installations in topic names, groups through their
    /// commit topics) carry no creation time, unlike time-ordered message IDs.
    @Test func idsTheRelaySeesSayNothingOfWhenTheyWereMade() async throws {
        let now = MessageID.generate()
        let group = try await alicePhone.messenger.createGroup(title: "Secret", members: [bob.id])
        let installation = try #require(try alicePhone.store.installation()).id
        for id in [group.bytes, installation.bytes] {
            #expect(Array(id.prefix(4)) != Array(now.bytes.prefix(4)), "the first bytes are not the creation time in milliseconds")
        }
    }

    @Test func aSecondCommitForTheSameEpochIsRefusedEverywhere() async throws {
        let group = try await alicePhone.messenger.createGroup(title: "Race", members: [bob.id])
        _ = try await bobPhone.messenger.sync()
        try await alicePhone.messenger.addMembers([carol.id], to: group)

        let before = try bobPhone.store.cursor()
        await #expect(throws: MessagingError.epochTaken(1), "bob has not seen alice's commit; the relay refuses his claim") {
            try await bobPhone.messenger.removeMembers([alice.id], from: group)
        }
        #expect(try bobPhone.store.cursor() == before, "nothing logged")
        _ = try await bobPhone.messenger.sync()
        #expect(try bobPhone.store.members(of: group) == [alice.id, bob.id, carol.id].sorted())

        // A commit that holds no claim, delivered anyway (as a misbehaving member would).
        let me = try #require(try bobPhone.store.membership())
        let (_, signing) = try bobPhone.store.signingKey()
        let rogue = try Commit.signing(CommitBody.with {
            $0.conversationID = Data(group.bytes)
            $0.epoch = 2
            $0.removed = [alice.id.rawValue]
            $0.committer = bob.id.rawValue
            $0.committerInstallation = Data(me.installation.bytes)
            $0.members = [bob.id.rawValue, carol.id.rawValue]
        }, with: signing)
        _ = try await bobPhone.messenger.send("a session with carol", to: group)
        _ = try await carolPhone.messenger.sync()
        let carolInstallation = try #require(try bobPhone.store.knownInstallations(of: carol.id).first)
        var session = try #require(try bobPhone.store.sessions(with: carolInstallation.id).first)
        let envelope = try Messenger.seal(Content.with { $0.commit = rogue }, convo: .group(group), session: &session,
                                          from: me, signing: signing, to: carolInstallation)
        let carolMe = try #require(try carolPhone.store.membership())
        var refreshed: Set<String> = []
        var sender: KnownInstallation?
        await #expect(throws: EnvelopeRejection.conversationMismatch("the commit does not hold the claim of epoch 2")) {
            try await carolPhone.messenger.receive(envelope, as: carolMe, refreshed: &refreshed, sender: &sender)
        }

        /// The rogue commit changed, signed by `key`, sealed to carol in bob's session.
        func variant(signedBy key: SigningKey? = nil, _ change: (inout CommitBody) -> Void) throws -> [UInt8] {
            var body = try CommitBody(serializedBytes: rogue.commit)
            change(&body)
            var session = try #require(try bobPhone.store.sessions(with: carolInstallation.id).first)
            let commit = try Commit.signing(body, with: key ?? signing)
            return try Messenger.seal(Content.with { $0.commit = commit }, convo: .group(group),
                                      session: &session, from: me, signing: signing, to: carolInstallation)
        }
        await #expect(throws: EnvelopeRejection.conversationMismatch("the commit is not signed by its sender installation")) {
            try await carolPhone.messenger.receive(try variant(signedBy: SigningKey.generate()) { _ in }, as: carolMe, refreshed: &refreshed, sender: &sender)
        }
        await #expect(throws: EnvelopeRejection.conversationMismatch("the commit names another group or committer than its envelope")) {
            try await carolPhone.messenger.receive(try variant { $0.committer = alice.id.rawValue }, as: carolMe, refreshed: &refreshed, sender: &sender)
        }
        await #expect(throws: EnvelopeRejection.conversationMismatch("epoch 1 belongs to another commit"), "carol applied alice's epoch 1") {
            try await carolPhone.messenger.receive(try variant { $0.epoch = 1 }, as: carolMe, refreshed: &refreshed, sender: &sender)
        }
        #expect(try carolPhone.store.members(of: group) == [alice.id, bob.id, carol.id].sorted())
    }

    @Test func aTextThatOvertakesItsGroupWaitsForIt() async throws {
        let group = try await alicePhone.messenger.createGroup(title: "Late", members: [bob.id, carol.id])
        _ = try await bobPhone.messenger.sync()
        let carolInbox = Topic.message(installation: try #require(try carolPhone.store.membership()).installation.bytes)
        let creation = try #require(try await relay.client.items(on: carolInbox, after: 0, limit: 10).items.first)
        let text = try await bobPhone.messenger.send("before the group reached carol", to: group)
        let carolMe = try #require(try carolPhone.store.membership())
        var refreshed: Set<String> = []
        var sender: KnownInstallation?
        let textEnvelope = try #require(try await relay.client.items(on: carolInbox, after: creation.cursor, limit: 10).items.first)
        await #expect(throws: Deferral.self) {
            try await carolPhone.messenger.receive(textEnvelope.data, as: carolMe, refreshed: &refreshed, sender: &sender)
        }
        let report = try await carolPhone.messenger.sync()
        #expect(report.received == [text.message] && report.rejected.isEmpty)
        #expect(try carolPhone.texts(in: group) == ["before the group reached carol"])
    }
}

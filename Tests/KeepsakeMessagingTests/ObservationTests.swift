import Foundation
import Keepsake
import KeepsakeRelay
import Testing

/// An app's conversation list, followed as an observation: it changes as
/// another task appends, as a restore lands and as a history sync arrives, in
/// order, without polling.
@Suite struct ObservationTests {
    @Test(.timeLimit(.minutes(5))) func aConversationListFollowsAppendsARestoreAndAHistorySync() async throws {
        let relay = try InMemoryRelay()
        let scratch = Scratch()
        let alice = try AccountKey.generate(), bob = try AccountKey.generate()
        let phone = try Device("alice-phone", in: scratch, relay: relay)
        let tablet = try Device("alice-tablet", in: scratch, relay: relay)
        let bobPhone = try Device("bob-phone", in: scratch, relay: relay)
        try await phone.messenger.join(alice)
        try await bobPhone.messenger.join(bob)
        let hello = try await phone.messenger.send("hello bob", toAccount: bob.id)
        try await tablet.messenger.join(alice)

        var list = tablet.store.observe(.conversations()).makeAsyncIterator()
        var unread = tablet.store.observe(.unreadCounts()).makeAsyncIterator()
        #expect(try await list.next()?.isEmpty == true, "the value now, first")
        #expect(try await unread.next() == [:])

        // Another task appends.
        let notes = ConversationStart(title: "Notes", members: [alice.id], createdBy: alice.id)
        let note = MessagePost(conversation: notes.id, sender: bob.id, text: "remember the milk")
        Task { try tablet.store.append(contentsOf: [EventDraft(.conversationCreated(notes)), EventDraft(.messageReceived(note))]) }
        #expect(try await list.next()?.map(\.id) == [notes.id])
        #expect(try await unread.next() == [notes.id: 1])

        // A restore lands.
        let source = try Store.open(at: scratch.path("laptop"))
        let trip = ConversationStart(title: "Trip", members: [alice.id], createdBy: alice.id)
        try source.append(.conversationCreated(trip), at: Date(timeIntervalSinceNow: 60))
        let key = BackupKey.raw(try SecureBytes(copying: [UInt8](repeating: 3, count: 32)))
        let backup = try source.backup(into: scratch.url, options: BackupOptions(kind: .soft, key: key))
        var restore = RestoreOptions(key: key)
        restore.force = true  // the laptop's store belongs to no account, the tablet's to alice's
        for try await _ in tablet.store.restoring(from: [backup.file], options: restore) {}
        #expect(try await list.next()?.map(\.id) == [trip.id, notes.id], "the restored conversation is the most recent")

        // A history sync arrives: the phone's conversation with bob.
        let request = try #require(try await tablet.messenger.requestHistory().first)
        #expect(try await phone.messenger.sync().historyRequests == [request.id])
        try await phone.messenger.approveHistoryRequest(request.id)
        #expect(try await tablet.messenger.sync().historyApplied == [request.id])
        #expect(try await list.next()?.map(\.id).contains(hello.conversation) == true)
    }

    @Test func performRunsReadsAndAppendsAwayFromTheCaller() async throws {
        let scratch = Scratch()
        let store = try Store.open(at: scratch.path("store"))
        let chat = ConversationStart(title: "Off the main actor", members: ["me"], createdBy: "me")
        try await store.perform { try $0.append(.conversationCreated(chat)) }
        #expect(try await store.perform { try $0.conversations().map(\.title) } == ["Off the main actor"])
    }
}

import Foundation
import Testing
@testable import KeepsakeStore
import KeepsakeMessaging

/// Apps write and read events as Swift values; what they write reads back
/// equal, and events that carry secrets show only their kind.
@Suite struct EventContentTests {
    @Test func everyKindAnAppWritesReadsBackEqual() throws {
        let dir = TemporaryDirectory()
        let store = try Store.open(at: dir.store)
        let chat = ConversationStart(kind: .group, title: "Trip", members: ["me", "alice"], createdBy: "me")
        let post = MessagePost(conversation: chat.id, sender: "alice", text: "hello", sentAt: Date(timeIntervalSince1970: 1_700_000_000))
        let contents: [EventContent] = [
            .conversationCreated(chat),
            .messageReceived(post),
            .messageSent(MessagePost(conversation: chat.id, sender: "me", text: "hi", sentAt: Date(timeIntervalSince1970: 1_700_000_001))),
            .messageEdited(MessageEdit(message: post.id, conversation: chat.id, text: "hello!", editedAt: Date(timeIntervalSince1970: 1_700_000_002))),
            .membershipCommitted(MembershipChange(conversation: chat.id, epoch: 1, added: ["bob"], committer: "me")),
            .conversationRead(ReadMarker(conversation: chat.id, upTo: post.id)),
            .contactAdded(ContactEntry(account: "alice", displayName: "Alice")),
            .contactRemoved("bob"),
            .consentChanged(ConsentChange(subject: .account("alice"), state: .allowed)),
            .consentChanged(ConsentChange(subject: .conversation(chat.id), state: .denied)),
            .preferenceChanged(PreferenceChange(key: "theme", value: Array("dark".utf8))),
            .messageDeleted(MessageDeletion(message: post.id, conversation: chat.id)),
        ]
        try store.append(contentsOf: contents.map { EventDraft($0) })
        let read = try store.events(after: .start(of: store.logID), limit: 100).map(\.content)
        #expect(read.count == contents.count)
        for (written, stored) in zip(contents, read) {
            switch written {
            case .messageReceived, .messageEdited: #expect(stored == .erased(written.kind), "the deletion erased the message's events")
            default: #expect(stored == written)
            }
        }
    }

    @Test func secretsAndUnknownKindsShowTheirKindOnly() throws {
        let dir = TemporaryDirectory()
        let store = try Store.open(at: dir.store, options: StoreOptions(extensions: [MessagingExtension()]))
        _ = try store.createInstallation()
        try store.append(ratchetStep(stream: "s", peer: "bob", step: 1, state: "secret state"))
        let contents = try store.events(after: .start(of: store.logID), limit: 10).map(\.content)
        #expect(contents == [.opaque(EventKind(rawValue: 13)), .opaque(EventKind(rawValue: 7))])
        #expect(contents.map(\.kind.description) == ["installation-keys", "ratchet-step"])
        #expect(throws: KeepsakeError.notAppendable(kindName: "erased(ratchet-step)")) {
            try store.append(.opaque(EventKind(rawValue: 7)))
        }
    }
}

import Foundation
import Testing
@testable import KeepsakeStore
import KeepsakeMessaging

/// `Store.exportCanonicalJSON` and `keepsake export --canonical-json`: the same
/// events give the same bytes in every store that holds them.
@Suite struct CanonicalExportTests {
    let f = BackupFixture()

    private func export(_ store: Store, _ elements: BackupElements = .soft) throws -> [String] {
        var lines: [String] = []
        try store.exportCanonicalJSON(elements: elements) { lines.append($0) }
        return lines
    }

    private func open(_ name: String) throws -> Store {
        try Store.open(at: f.dir.url.appendingPathComponent(name), options: StoreOptions(durability: .unsafeNoSync, extensions: [MessagingExtension()]))
    }

    /// A store restored from a full backup exports exactly as the store that wrote it.
    @Test func aRestoredStoreExportsAsItsSource() throws {
        try roundTrip(messages: 10_000)
    }

    /// The same at 100k messages: about two and a half minutes here, so `make test-large` runs it.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["KEEPSAKE_LARGE_TESTS"] == "1"))
    func aLargeRestoredStoreExportsAsItsSource() throws {
        try roundTrip(messages: 100_000)
    }

    private func roundTrip(messages: Int) throws {
        let source = try open("source-\(messages)")
        try source.appendGenerated(messages: messages, conversations: 300, batch: 5_000)
        for kind in [BackupKind.soft, .hard] {
            let backup = try source.backup(into: f.backups, options: f.options(kind, chunkSize: 1 << 20))
            let target = try open("target-\(messages)-\(kind)")
            _ = try target.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
            let exported = try export(target)
            #expect(exported.count > messages, "every message is an event line")
            #expect(exported == (try export(source)), "\(kind) backup of \(messages) messages")
        }
    }

    @Test func linesAreCanonicalAndSecretsStayOut() throws {
        let store = try open("store")
        _ = try store.createInstallation()
        let chat = ConversationStart(title: "Quotes \"and\" \\ slashes", members: ["me", "bob"], createdBy: "me")
        let hello = MessagePost(conversation: chat.id, sender: "bob", text: "line one\nline two\u{01} caf\u{E9} 🙂", sentAt: Date(timeIntervalSince1970: 1_800_000_000))
        let gone = MessagePost(conversation: chat.id, sender: "bob", text: "oops", sentAt: Date(timeIntervalSince1970: 1_800_000_001))
        try store.append(contentsOf: [
            EventDraft(.conversationCreated(chat), at: Date(timeIntervalSince1970: 1_800_000_000)),
            EventDraft(.messageReceived(hello), at: Date(timeIntervalSince1970: 1_800_000_000)),
            EventDraft(.messageReceived(gone), at: Date(timeIntervalSince1970: 1_800_000_001)),
            EventDraft(.messageDeleted(MessageDeletion(message: gone.id, conversation: chat.id)), at: Date(timeIntervalSince1970: 1_800_000_002)),
        ])
        let lines = try export(store, .hard)
        let log = store.logID.hex
        let keysTime = try #require(try store.event(at: 1)).time.millis
        #expect(lines[0] == #"{"elements":["conversations","messages","contacts","consent","preferences","sessions","identity","unknown-kinds"],"format":"keepsake-export-v1"}"#)
        #expect(lines[1] == #"{"id":"\#(log):1","kind":"installation-keys","opaque":true,"time":\#(keysTime)}"#)
        #expect(lines[2] == #"{"content":{"conversation":"\#(chat.id)","createdBy":"me","epoch":0,"kind":1,"members":["me","bob"],"title":"Quotes \"and\" \\ slashes"},"id":"\#(log):2","kind":"conversation-created","time":1800000000000}"#)
        #expect(lines[3] == #"{"content":{"contentType":"text/plain","conversation":"\#(chat.id)","message":"\#(hello.id)","sender":"bob","sentAt":1800000000000,"text":"line one\nline two\u0001 caf\#u{E9} 🙂"},"id":"\#(log):3","kind":"message-received","time":1800000000000}"#)
        #expect(lines[4] == #"{"erased":true,"id":"\#(log):4","kind":"message-received","time":1800000001000}"#)
        #expect(lines.count == 6)
    }

    @Test func theCommandWritesWhatTheLibraryWrites() throws {
        let store = try open("cli")
        try store.appendGenerated(messages: 50, conversations: 3)
        let expected = try export(store).joined(separator: "\n") + "\n"
        let path = ["--store", store.directory.path]
        let missing = try CLI.run(["export"] + path)
        #expect(missing.status != 0 && missing.error.contains("choose the output format: --canonical-json"))
        let written = try CLI.run(["export", "--canonical-json"] + path)
        #expect(written.status == 0, "\(written.error)")
        #expect(written.output == expected)
    }
}

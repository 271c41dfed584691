import Foundation
import Testing
import KeepsakeStore

// README-EXAMPLE-BEGIN
func readmeExample(directory: URL) throws -> [String] {
    let store = try Store.open(at: directory)  // creates the store if the folder is new

    let chat = ConversationStart(title: "Alice", members: ["me", "alice"], createdBy: "me")
    try store.append(.conversationCreated(chat))
    try store.append(.messageReceived(MessagePost(conversation: chat.id, sender: "alice", text: "lunch tomorrow?")))

    let conversation = try store.conversations()[0]  // most recent activity first
    let page = try store.messages(in: conversation.id, limit: 50)  // newest first; page.next for more
    print(conversation.title, conversation.unreadCount, conversation.createdHere, try store.cursor())
    return page.messages.map(\.text) + (try store.search("lunch")).map(\.text)
}
// README-EXAMPLE-END

// README-BACKUP-BEGIN
func readmeBackupExample(store: Store, folder: URL, newDevice: URL) async throws -> Int {
    let phrase = try BackupKey.generateMnemonic()  // show it once; the user keeps it offline
    var options = BackupOptions(kind: .soft, key: .mnemonic(phrase))
    let full = try store.backup(into: folder, options: options)
    options.incremental = true  // later: only the events logged since `full`
    let next = try store.backup(into: folder, options: options)

    let restored = try Store.open(at: newDevice)
    var restoredEvents = 0
    for try await update in restored.restoring(from: [next.file, full.file], options: RestoreOptions(key: .mnemonic(phrase))) {
        switch update {
        case .progress(.headVisible): print("the conversation list and newest messages are usable")
        case .progress: break
        case let .finished(summary): restoredEvents = summary.appended
        }
    }
    return restoredEvents
}
// README-BACKUP-END

// README-OBSERVE-BEGIN
func readmeObservationExample(store: Store, chat: ConversationID) async throws -> [Int] {
    var counts: [Int] = []
    for try await conversations in store.observe(.conversations()) {  // the list now, then after each change
        counts.append(conversations.first?.unreadCount ?? 0)
        if counts.count == 2 { break }  // a UI keeps going; leaving the loop ends the observation
        try await store.perform { store in  // reads and appends off the caller's thread
            try store.append(.messageReceived(MessagePost(conversation: chat, sender: "alice", text: "are you there?")))
        }
    }
    return counts
}
// README-OBSERVE-END

@Suite struct ReadmeExampleTests {
    @Test func theReadmeBackupExampleRunsAndIsQuotedExactly() async throws {
        let dir = TemporaryDirectory()
        let store = try Store.open(at: dir.store)
        try store.appendGenerated(messages: 50, conversations: 3)
        let folder = dir.url.appendingPathComponent("backups")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let restored = try await readmeBackupExample(store: store, folder: folder, newDevice: dir.url.appendingPathComponent("new"))
        #expect(restored > 50)

        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let example = source.components(separatedBy: "// README-BACKUP-BEGIN\n")[1].components(separatedBy: "// README-BACKUP-END")[0]
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).appendingPathComponent("../../../README.md").standardized, encoding: .utf8)
        #expect(readme.contains("```swift\n" + example + "```"), "README's backup example differs from this test's")
    }

    @Test func theReadmeObservationExampleRunsAndIsQuotedExactly() async throws {
        let dir = TemporaryDirectory()
        let store = try Store.open(at: dir.store)
        let chat = ConversationStart(title: "Alice", members: ["me", "alice"], createdBy: "me")
        try store.append(.conversationCreated(chat))
        #expect(try await readmeObservationExample(store: store, chat: chat.id) == [0, 1])

        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let example = source.components(separatedBy: "// README-OBSERVE-BEGIN\n")[1].components(separatedBy: "// README-OBSERVE-END")[0]
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).appendingPathComponent("../../../README.md").standardized, encoding: .utf8)
        #expect(readme.contains("```swift\n" + example + "```"), "README's observation example differs from this test's")
    }

    @Test func theReadmeExampleRunsAndIsQuotedExactly() throws {
        let dir = TemporaryDirectory()
        #expect(try readmeExample(directory: dir.store) == ["lunch tomorrow?", "lunch tomorrow?"])

        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let example = source.components(separatedBy: "// README-EXAMPLE-BEGIN\n")[1].components(separatedBy: "// README-EXAMPLE-END")[0]
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).appendingPathComponent("../../../README.md").standardized, encoding: .utf8)
        #expect(readme.contains("```swift\nimport Foundation\nimport Keepsake\n\n" + example + "```"), "README's example differs from this test's")
    }
}

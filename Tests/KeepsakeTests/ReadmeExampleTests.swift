import Foundation
import Testing
import Keepsake

// README-EXAMPLE-BEGIN
func readmeExample(directory: URL) throws -> [String] {
    let store = try Store.open(at: directory)  // creates the store if the folder is new

    var chat = ConversationCreated()
    chat.conversationID = Data(ConversationID.generate().bytes)
    chat.title = "Alice"
    chat.members = ["me", "alice"]
    try store.append(.conversationCreated(chat))

    var hello = MessageContent()
    hello.messageID = Data(MessageID.generate().bytes)
    hello.conversationID = chat.conversationID
    hello.sender = "alice"
    hello.text = "lunch tomorrow?"
    try store.append(.messageReceived(hello))

    let conversation = try store.conversations()[0]  // most recent activity first
    let page = try store.messages(in: conversation.id, limit: 50)  // newest first; page.next for more
    print(conversation.title, conversation.unreadCount, conversation.isWritable, try store.cursor())
    return page.messages.map(\.text) + (try store.search("lunch")).map(\.text)
}
// README-EXAMPLE-END

@Suite struct ReadmeExampleTests {
    @Test func theReadmeExampleRunsAndIsQuotedExactly() throws {
        let dir = TemporaryDirectory()
        #expect(try readmeExample(directory: dir.store) == ["lunch tomorrow?", "lunch tomorrow?"])

        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let example = source.components(separatedBy: "// README-EXAMPLE-BEGIN\n")[1].components(separatedBy: "// README-EXAMPLE-END")[0]
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).appendingPathComponent("../../../README.md").standardized, encoding: .utf8)
        #expect(readme.contains("```swift\nimport Foundation\nimport Keepsake\n\n" + example + "```"), "README's example differs from this test's")
    }
}

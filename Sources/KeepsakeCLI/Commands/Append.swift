import ArgumentParser
import Foundation
import Keepsake

struct Append: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add events by hand.",
        subcommands: [AppendConversation.self, AppendMessage.self, AppendDeletion.self])
}

struct AppendConversation: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "conversation", abstract: "Create a conversation.")

    @OptionGroup var location: StoreLocation
    @Option(help: "The conversation's title.") var title: String
    @Option(name: .customLong("member"), help: "A member's account (repeat for several).") var members: [String] = []
    @Flag(help: "Create a group rather than a direct conversation.") var group = false
    @Option(help: "This installation's account.") var account = "me"

    func run() throws {
        let store = try location.open(create: true)
        let id = ConversationID.generate()
        var created = ConversationCreated()
        created.conversationID = Data(id.bytes)
        created.kind = group ? .group : .direct
        created.title = title
        created.members = [account] + members
        created.createdBy = account
        try store.append(.conversationCreated(created))
        print(id)
    }
}

struct AppendMessage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "message",
        abstract: "Add a message to a conversation.",
        discussion: """
        With --repeat N the message is appended N times, numbered, each in its own durable \
        commit; the ID of every acknowledged event is printed as soon as it is durable.
        """)

    @OptionGroup var location: StoreLocation
    @Argument(help: "The conversation's ID.") var conversation: ConversationID
    @Argument(help: "The message text.") var text: String
    @Option(help: "The sender's account; another account than this installation's makes the message received.") var from = "me"
    @Option(help: "This installation's account.") var account = "me"
    @Option(name: .customLong("repeat"), help: "Append the message this many times (1 to 1000000).", transform: bounded(1...1_000_000))
    var count = 1

    func run() throws {
        let store = try location.open()
        guard try store.conversation(conversation) != nil else { throw KeepsakeError.unknownConversation(conversation) }
        for index in 0..<count {
            let now = Date()
            var content = MessageContent()
            content.messageID = Data(MessageID.generate(at: now).bytes)
            content.conversationID = Data(conversation.bytes)
            content.sender = from
            content.text = count == 1 ? text : "\(text) \(index + 1)"
            content.sentAtMs = now.millis
            content.contentType = "text/plain"
            let event = try store.append(from == account ? .messageSent(content) : .messageReceived(content), at: now)
            print(count == 1 ? MessageID(bytes: content.messageID)!.description : event.id.description)
            flushOutput()
        }
    }
}

struct AppendDeletion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a message: its content is erased from the log and the projections.")

    @OptionGroup var location: StoreLocation
    @Argument(help: "The message's ID.") var message: MessageID

    func run() throws {
        let store = try location.open()
        guard let found = try store.message(message) else {
            throw ValidationError("message \(message) is not in this store")
        }
        var deletion = MessageDeleted()
        deletion.messageID = Data(message.bytes)
        deletion.conversationID = Data(found.conversationID.bytes)
        try store.append(.messageDeleted(deletion))
        print("deleted \(message)")
    }
}

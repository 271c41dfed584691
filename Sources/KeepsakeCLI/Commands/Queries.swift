import ArgumentParser
import Foundation
import Keepsake

struct Conversations: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List conversations, most recent activity first, with unread counts.")

    @OptionGroup var location: StoreLocation
    @OptionGroup var format: OutputFormat
    @Option(help: "Show at most this many (1 to 1000000).", transform: bounded(1...1_000_000)) var limit: Int?

    func run() throws {
        let store = try location.open()
        let list = try store.conversations(limit: limit)
        if format.json { return printJSON(try list.map { $0.json(writable: try store.isWritable($0)) }) }
        let me = try store.membership()?.account
        for c in list {
            let flags = (c.unreadCount > 0 ? " \(c.unreadCount) unread" : "") + (try store.isWritable(c) ? "" : " read-only")
            // Direct conversations made by messaging have no title: name the other member.
            let title = c.title.isEmpty ? "with " + (try store.members(of: c.id).filter { $0 != me }.map { String($0.rawValue.prefix(12)) + "…" }
                .joined(separator: ", ")) : c.title
            print("\(c.id)  \(c.lastActivity.iso8601)  \(title)\(flags)")
        }
    }
}

struct Messages: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a conversation's messages, newest first, a page at a time.",
        discussion: "The last line gives the --before value for the next (older) page.")

    @OptionGroup var location: StoreLocation
    @OptionGroup var format: OutputFormat
    @Argument(help: "The conversation's ID.") var conversation: ConversationID
    @Option(help: "Messages per page (1 to 10000).", transform: bounded(1...10_000)) var limit = 20
    @Option(help: "Page cursor printed by the previous page.") var before: String?

    func run() throws {
        let store = try location.open()
        guard try store.conversation(conversation) != nil else { throw KeepsakeError.unknownConversation(conversation) }
        var cursor: MessagePageCursor?
        if let before {
            guard let parsed = MessagePageCursor(before) else { throw ValidationError("'\(before)' is not a page cursor (use the value the previous page printed)") }
            cursor = parsed
        }
        let page = try store.messages(in: conversation, before: cursor, limit: limit)
        if format.json {
            return printJSON(["messages": page.messages.map(\.json), "next": page.next.map { $0.description as Any } ?? NSNull()])
        }
        for m in page.messages { print(m.line) }
        if let next = page.next { print("-- older: --before \(next)") }
    }
}

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Find messages containing every word of the text.")

    @OptionGroup var location: StoreLocation
    @OptionGroup var format: OutputFormat
    @Argument(help: "Words to find.") var text: String
    @Option(help: "Show at most this many (1 to 10000).", transform: bounded(1...10_000)) var limit = 20

    func run() throws {
        let results = try location.open().search(text, limit: limit)
        if format.json { return printJSON(results.map(\.json)) }
        for m in results { print(m.line) }
    }
}

struct Log: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print log events after a cursor.",
        discussion: "Content is not printed: only each event's position, ID, kind and time.")

    @OptionGroup var location: StoreLocation
    @OptionGroup var format: OutputFormat
    @Option(help: "Start after this cursor (from `keepsake cursor`); default: the beginning.", transform: { text in
        do { return try Cursor(parsing: text) } catch { throw ValidationError("\(error)") }
    })
    var from: Cursor?
    @Option(help: "Print at most this many events (1 to 1000000).", transform: bounded(1...1_000_000)) var limit = 100
    @Flag(help: "Keep printing events as they are appended.") var follow = false

    func run() async throws {
        let store = try location.open()
        let start = from ?? .start(of: store.logID)
        if follow {
            for try await event in try store.events(from: start) { show(event) }
        } else {
            for event in try store.events(after: start, limit: limit) { show(event) }
        }
    }

    private func show(_ event: Event) {
        if format.json {
            printJSON(["sequence": event.sequence, "id": event.id.description, "kind": event.payload.kindName, "time": event.time.iso8601])
        } else {
            print("\(event.sequence)  \(event.id)  \(event.time.iso8601)  \(event.payload.kindName)")
        }
        flushOutput()
    }
}

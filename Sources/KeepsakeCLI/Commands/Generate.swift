import ArgumentParser
import Foundation
import KeepsakeBenchSupport
import Keepsake

/// Options shared by `generate` and `demo`.
struct GenerationOptions: ParsableArguments {
    @Option(help: "Messages to generate (1 to 100000000).", transform: bounded(1...100_000_000)) var messages = 20_000
    @Option(help: "Conversations to spread them over, sizes skewed (1 to 1000000).", transform: bounded(1...1_000_000))
    var conversations = 200
    @Option(help: "Random seed: the same seed gives the same shape of history.") var seed: UInt64 = 1
    @Option(help: "Events per append transaction (1 to 1000000).", transform: bounded(1...1_000_000)) var batch = 5_000
    @Flag(help: "Skip fsync during the load (a machine crash may lose or corrupt it).") var unsafeNoSync = false

    struct Result {
        let events: Int
        let messages: Int
        let seconds: Double
    }

    func generate(into store: Store) throws -> Result {
        var generator = HistoryGenerator(.init(messages: messages, conversations: conversations, seed: seed))
        var progress = Progress("generating", total: messages)
        var events = 0
        let started = ContinuousClock.now
        while case let drafts = generator.next(batch: batch), !drafts.isEmpty {
            try store.append(contentsOf: drafts)
            events += drafts.count
            progress.update(generator.messageCount)
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Result(events: events, messages: generator.messageCount, seconds: seconds)
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append a realistic synthetic history and report how fast it went.",
        discussion: """
        Skewed conversation sizes, ratchet steps interleaved with messages, edits, deletes, \
        read markers, contacts, consent and preferences. Appends go through the full path: \
        log, then projections.
        """)

    @OptionGroup var location: StoreLocation
    @OptionGroup var options: GenerationOptions
    @OptionGroup var format: OutputFormat

    func run() throws {
        let store = try location.open(create: true, durability: options.unsafeNoSync ? .unsafeNoSync : .durable)
        let result = try options.generate(into: store)
        let rate = Double(result.events) / max(result.seconds, 1e-9)
        if format.json {
            printJSON(["events": result.events, "messages": result.messages, "seconds": result.seconds,
                       "eventsPerSecond": rate, "cursor": try store.cursor().description])
        } else {
            print("appended \(result.events) events (\(result.messages) messages) in \(String(format: "%.2f", result.seconds)) s: \(Int(rate)) events/s")
            print("cursor \(try store.cursor())")
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a store, generate a history into it and print a summary.",
        discussion: "Uses a new temporary folder unless --path names one.")

    @Option(help: "Where to create the store (default: a new temporary folder).") var path: String?
    @OptionGroup var options: GenerationOptions

    func run() throws {
        let url = path.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-demo-\(UUID().uuidString.prefix(8))")
        let store = try Store.open(at: url, options: .withMessaging(durability: options.unsafeNoSync ? .unsafeNoSync : .durable))
        print("Keepsake demo store: \(url.path)")
        let result = try options.generate(into: store)
        print(String(format: "Generated %d events (%d messages) in %.2f s: %.0f events/s through log and projections.",
                     result.events, result.messages, result.seconds, Double(result.events) / max(result.seconds, 1e-9)))
        let conversations = try store.conversations()
        print("\n\(conversations.count) conversations; the most recent:")
        for c in conversations.prefix(5) {
            let count = try store.messages(in: c.id, limit: 1).messages.first.map { "last: \"\($0.text)\"" } ?? "no messages"
            print("  \(c.title.padding(toLength: 12, withPad: " ", startingAt: 0)) \(c.unreadCount) unread, \(try store.isWritable(c) ? "writable" : "read-only"), \(count)")
        }
        let hits = try store.search("coffee tomorrow", limit: 3)
        print("\nSearch \"coffee tomorrow\": \(hits.count) of the best matches")
        for m in hits { print("  \(m.text)") }
        print("\nLog cursor: \(try store.cursor())")
        print("Version vector: \(try store.versionVector())")
        print("\nTry: keepsake conversations --store \(url.path)")
    }
}

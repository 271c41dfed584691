import ArgumentParser
import Foundation
import Keepsake

/// The `--store` option shared by every command that opens a store.
struct StoreLocation: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The store directory.", valueName: "dir"))
    var store: String = ProcessInfo.processInfo.environment["KEEPSAKE_STORE"] ?? "keepsake-data"

    var url: URL { URL(fileURLWithPath: store) }

    /// Opens an existing store, with the messaging extension (its tables are
    /// rebuilt and checked with the store's); `create` also makes a new one.
    /// With `damagedProjections: .setAside`, a damaged projection database is
    /// moved aside and rebuilt from the log.
    func open(create: Bool = false, durability: Durability = .durable, damagedProjections: DamagedProjections = .refuse) throws -> Store {
        if !create && !FileManager.default.fileExists(atPath: url.path) {
            throw ValidationError("no store at \(url.path); create one with `keepsake init --store \(store)`")
        }
        var options = StoreOptions.withMessaging(durability: durability, create: create)
        options.damagedProjections = damagedProjections
        return try Store.open(at: url, options: options)
    }
}

extension StoreOptions {
    /// Options for a store the CLI opens: every store it opens keeps messaging's tables and event kinds.
    static func withMessaging(durability: Durability = .durable, create: Bool = true) -> StoreOptions {
        StoreOptions(durability: durability, create: create, extensions: [MessagingExtension()])
    }
}

/// `--json` for scripts.
struct OutputFormat: ParsableArguments {
    @Flag(help: "Print JSON instead of text.")
    var json = false
}

/// Writes a JSON value (dictionaries, arrays, strings, numbers, booleans) on one line.
func printJSON(_ value: Any) {
    let data = try! JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}

/// Progress on standard error, only when it is a terminal.
struct Progress {
    let label: String
    let total: Int
    private let enabled = isatty(STDERR_FILENO) == 1
    private var lastPrinted = Date.distantPast

    init(_ label: String, total: Int) {
        self.label = label
        self.total = total
    }

    mutating func update(_ done: Int) {
        guard enabled, Date().timeIntervalSince(lastPrinted) > 0.1 || done == total else { return }
        lastPrinted = Date()
        let percent = total > 0 ? done * 100 / total : 100
        FileHandle.standardError.write(Data("\r\(label): \(done)/\(total) (\(percent)%)".utf8))
        if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

extension Identifier: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// Flushes standard output, so a reader sees each line as soon as it is printed.
func flushOutput() {
    fflush(nil)
}

extension Date {
    var iso8601: String { ISO8601DateFormatter().string(from: self) }
}

extension ConversationSummary {
    /// The JSON form `keepsake conversations --json` prints; `writable` is `Store.isWritable`.
    func json(writable: Bool) -> [String: Any] {
        [
            "id": id.description, "title": title, "kind": "\(kind)", "unread": unreadCount,
            "lastActivity": lastActivity.iso8601, "writable": writable, "epoch": epoch,
        ]
    }
}

extension Message {
    var json: [String: Any] {
        [
            "id": id.description, "conversation": conversationID.description, "sender": sender.rawValue,
            "direction": "\(direction)", "text": text, "sentAt": sentAt.iso8601, "sequence": sequence,
            "edited": editedAt != nil,
        ]
    }

    var line: String {
        "\(sentAt.iso8601)  \(sender): \(text)\(editedAt != nil ? " (edited)" : "")  [\(id)]"
    }
}

/// Parses a whole number within `range`, so a value out of range is refused
/// when the command line is read, with the bounds in the message.
func bounded<T: FixedWidthInteger & Sendable>(_ range: ClosedRange<T>) -> @Sendable (String) throws -> T {
    { text in
        guard let value = T(text.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("'\(text)' is not a whole number between \(range.lowerBound) and \(range.upperBound)")
        }
        guard range.contains(value) else { throw ValidationError("\(value) is out of range: use \(range.lowerBound) to \(range.upperBound)") }
        return value
    }
}

/// Parses a number of seconds within `range` (finite, so never NaN or infinity).
func boundedSeconds(_ range: ClosedRange<Double>) -> @Sendable (String) throws -> Double {
    { text in
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            throw ValidationError("'\(text)' is not a number of seconds from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}

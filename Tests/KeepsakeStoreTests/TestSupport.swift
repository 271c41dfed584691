import Foundation
import GRDB
@testable import KeepsakeStore
import KeepsakeBenchSupport
import KeepsakeMessaging

/// A temporary directory removed when the value is released.
/// The `keepsake` executable built next to the test bundle, run as a user would.
enum CLI {
    static var url: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("keepsake")
    }

    /// Runs the CLI to completion; returns its exit status, standard output and
    /// standard error, and whether a signal ended it (a crash or a trap).
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String, error: String, signaled: Bool) {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self),
                process.terminationReason == .uncaughtSignal)
    }
}

extension CLI {
    /// Runs any tool to completion; returns its exit status and its output (standard error included).
    static func runTool(_ tool: String, _ arguments: String...) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

final class TemporaryDirectory {
    let url: URL

    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-\(UUID().uuidString)")
    }

    var store: URL { url.appendingPathComponent("store") }

    deinit { try? FileManager.default.removeItem(at: url) }
}

func conversationCreated(_ id: ConversationID, title: String = "Chat", members: [String] = ["me", "bob"]) -> EventPayload {
    var c = ConversationCreated()
    c.conversationID = Data(id.bytes)
    c.kind = .direct
    c.title = title
    c.members = members
    c.createdBy = "me"
    return .conversationCreated(c)
}

func message(_ id: MessageID, in conversation: ConversationID, _ text: String, at millis: Int64, received: Bool = true) -> EventPayload {
    var m = MessageContent()
    m.messageID = Data(id.bytes)
    m.conversationID = Data(conversation.bytes)
    m.sender = received ? "bob" : "me"
    m.text = text
    m.sentAtMs = millis
    m.contentType = "text/plain"
    return received ? .messageReceived(m) : .messageSent(m)
}

func ratchetStep(stream: String, peer: String, step: UInt64, state: String) -> EventPayload {
    var r = RatchetStep()
    r.streamID = Data(stream.utf8)
    r.peerAccount = peer
    r.peerInstallation = "\(peer)-phone"
    r.step = step
    r.state = Data(state.utf8)
    return MessagingEvent.ratchetStep(r).payload
}

func deletion(_ id: MessageID, in conversation: ConversationID) -> EventPayload {
    var d = MessageDeleted()
    d.messageID = Data(id.bytes)
    d.conversationID = Data(conversation.bytes)
    return .messageDeleted(d)
}

extension Store {
    /// Every projection row, table by table, in a stable order: equal dumps mean equal projections.
    func projectionDump() throws -> [String: [[String]]] {
        try pool.read { db in
            var dump: [String: [[String]]] = [:]
            for table in projectedTables {
                dump[table.rawValue] = try Row.fetchAll(db, sql: "SELECT * FROM \(table.rawValue) ORDER BY 1, 2")
                    .map { row in row.databaseValues.map(\.dumped) }
            }
            dump["search"] = try Row.fetchAll(db, sql: "SELECT rowid FROM message_search WHERE message_search MATCH 'the OR a OR you OR hello' ORDER BY rowid")
                .map { row in row.databaseValues.map(\.dumped) }
            return dump
        }
    }

    /// The projections as another store holding the same events would show them:
    /// every table without its local log positions (which differ between stores),
    /// and search results by message ID.
    func contentDump(tables: [ProjectedTable]? = nil) throws -> [String: [[String]]] {
        let tables = tables ?? projectedTables
        return try pool.read { db in
            var dump: [String: [[String]]] = [:]
            for table in tables {
                let columns = try db.columns(in: table.rawValue).map(\.name).filter { !$0.hasSuffix("sequence") }
                let list = columns.joined(separator: ", ")
                dump[table.rawValue] = try Row.fetchAll(db, sql: "SELECT \(list) FROM \(table.rawValue) ORDER BY \(list)")
                    .map { row in row.databaseValues.map(\.dumped) }
            }
            dump["search"] = try Row.fetchAll(db, sql: """
                SELECT m.id FROM message_search s JOIN messages m ON m.sequence = s.rowid
                WHERE message_search MATCH 'the OR a OR you OR hello' ORDER BY m.id
                """).map { row in row.databaseValues.map(\.dumped) }
            return dump
        }
    }

    /// Appends a generated history in batches.
    /// Installs messaging first: the generator writes ratchet steps.
    func appendGenerated(messages: Int, conversations: Int, seed: UInt64 = 7, batch: Int = 500) throws {
        try install(MessagingExtension())
        var generator = HistoryGenerator(.init(messages: messages, conversations: conversations, seed: seed))
        while case let drafts = generator.next(batch: batch), !drafts.isEmpty {
            try append(contentsOf: drafts)
        }
    }
}

extension DatabaseValue {
    /// The value as text, blobs in hex, so two different blobs never print alike.
    var dumped: String {
        if case let .blob(data) = storage { return "x'" + data.map { String(format: "%02x", $0) }.joined() + "'" }
        return description
    }
}

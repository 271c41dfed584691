import Foundation
import GRDBSQLite
import KeepsakeCrypto
import KeepsakeMessaging
import KeepsakeStore

/// The floors Keepsake's figures are reported against: the same work done
/// straight on the C libraries, measured in the same run on the same machine.
/// Used by `keepsake bench` and the package benchmarks.
public enum Floors {
    /// The messages among `events` (sent and received), in order: the rows the SQLite floor inserts.
    public static func messageRows(of events: some Sequence<EventContent>) -> [MessagePost] {
        events.compactMap {
            switch $0 {
            case let .messageSent(post), let .messageReceived(post): post
            default: nil
            }
        }
    }

    /// The records the log would store for `drafts` (messaging's kinds
    /// included), for the raw LMDB floor.
    public static func records(of drafts: [EventDraft]) throws -> [RecordDraft] {
        let declared = ExtensionEventKind.byNumber(MessagingExtension().eventKinds)
        return try drafts.map { try $0.recordDraft(declared: declared) }
    }

    /// How a SQLite floor loads message rows.
    public enum InsertStrategy: Sendable {
        /// Every index and the full-text index kept up row by row.
        case liveIndexes
        /// Rows first (only the primary key and the message ID's uniqueness kept
        /// live), then the secondary indexes, then the full-text index in one pass.
        case bulk
    }

    /// Inserts `rows` with prepared statements into the projection schema (message
    /// rows and their full-text index), in one transaction, with the store's
    /// pragmas, into a new database at `path`, the way `strategy` says. Returns the time taken.
    public static func sqliteInserts(_ rows: [MessagePost], at path: String, strategy: InsertStrategy = .liveIndexes) throws -> Duration {
        var db: OpaquePointer?
        guard sqlite3_open(path, &db) == SQLITE_OK else { throw FloorError("cannot open \(path)") }
        defer { sqlite3_close(db) }
        try exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        try exec(db, ProjectionDatabase.storeMigrations[0].sql)
        let started = ContinuousClock.now
        try exec(db, "BEGIN")
        var deferred: [String] = []
        if strategy == .bulk {
            let indexes = try resultRows(db, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' AND sql IS NOT NULL")
            for index in indexes { try exec(db, "DROP INDEX \(index[0])") }
            deferred = indexes.map { $0[1] }
        }
        let message = try prepare(db, "INSERT INTO messages (sequence, id, conversation_id, sender, direction, text, content_type, sent_at) VALUES (?, ?, ?, ?, 2, ?, ?, ?)")
        let search = try prepare(db, "INSERT INTO message_search (rowid, text) VALUES (?, ?)")
        defer { sqlite3_finalize(message); sqlite3_finalize(search) }
        for (index, row) in rows.enumerated() {
            let sequence = Int64(index + 1)
            sqlite3_bind_int64(message, 1, sequence)
            _ = row.id.bytes.withUnsafeBytes { sqlite3_bind_blob(message, 2, $0.baseAddress, Int32($0.count), transient) }
            _ = row.conversation.bytes.withUnsafeBytes { sqlite3_bind_blob(message, 3, $0.baseAddress, Int32($0.count), transient) }
            sqlite3_bind_text(message, 4, row.sender.rawValue, -1, transient)
            sqlite3_bind_text(message, 5, row.text, -1, transient)
            sqlite3_bind_text(message, 6, row.contentType, -1, transient)
            sqlite3_bind_int64(message, 7, row.sentAt.millis)
            try step(db, message)
            guard strategy == .liveIndexes else { continue }
            sqlite3_bind_int64(search, 1, sequence)
            sqlite3_bind_text(search, 2, row.text, -1, transient)
            try step(db, search)
        }
        if strategy == .bulk {
            for sql in deferred { try exec(db, sql) }
            try exec(db, "INSERT INTO message_search (message_search) VALUES ('rebuild')")
        }
        try exec(db, "COMMIT")
        return ContinuousClock.now - started
    }

    /// Opens `bytes` of AES-256-GCM (XChaCha20-Poly1305 without AES-NI) in 1 MiB
    /// chunks, as a restore decrypts a backup. Returns the time taken.
    public static func aeadOpen(bytes: Int) throws -> Duration {
        let cipher = NoncedAEAD.Cipher.preferred
        let key = try SecureBytes.random(count: 32)
        let nonce = [UInt8](repeating: 0, count: cipher.nonceBytes)
        let chunk = [UInt8](repeating: 0x5A, count: 1 << 20)
        var sealed: [UInt8] = []
        try chunk.withUnsafeBytes { try NoncedAEAD.seal($0, nonce: nonce, associatedData: [], key: key, cipher: cipher, into: &sealed) }
        let started = ContinuousClock.now
        for _ in 0..<max(1, bytes / chunk.count) {
            _ = try sealed.withUnsafeBytes { try NoncedAEAD.open($0, nonce: nonce, associatedData: [], key: key, cipher: cipher) }
        }
        return ContinuousClock.now - started
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private static func exec(_ db: OpaquePointer?, _ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw FloorError(String(cString: sqlite3_errmsg(db))) }
    }

    /// Every row `sql` returns, its columns as text.
    private static func resultRows(_ db: OpaquePointer?, _ sql: String) throws -> [[String]] {
        let statement = try prepare(db, sql)
        defer { sqlite3_finalize(statement) }
        var values: [[String]] = []
        while sqlite3_step(statement) == SQLITE_ROW {
            values.append((0..<sqlite3_column_count(statement)).map { String(cString: sqlite3_column_text(statement, $0)) })
        }
        return values
    }

    private static func prepare(_ db: OpaquePointer?, _ sql: String) throws -> OpaquePointer? {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else { throw FloorError(String(cString: sqlite3_errmsg(db))) }
        return statement
    }

    private static func step(_ db: OpaquePointer?, _ statement: OpaquePointer?) throws {
        guard sqlite3_step(statement) == SQLITE_DONE else { throw FloorError(String(cString: sqlite3_errmsg(db))) }
        sqlite3_reset(statement)
    }
}

/// A floor measurement failed.
public struct FloorError: Error, CustomStringConvertible {
    /// What failed.
    public let description: String
    init(_ description: String) { self.description = description }
}

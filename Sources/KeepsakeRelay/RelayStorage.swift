import Foundation
import GRDB
import KeepsakeCrypto
import KeepsakeWire

/// The relay's data: topic items, prekeys, known installations and revocations,
/// and group epoch claims, in one SQLite database in the data folder.
///
/// Every publish commits whole or not at all (concurrent ones share a
/// transaction, each in its own savepoint), so a crash never leaves half an
/// upload. Publishing the same bytes to the same topic twice stores them once
/// (a client retry is not a duplicate).
final class RelayStorage: Sendable {
    let database: any DatabaseWriter
    let groupCommit: GroupCommit

    /// Opens (creating when needed) `relay.sqlite` in `directory`.
    convenience init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        try self.init(database: DatabasePool(path: directory.appendingPathComponent("relay.sqlite").path, configuration: configuration))
    }

    /// A relay database that lives in memory (`InMemoryRelay`).
    convenience init(inMemory: Void) throws {
        try self.init(database: DatabaseQueue())
    }

    private init(database: any DatabaseWriter) throws {
        self.database = database
        groupCommit = GroupCommit(database: database)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("0001_relay") { db in try db.execute(sql: Self.schema) }
        migrator.registerMigration("0002_backups") { db in try db.execute(sql: Self.backupSchema) }
        migrator.registerMigration("0003_prekey_claims") { db in try db.execute(sql: Self.prekeyClaimSchema) }
        try migrator.migrate(database)
    }

    static let schema = """
        CREATE TABLE items (
            cursor INTEGER PRIMARY KEY AUTOINCREMENT,  -- one sequence for all topics: a topic's cursors only grow
            topic TEXT NOT NULL,
            digest BLOB NOT NULL,                      -- BLAKE2b-256 of data
            data BLOB NOT NULL,
            received_at INTEGER NOT NULL,              -- milliseconds since 1970, relay clock
            UNIQUE (topic, digest)
        );
        CREATE INDEX items_by_topic ON items (topic, cursor);
        CREATE TABLE prekeys (
            installation BLOB NOT NULL,
            prekey_id INTEGER NOT NULL,
            fallback INTEGER NOT NULL,
            data BLOB,                                 -- SignedPrekey; NULL once a one-time prekey was served
            uploaded INTEGER NOT NULL,                 -- upload order: the newest fallback is served
            PRIMARY KEY (installation, prekey_id)      -- a served prekey's row stays, so it is never uploaded again
        );
        CREATE TABLE installations (
            installation BLOB PRIMARY KEY,
            account TEXT NOT NULL,
            revoked_at INTEGER                         -- set by a verified revocation
        );
        CREATE TABLE commit_claims (
            topic TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            digest BLOB NOT NULL,
            PRIMARY KEY (topic, epoch)
        );
        """

    /// The backup provider: file metadata (contents live in a `BackupBlobStore`),
    /// request nonces already seen, and uploads per installation for rate limits.
    static let backupSchema = """
        ALTER TABLE installations ADD COLUMN signing_key BLOB;  -- from verified bundles: checks request signatures
        CREATE TABLE backups (
            id TEXT PRIMARY KEY,                     -- 64 random hex digits: the capability to download
            installation BLOB NOT NULL,              -- the uploader
            locator TEXT,                            -- 64 hex digits derived from the backup key: lists a key's backups
            size INTEGER NOT NULL,
            digest TEXT NOT NULL,                    -- BLAKE2b-256 of the contents, hex
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            delete_after_download INTEGER NOT NULL,
            claimed INTEGER NOT NULL DEFAULT 0       -- a delete-after-download file being downloaded
        );
        CREATE INDEX backups_by_expiry ON backups (expires_at);
        CREATE INDEX backups_by_locator ON backups (locator, created_at);
        CREATE TABLE request_nonces (nonce BLOB PRIMARY KEY, seen_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE uploads (installation BLOB NOT NULL, at INTEGER NOT NULL);
        CREATE INDEX uploads_by_installation ON uploads (installation, at);
        """

    /// Served prekey claims, kept an hour: the rate limits count them and the
    /// target installation reads how fast its prekeys go.
    static let prekeyClaimSchema = """
        CREATE TABLE prekey_claims (
            requester BLOB NOT NULL,                 -- the signing installation
            target BLOB NOT NULL,                    -- the installation whose prekey was served
            at INTEGER NOT NULL,                     -- milliseconds since 1970, relay clock
            fallback INTEGER NOT NULL                -- 1: the fallback prekey was served
        );
        CREATE INDEX prekey_claims_by_requester ON prekey_claims (requester, target, at);
        CREATE INDEX prekey_claims_by_target ON prekey_claims (target, at);
        CREATE INDEX prekey_claims_by_time ON prekey_claims (at);
        CREATE INDEX request_nonces_by_time ON request_nonces (seen_at);
        """

    struct Item: Sendable {
        let cursor: Int64
        let data: Data
        let receivedAt: Int64
    }

    /// Stores `data` on `topic` (or finds it there already); returns its cursor.
    /// `check` runs inside the write transaction, before the insert. Concurrent
    /// publishes share transactions (`GroupCommit`); each is answered once its transaction committed.
    func publish(_ data: [UInt8], on topic: Topic, check: @escaping @Sendable (Database) throws -> Void = { _ in }) async throws -> Int64 {
        let digest = Data(Blake2b.hash(data))
        return try await groupCommit.write { db in
            if let existing = try Int64.fetchOne(db.cachedStatement(sql: "SELECT cursor FROM items WHERE topic = ? AND digest = ?"),
                                                  arguments: [topic.name, digest]) {
                return existing
            }
            try check(db)
            try db.cachedStatement(sql: "INSERT INTO items (topic, digest, data, received_at) VALUES (?, ?, ?, ?)")
                .execute(arguments: [topic.name, digest, Data(data), Int64(Date().timeIntervalSince1970 * 1000)])
            return db.lastInsertedRowID
        }
    }

    func items(on topic: Topic, after cursor: Int64, limit: Int) throws -> [Item] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT cursor, data, received_at FROM items WHERE topic = ? AND cursor > ? ORDER BY cursor LIMIT ?",
                             arguments: [topic.name, cursor, limit])
                .map { Item(cursor: $0["cursor"], data: $0["data"], receivedAt: $0["received_at"]) }
        }
    }

    /// Hands every item of `topic` after `cursor` to `body`, oldest first, a page
    /// at a time; returns the cursor of the last one (or `cursor` when there was none).
    func forEachItem(on topic: Topic, after cursor: Int64, pageSize: Int, _ body: (Item) async throws -> Void) async throws -> Int64 {
        var cursor = cursor
        var page: [Item]
        repeat {
            page = try items(on: topic, after: cursor, limit: pageSize)
            for item in page {
                try await body(item)
                cursor = item.cursor
            }
        } while page.count == pageSize
        return cursor
    }

    /// Remembers an installation's account and signing key from its verified bundle.
    func learn(_ bundle: ContactBundle, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO installations (installation, account, signing_key) VALUES (?, ?, ?)
            ON CONFLICT (installation) DO UPDATE SET signing_key = coalesce(signing_key, excluded.signing_key)
            """, arguments: [bundle.installationID, bundle.account, bundle.signingKey])
    }

    /// The signing key of an installation known from its bundle, and whether it
    /// was revoked; refuses an installation this relay has no bundle of.
    func signingKey(of installation: [UInt8], _ db: Database) throws -> (key: [UInt8], revoked: Bool) {
        guard let row = try Row.fetchOne(db, sql: "SELECT signing_key, revoked_at FROM installations WHERE installation = ?",
                                         arguments: [Data(installation)]), let key = row["signing_key"] as Data? else {
            throw RelayError(.forbidden, code: "unknown_installation", "the installation has not published a contact bundle on this relay")
        }
        return (Array(key), (row["revoked_at"] as Int64?) != nil)
    }

    /// A signed request's checks that need the relay's data, in the caller's
    /// transaction: a known, unrevoked installation signed this method and path,
    /// within `RequestAuthentication.window` of `now`. (Nonces are the caller's.)
    func checkSignature(_ auth: RequestAuthentication, method: String, path: String, now: Int64, _ db: Database) throws {
        let known = try signingKey(of: auth.installation, db)
        guard !known.revoked else { throw RelayError.revoked }
        guard auth.verify(method: method, path: path, signingKey: known.key) else {
            throw RelayError(.unauthorized, code: "bad_signature", "the request signature does not verify")
        }
        guard abs(auth.timestamp - now) <= RequestAuthentication.window else {
            throw RelayError(.unauthorized, code: "stale_request", "the request's timestamp is more than 5 minutes from the relay's clock")
        }
    }

    func revoke(installation: [UInt8], account: String, at time: Int64, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO installations (installation, account, revoked_at) VALUES (?, ?, ?)
            ON CONFLICT (installation) DO UPDATE SET revoked_at = min(coalesce(revoked_at, excluded.revoked_at), excluded.revoked_at)
            """, arguments: [Data(installation), account, time])
        try db.execute(sql: "UPDATE prekeys SET data = NULL WHERE installation = ?", arguments: [Data(installation)])
    }

    func isRevoked(_ installation: [UInt8], _ db: Database) throws -> Bool {
        try Int64.fetchOne(db, sql: "SELECT revoked_at FROM installations WHERE installation = ?", arguments: [Data(installation)]) != nil
    }

    /// Adds uploaded prekeys; a prekey ID already stored (or served) keeps its first upload.
    func store(prekeys: [(id: UInt32, fallback: Bool, signed: [UInt8])], for installation: [UInt8], _ db: Database) throws {
        var order = try Int64.fetchOne(db, sql: "SELECT max(uploaded) FROM prekeys") ?? 0
        for prekey in prekeys {
            order += 1
            try db.execute(sql: "INSERT OR IGNORE INTO prekeys (installation, prekey_id, fallback, data, uploaded) VALUES (?, ?, ?, ?, ?)",
                           arguments: [Data(installation), Int64(prekey.id), prekey.fallback, Data(prekey.signed), order])
        }
    }

    /// How many one-time prekeys of the installation are left.
    func oneTimePrekeys(of installation: [UInt8], _ db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM prekeys WHERE installation = ? AND fallback = 0 AND data IS NOT NULL",
                         arguments: [Data(installation)]) ?? 0
    }

    /// Accepts a signed request's nonce once, in the caller's transaction (and
    /// forgets nonces older than twice the timestamp window, which can no longer verify).
    func use(nonce: [UInt8], now: Int64, _ db: Database) throws {
        try db.execute(sql: "DELETE FROM request_nonces WHERE seen_at < ?", arguments: [now - 2 * RequestAuthentication.window])
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM request_nonces WHERE nonce = ?", arguments: [Data(nonce)]) == nil else {
            throw RelayError.replayedRequest
        }
        try db.execute(sql: "INSERT INTO request_nonces (nonce, seen_at) VALUES (?, ?)", arguments: [Data(nonce), now])
    }

    enum ClaimOutcome: Equatable {
        case claimed
        /// Another commit holds the epoch, or the epoch is not the next one.
        case refused(holder: Data?, next: UInt64)
    }

    /// Claims `epoch` of a group for a commit digest: only the next epoch can be
    /// claimed, first come first served; claiming again with the same digest succeeds.
    func claim(epoch: UInt64, digest: [UInt8], on topic: Topic, _ db: Database) throws -> ClaimOutcome {
        let latest = try Int64.fetchOne(db, sql: "SELECT max(epoch) FROM commit_claims WHERE topic = ?", arguments: [topic.name]) ?? 0
        if let holder = try Data.fetchOne(db, sql: "SELECT digest FROM commit_claims WHERE topic = ? AND epoch = ?",
                                          arguments: [topic.name, Int64(epoch)]) {
            return holder == Data(digest) ? .claimed : .refused(holder: holder, next: UInt64(latest) + 1)
        }
        guard epoch == UInt64(latest) + 1 else { return .refused(holder: nil, next: UInt64(latest) + 1) }
        try db.execute(sql: "INSERT INTO commit_claims (topic, epoch, digest) VALUES (?, ?, ?)",
                       arguments: [topic.name, Int64(epoch), Data(digest)])
        return .claimed
    }
}

import Foundation
import GRDB
import KeepsakeCrypto
import KeepsakeTransport
import KeepsakeWire

/// The relay's data in one SQLite database in the data folder (`relay.sqlite`):
/// the embedded default `RelayStore`, for one relay process.
///
/// Concurrent publishes share a transaction (`GroupCommit`), each in its own
/// savepoint, so a crash never leaves half a publish and a burst costs one
/// sync to disk. Publishing the same bytes to the same topic twice stores them
/// once (a client retry is not a duplicate).
final class SQLiteRelayStore: RelayStore {
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

    func publish(_ data: [UInt8], on topic: Topic, rule: PublishRule, receivedAt: Int64) async throws -> Int64 {
        let digest = Data(Blake2b.hash(data))
        return try await groupCommit.write { db in
            if let existing = try Int64.fetchOne(db.cachedStatement(sql: "SELECT cursor FROM items WHERE topic = ? AND digest = ?"),
                                                  arguments: [topic.name, digest]) {
                return existing
            }
            try self.apply(rule, on: topic, db)
            try db.cachedStatement(sql: "INSERT INTO items (topic, digest, data, received_at) VALUES (?, ?, ?, ?)")
                .execute(arguments: [topic.name, digest, Data(data), receivedAt])
            return db.lastInsertedRowID
        }
    }

    private func apply(_ rule: PublishRule, on topic: Topic, _ db: Database) throws {
        switch rule {
        case .none:
            break
        case let .learn(installation):
            guard try !isRevoked(installation.id, db) else { throw RelayError.revoked }
            try learn(installation, db)
        case let .revoke(installation, account, time):
            try db.execute(sql: """
                INSERT INTO installations (installation, account, revoked_at) VALUES (?, ?, ?)
                ON CONFLICT (installation) DO UPDATE SET revoked_at = min(coalesce(revoked_at, excluded.revoked_at), excluded.revoked_at)
                """, arguments: [Data(installation), account, time])
            try db.execute(sql: "UPDATE prekeys SET data = NULL WHERE installation = ?", arguments: [Data(installation)])
        case let .claimEpoch(epoch, digest):
            let latest = try Int64.fetchOne(db, sql: "SELECT max(epoch) FROM commit_claims WHERE topic = ?", arguments: [topic.name]) ?? 0
            let next = UInt64(latest) + 1
            if let holder = try Data.fetchOne(db, sql: "SELECT digest FROM commit_claims WHERE topic = ? AND epoch = ?",
                                              arguments: [topic.name, Int64(epoch)]) {
                guard holder == Data(digest) else { throw RelayRules.epochRefused(epoch, holder: holder, next: next) }
                return
            }
            guard epoch == next else { throw RelayRules.epochRefused(epoch, holder: nil, next: next) }
            try db.execute(sql: "INSERT INTO commit_claims (topic, epoch, digest) VALUES (?, ?, ?)",
                           arguments: [topic.name, Int64(epoch), Data(digest)])
        case let .signedBy(installation, verify):
            guard let key = try key(of: installation, db) else { throw RelayRules.unknownInstallation }
            try verify(key.signingKey)
        }
    }

    func items(on topic: Topic, after cursor: Int64, limit: Int) throws -> [StoredItem] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT cursor, data, received_at FROM items WHERE topic = ? AND cursor > ? ORDER BY cursor LIMIT ?",
                             arguments: [topic.name, cursor, limit])
                .map { StoredItem(cursor: $0["cursor"], data: $0["data"], receivedAt: $0["received_at"]) }
        }
    }

    private func learn(_ installation: KnownInstallation, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO installations (installation, account, signing_key) VALUES (?, ?, ?)
            ON CONFLICT (installation) DO UPDATE SET signing_key = coalesce(signing_key, excluded.signing_key)
            """, arguments: [Data(installation.id), installation.account, Data(installation.signingKey)])
    }

    func storePrekeys(_ prekeys: [UploadedPrekey], of installation: KnownInstallation) async throws -> Int {
        try await database.write { db in
            guard try !self.isRevoked(installation.id, db) else { throw RelayError.revoked }
            try self.learn(installation, db)
            var order = try Int64.fetchOne(db, sql: "SELECT max(uploaded) FROM prekeys") ?? 0
            for prekey in prekeys {
                order += 1
                try db.execute(sql: "INSERT OR IGNORE INTO prekeys (installation, prekey_id, fallback, data, uploaded) VALUES (?, ?, ?, ?, ?)",
                               arguments: [Data(installation.id), Int64(prekey.id), prekey.fallback, Data(prekey.signed), order])
            }
            return try self.oneTimePrekeys(of: installation.id, db)
        }
    }

    func installationKey(_ installation: [UInt8]) throws -> InstallationKey? {
        try database.read { db in try key(of: installation, db) }
    }

    private func key(of installation: [UInt8], _ db: Database) throws -> InstallationKey? {
        guard let row = try Row.fetchOne(db, sql: "SELECT signing_key, revoked_at FROM installations WHERE installation = ?",
                                         arguments: [Data(installation)]), let key = row["signing_key"] as Data? else { return nil }
        return InstallationKey(signingKey: Array(key), revoked: (row["revoked_at"] as Int64?) != nil)
    }

    private func isRevoked(_ installation: [UInt8], _ db: Database) throws -> Bool {
        try Int64.fetchOne(db, sql: "SELECT revoked_at FROM installations WHERE installation = ?", arguments: [Data(installation)]) != nil
    }

    private func oneTimePrekeys(of installation: [UInt8], _ db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM prekeys WHERE installation = ? AND fallback = 0 AND data IS NOT NULL",
                         arguments: [Data(installation)]) ?? 0
    }

    /// A signed request's checks inside its transaction: still not revoked, and a nonce never seen
    /// (nonces older than they can verify are forgotten first).
    private func use(_ request: SignedRequest, _ db: Database) throws {
        guard try !isRevoked(request.installation, db) else { throw RelayError.revoked }
        try db.execute(sql: "DELETE FROM request_nonces WHERE seen_at < ?", arguments: [request.now - RelayRules.nonceLifetime])
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM request_nonces WHERE nonce = ?", arguments: [Data(request.nonce)]) == nil else {
            throw RelayError.replayedRequest
        }
        try db.execute(sql: "INSERT INTO request_nonces (nonce, seen_at) VALUES (?, ?)", arguments: [Data(request.nonce), request.now])
    }

    func claimPrekey(_ request: SignedRequest, of target: [UInt8], limits: Relay.Limits) async throws -> ServedPrekey? {
        try await database.write { db in
            try self.use(request, db)
            try db.execute(sql: "DELETE FROM prekey_claims WHERE at <= ?", arguments: [request.now - RelayRules.hour])
            let requester = Data(request.installation), targetID = Data(target)
            func count(_ condition: String, _ arguments: StatementArguments) throws -> Int {
                try Int.fetchOne(db, sql: "SELECT count(*) FROM prekey_claims WHERE \(condition)", arguments: arguments) ?? 0
            }
            let oneTimeAllowed = try PrekeyClaimCounts(
                byRequester: count("requester = ?", [requester]), byPair: count("requester = ? AND target = ?", [requester, targetID]),
                ofTarget: count("target = ?", [targetID]), oneTimeOfTarget: count("target = ? AND fallback = 0", [targetID])
            ).admit(limits)
            guard let served = try self.serve(targetID, oneTime: oneTimeAllowed, db) else { return nil }
            try db.execute(sql: "INSERT INTO prekey_claims (requester, target, at, fallback) VALUES (?, ?, ?, ?)",
                           arguments: [requester, targetID, request.now, served.fallback])
            return served
        }
    }

    /// Serves a one-time prekey (when `oneTime` and one is left) and forgets its
    /// key (its ID stays, so a re-upload never serves it again), or else the newest fallback (kept).
    private func serve(_ target: Data, oneTime: Bool, _ db: Database) throws -> ServedPrekey? {
        if oneTime, let row = try Row.fetchOne(db, sql: """
            SELECT prekey_id, data FROM prekeys WHERE installation = ? AND fallback = 0 AND data IS NOT NULL
            ORDER BY uploaded LIMIT 1
            """, arguments: [target]) {
            try db.execute(sql: "UPDATE prekeys SET data = NULL WHERE installation = ? AND prekey_id = ?",
                           arguments: [target, row["prekey_id"] as Int64])
            return ServedPrekey(data: row["data"], fallback: false)
        }
        return try Data.fetchOne(db, sql: """
            SELECT data FROM prekeys WHERE installation = ? AND fallback = 1 AND data IS NOT NULL ORDER BY uploaded DESC LIMIT 1
            """, arguments: [target]).map { ServedPrekey(data: $0, fallback: true) }
    }

    func prekeyStock(_ request: SignedRequest) async throws -> PrekeyStock {
        try await database.write { db in
            try self.use(request, db)
            let since = request.now - RelayRules.hour, target = Data(request.installation)
            func count(_ fallback: Bool) throws -> Int {
                try Int.fetchOne(db, sql: "SELECT count(*) FROM prekey_claims WHERE target = ? AND fallback = ? AND at > ?",
                                 arguments: [target, fallback, since]) ?? 0
            }
            return PrekeyStock(oneTimeRemaining: try self.oneTimePrekeys(of: request.installation, db),
                               oneTimeServedLastHour: try count(false), fallbackServedLastHour: try count(true))
        }
    }

    func admitUpload(_ request: SignedRequest, perHour: Int) async throws {
        try await database.write { db in
            try self.use(request, db)
            let installation = Data(request.installation)
            let recent = try Int.fetchOne(db, sql: "SELECT count(*) FROM uploads WHERE installation = ? AND at > ?",
                                          arguments: [installation, request.now - RelayRules.hour]) ?? 0
            guard recent < perHour else { throw RelayRules.uploadLimited(perHour) }
            try db.execute(sql: "INSERT INTO uploads (installation, at) VALUES (?, ?)", arguments: [installation, request.now])
        }
    }

    // MARK: - Backups

    func addBackup(_ backup: BackupRecord) async throws {
        try await database.write { db in
            try db.execute(sql: """
                INSERT INTO backups (id, installation, locator, size, digest, created_at, expires_at, delete_after_download)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [backup.id, Data(backup.installation), backup.locator, backup.size, backup.digest,
                                 backup.createdAt, backup.expiresAt, backup.deleteAfterDownload])
        }
    }

    func takeBackup(_ id: String, now: Int64) async throws -> BackupRecord? {
        try await database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM backups WHERE id = ? AND claimed = 0 AND expires_at > ?",
                                             arguments: [id, now]) else { return nil }
            let backup = Self.record(row)
            if backup.deleteAfterDownload { try db.execute(sql: "UPDATE backups SET claimed = 1 WHERE id = ?", arguments: [id]) }
            return backup
        }
    }

    func release(_ id: String) async throws {
        try await database.write { db in try db.execute(sql: "UPDATE backups SET claimed = 0 WHERE id = ?", arguments: [id]) }
    }

    func removeBackup(_ id: String) async throws {
        try await database.write { db in try db.execute(sql: "DELETE FROM backups WHERE id = ?", arguments: [id]) }
    }

    func backups(locator: String, now: Int64) async throws -> [BackupRecord] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM backups WHERE locator = ? AND claimed = 0 AND expires_at > ? ORDER BY created_at, id",
                             arguments: [locator, now]).map(Self.record)
        }
    }

    func removeExpiredBackups(now: Int64) async throws -> [String] {
        try await database.write { db in
            let ids = try String.fetchAll(db, sql: "SELECT id FROM backups WHERE expires_at <= ?", arguments: [now])
            try db.execute(sql: "DELETE FROM backups WHERE expires_at <= ?", arguments: [now])
            try db.execute(sql: "DELETE FROM uploads WHERE at < ?", arguments: [now - RelayRules.hour])
            return ids
        }
    }

    func check() async throws {
        _ = try await database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
    }

    func backupIDs() async throws -> Set<String> {
        try await database.read { db in try String.fetchSet(db, sql: "SELECT id FROM backups") }
    }

    private static func record(_ row: Row) -> BackupRecord {
        BackupRecord(id: row["id"], installation: Array(row["installation"] as Data), locator: row["locator"], size: row["size"],
                     digest: row["digest"], createdAt: row["created_at"], expiresAt: row["expires_at"],
                     deleteAfterDownload: row["delete_after_download"])
    }
}

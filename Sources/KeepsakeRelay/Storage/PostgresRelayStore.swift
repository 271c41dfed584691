import Foundation
import KeepsakeCrypto
import KeepsakeTransport
import KeepsakeWire
import Logging
import NIOSSL
import PostgresNIO
import Synchronization

/// The relay's data in PostgreSQL, which any number of relay processes can
/// share (`keepsake serve --database postgres://…`).
///
/// What must happen once happens once across relays because the database says
/// so: nonces, epoch claims and item digests are unique keys, and the
/// transactions that read before they write (a topic's next cursor, an epoch
/// claim, a prekey and the limits it counts against, an upload count) first
/// take a transaction-scoped advisory lock on what they read. Publishes to one
/// topic hold its lock until they commit, so a topic's cursors become visible
/// in increasing order, and a follower reading after its last cursor never
/// skips an item that committed late.
final class PostgresRelayStore: RelayStore {
    private let client: PostgresClient
    private let running: Task<Void, Never>
    private let following = Mutex<Task<Void, Never>?>(nil)
    private let logger: Logger
    /// The channel publishes are announced on (`NOTIFY`, delivered when the publish commits).
    static let channel = "keepsake_topics"

    /// Connects to the database `url` names (`postgres://user:password@host:port/database?sslmode=disable|prefer|require`)
    /// and brings its schema up to date.
    static func open(url: String, logger: Logger) async throws -> PostgresRelayStore {
        let store = PostgresRelayStore(configuration: try configuration(url), logger: logger)
        do {
            try await store.migrate()
        } catch {
            store.close()
            throw error
        }
        return store
    }

    private init(configuration: PostgresClient.Configuration, logger: Logger) {
        self.logger = logger
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        // `run()` marks the client running before it first suspends: started
        // immediately, it is running before the first lease (the migrations),
        // which would otherwise log a warning that it is not.
        if #available(macOS 26, iOS 26, tvOS 26, watchOS 26, visionOS 26, *) {
            running = Task.immediate { await client.run() }
        } else {
            running = Task { await client.run() }
        }
    }

    /// Closes the connections.
    func close() {
        following.withLock { $0?.cancel() }
        running.cancel()
    }

    deinit { close() }

    /// Listens on `channel` on a connection of its own, and again after the
    /// database comes back from a restart (a second later, then every second).
    func followOtherRelays(_ published: @escaping @Sendable (_ topic: String) -> Void) {
        let (client, logger) = (client, logger)
        let task = Task {
            while !Task.isCancelled {
                do {
                    try await client.withConnection { connection in
                        try await connection.listen(on: Self.channel) { notifications in
                            for try await notification in notifications { published(notification.payload) }
                        }
                    }
                } catch {
                    logger.warning("lost the database's publish notifications; listening again: \(error)")
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        following.withLock { $0 = task }
    }

    /// The client configuration for a `postgres://` URL.
    static func configuration(_ text: String) throws -> PostgresClient.Configuration {
        guard let url = URLComponents(string: text), url.scheme == "postgres" || url.scheme == "postgresql",
              let host = url.host, !host.isEmpty else {
            throw RelayStoreError.badDatabaseURL("'\(text.prefix(20))…' is not postgres://user[:password]@host[:port]/database")
        }
        let database = String(url.path.drop { $0 == "/" })
        let sslMode = url.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: throw RelayStoreError.badDatabaseURL("sslmode is disable, prefer or require, not '\(sslMode.prefix(20))'")
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: url.port ?? 5432, username: url.user ?? "postgres", password: url.password,
            database: database.isEmpty ? nil : database, tls: tls)
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    // MARK: - Transactions

    /// Runs `body` in a transaction on one pooled connection: committed when it
    /// returns, rolled back when it throws. Refusals (`RelayError`, `WireError`)
    /// pass through; anything else is the database failing (`StorageFailure`).
    private func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await pooled { [logger] connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                let value = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return value
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// Runs `body` on one pooled connection within `timeout`, each of its
    /// statements a transaction of its own (a single read needs no more, and
    /// saves BEGIN's and COMMIT's round trips); errors as `transaction`'s.
    private func pooled<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await withThrowingTaskGroup(of: T.self) { group in
                group.addTask { try await self.client.withConnection(body) }
                // A database that is down leaves the pool waiting for a connection forever.
                group.addTask {
                    try await Task.sleep(for: Self.timeout)
                    throw RelayStoreError.timedOut(Self.timeout)
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } catch let error as RelayError {
            throw error
        } catch let error as WireError {
            throw error
        } catch {
            throw StorageFailure(cause: error)
        }
    }

    /// How long a transaction may take, waiting for a connection included.
    static let timeout: Duration = .seconds(10)

    /// Runs a statement whose rows, if any, do not matter.
    private func execute(_ query: PostgresQuery, on connection: PostgresConnection) async throws {
        _ = try await rows(query, on: connection)
    }

    private func rows(_ query: PostgresQuery, on connection: PostgresConnection) async throws -> [PostgresRow] {
        try await connection.query(query, logger: logger).collect()
    }

    private func first<T: PostgresDecodable>(_ query: PostgresQuery, as type: T.Type, on connection: PostgresConnection) async throws -> T? {
        try await rows(query, on: connection).first.map { try $0.decode(T.self) }
    }

    private func count(_ query: PostgresQuery, on connection: PostgresConnection) async throws -> Int {
        Int(try await first(query, as: Int64.self, on: connection) ?? 0)
    }

    /// What a transaction-scoped advisory lock guards: one lock per kind and key.
    private enum Lock: Int32 {
        case topic = 1, installation, requester, uploader, migrations
    }

    /// Waits for the lock on `key` of `kind`, held until the transaction ends.
    private func lock(_ kind: Lock, _ key: String, on connection: PostgresConnection) async throws {
        try await execute("SELECT pg_advisory_xact_lock(\(kind.rawValue), hashtext(\(key)))", on: connection)
    }

    private func lock(_ kind: Lock, _ key: [UInt8], on connection: PostgresConnection) async throws {
        try await lock(kind, Hex.encode(key), on: connection)
    }

    // MARK: - Topics

    /// A message (no rule) is one statement, its own transaction, plus a lookup
    /// when it is a repeat; a publish with a rule is a transaction that looks for
    /// the item first, so a repeat is not checked again.
    func publish(_ data: [UInt8], on topic: Topic, rule: PublishRule, receivedAt: Int64) async throws -> Int64 {
        let digest = Data(Blake2b.hash(data))
        if case .none = rule {
            return try await pooled { [self] connection in
                if let cursor = try await storeOnce(data, digest: digest, on: topic, receivedAt: receivedAt, connection) { return cursor }
                guard let cursor = try await existing(digest, on: topic, connection) else { throw RelayStoreError.noRow("items") }
                return cursor
            }
        }
        return try await transaction { [self] connection in
            try await lock(.topic, topic.name, on: connection)
            if let cursor = try await existing(digest, on: topic, connection) { return cursor }
            try await apply(rule, on: topic, connection)
            guard let cursor = try await storeOnce(data, digest: digest, on: topic, receivedAt: receivedAt, connection) else {
                throw RelayStoreError.noRow("items")
            }
            return cursor
        }
    }

    /// Stores the item under the topic's lock and announces it (NOTIFY), in one
    /// statement; returns its cursor, or nil when the topic already has an item
    /// with this digest. The lock is taken before the cursor is drawn and held
    /// until the commit, so a topic's cursors become visible in increasing order;
    /// `ON CONFLICT` sees (or waits for) every other relay's insert whatever the snapshot.
    private func storeOnce(_ data: [UInt8], digest: Data, on topic: Topic, receivedAt: Int64, _ connection: PostgresConnection) async throws -> Int64? {
        guard let row = try await rows("""
            WITH locked AS (SELECT pg_advisory_xact_lock(\(Lock.topic.rawValue), hashtext(\(topic.name))))
            INSERT INTO items (topic, digest, data, received_at)
            SELECT \(topic.name), \(digest), \(Data(data)), \(receivedAt) FROM locked
            ON CONFLICT (topic, digest) DO NOTHING
            RETURNING cursor, pg_notify(\(Self.channel), topic)::text
            """, on: connection).first else { return nil }
        let (cursor, _) = try row.decode((Int64, String).self)
        return cursor
    }

    /// The cursor of the topic's item with this digest, if it has one.
    private func existing(_ digest: Data, on topic: Topic, _ connection: PostgresConnection) async throws -> Int64? {
        try await first("SELECT cursor FROM items WHERE topic = \(topic.name) AND digest = \(digest)", as: Int64.self, on: connection)
    }

    private func apply(_ rule: PublishRule, on topic: Topic, _ connection: PostgresConnection) async throws {
        switch rule {
        case .none:
            break
        case let .learn(installation):
            try await lock(.installation, installation.id, on: connection)
            guard try await !isRevoked(installation.id, connection) else { throw RelayError.revoked }
            try await learn(installation, connection)
        case let .revoke(installation, account, time):
            try await lock(.installation, installation, on: connection)
            let id = Data(installation)
            try await execute("""
                INSERT INTO installations (installation, account, revoked_at) VALUES (\(id), \(account), \(time))
                ON CONFLICT (installation) DO UPDATE
                SET revoked_at = least(coalesce(installations.revoked_at, excluded.revoked_at), excluded.revoked_at)
                """, on: connection)
            try await execute("UPDATE prekeys SET data = NULL WHERE installation = \(id)", on: connection)
        case let .claimEpoch(epoch, digest):
            // The topic's lock (taken by `publish`) makes the read and the insert one step.
            let latest = try await first("SELECT max(epoch) FROM commit_claims WHERE topic = \(topic.name)", as: Int64?.self, on: connection) ?? nil
            let next = UInt64(latest ?? 0) + 1
            guard let value = Int64(exactly: epoch) else { throw RelayRules.epochRefused(epoch, holder: nil, next: next) }
            if let holder = try await first("SELECT digest FROM commit_claims WHERE topic = \(topic.name) AND epoch = \(value)",
                                            as: Data.self, on: connection) {
                guard holder == Data(digest) else { throw RelayRules.epochRefused(epoch, holder: holder, next: next) }
                return
            }
            guard epoch == next else { throw RelayRules.epochRefused(epoch, holder: nil, next: next) }
            try await execute("INSERT INTO commit_claims (topic, epoch, digest) VALUES (\(topic.name), \(value), \(Data(digest)))",
                                       on: connection)
        case let .signedBy(installation, verify):
            guard let key = try await key(of: installation, connection) else { throw RelayRules.unknownInstallation }
            try verify(key.signingKey)
        }
    }

    func items(on topic: Topic, after cursor: Int64, limit: Int) async throws -> [StoredItem] {
        try await pooled { [self] connection in
            try await rows("""
                SELECT cursor, data, received_at FROM items WHERE topic = \(topic.name) AND cursor > \(cursor) ORDER BY cursor LIMIT \(limit)
                """, on: connection).map { row in
                let (cursor, data, receivedAt) = try row.decode((Int64, Data, Int64).self)
                return StoredItem(cursor: cursor, data: data, receivedAt: receivedAt)
            }
        }
    }

    // MARK: - Installations and prekeys

    private func learn(_ installation: KnownInstallation, _ connection: PostgresConnection) async throws {
        try await execute("""
            INSERT INTO installations (installation, account, signing_key)
            VALUES (\(Data(installation.id)), \(installation.account), \(Data(installation.signingKey)))
            ON CONFLICT (installation) DO UPDATE SET signing_key = coalesce(installations.signing_key, excluded.signing_key)
            """, on: connection)
    }

    private func isRevoked(_ installation: [UInt8], _ connection: PostgresConnection) async throws -> Bool {
        try await first("SELECT revoked_at FROM installations WHERE installation = \(Data(installation))", as: Int64?.self, on: connection)
            .flatMap { $0 } != nil
    }

    private func key(of installation: [UInt8], _ connection: PostgresConnection) async throws -> InstallationKey? {
        guard let row = try await rows("SELECT signing_key, revoked_at FROM installations WHERE installation = \(Data(installation))",
                                       on: connection).first else { return nil }
        let (key, revokedAt) = try row.decode((Data?, Int64?).self)
        return key.map { InstallationKey(signingKey: Array($0), revoked: revokedAt != nil) }
    }

    func installationKey(_ installation: [UInt8]) async throws -> InstallationKey? {
        try await pooled { [self] connection in try await key(of: installation, connection) }
    }

    private func oneTimePrekeys(of installation: [UInt8], _ connection: PostgresConnection) async throws -> Int {
        try await count("""
            SELECT count(*) FROM prekeys WHERE installation = \(Data(installation)) AND NOT fallback AND data IS NOT NULL
            """, on: connection)
    }

    func storePrekeys(_ prekeys: [UploadedPrekey], of installation: KnownInstallation) async throws -> Int {
        try await transaction { [self] connection in
            try await lock(.installation, installation.id, on: connection)
            guard try await !isRevoked(installation.id, connection) else { throw RelayError.revoked }
            try await learn(installation, connection)
            let id = Data(installation.id)
            for prekey in prekeys {
                try await execute("""
                    INSERT INTO prekeys (installation, prekey_id, fallback, data, uploaded)
                    VALUES (\(id), \(Int64(prekey.id)), \(prekey.fallback), \(Data(prekey.signed)), nextval('prekey_upload_order'))
                    ON CONFLICT DO NOTHING
                    """, on: connection)
            }
            return try await oneTimePrekeys(of: installation.id, connection)
        }
    }

    /// A signed request's checks inside its transaction: still not revoked, and
    /// a nonce never seen (its primary key refuses a second use on any relay).
    private func use(_ request: SignedRequest, _ connection: PostgresConnection) async throws {
        guard try await !isRevoked(request.installation, connection) else { throw RelayError.revoked }
        try await execute("DELETE FROM request_nonces WHERE seen_at < \(request.now - RelayRules.nonceLifetime)", on: connection)
        let inserted = try await rows("""
            INSERT INTO request_nonces (nonce, seen_at) VALUES (\(Data(request.nonce)), \(request.now)) ON CONFLICT DO NOTHING RETURNING 1
            """, on: connection)
        guard !inserted.isEmpty else { throw RelayError.replayedRequest }
    }

    func claimPrekey(_ request: SignedRequest, of target: [UInt8], limits: Relay.Limits) async throws -> ServedPrekey? {
        try await transaction { [self] connection in
            // The target's lock, then the requester's: the counts read below stay true until commit.
            try await lock(.installation, target, on: connection)
            try await lock(.requester, request.installation, on: connection)
            try await use(request, connection)
            try await execute("DELETE FROM prekey_claims WHERE at <= \(request.now - RelayRules.hour)", on: connection)
            let (requester, targetID) = (Data(request.installation), Data(target))
            guard let row = try await rows("""
                SELECT count(*) FILTER (WHERE requester = \(requester)),
                       count(*) FILTER (WHERE requester = \(requester) AND target = \(targetID)),
                       count(*) FILTER (WHERE target = \(targetID)),
                       count(*) FILTER (WHERE target = \(targetID) AND NOT fallback)
                FROM prekey_claims WHERE requester = \(requester) OR target = \(targetID)
                """, on: connection).first else { throw RelayStoreError.noRow("prekey_claims") }
            let (byRequester, byPair, ofTarget, oneTime) = try row.decode((Int64, Int64, Int64, Int64).self)
            let oneTimeAllowed = try PrekeyClaimCounts(
                byRequester: Int(byRequester), byPair: Int(byPair), ofTarget: Int(ofTarget), oneTimeOfTarget: Int(oneTime)
            ).admit(limits)
            guard let served = try await serve(targetID, oneTime: oneTimeAllowed, connection) else { return nil }
            try await execute("""
                INSERT INTO prekey_claims (requester, target, at, fallback) VALUES (\(requester), \(targetID), \(request.now), \(served.fallback))
                """, on: connection)
            return served
        }
    }

    /// Serves a one-time prekey (when `oneTime` and one is left) and forgets its
    /// key (its ID stays, so a re-upload never serves it again), or else the newest fallback (kept).
    private func serve(_ target: Data, oneTime: Bool, _ connection: PostgresConnection) async throws -> ServedPrekey? {
        if oneTime, let data = try await first("""
            WITH picked AS (
                SELECT prekey_id, data FROM prekeys WHERE installation = \(target) AND NOT fallback AND data IS NOT NULL
                ORDER BY uploaded LIMIT 1 FOR UPDATE
            )
            UPDATE prekeys SET data = NULL FROM picked
            WHERE prekeys.installation = \(target) AND prekeys.prekey_id = picked.prekey_id RETURNING picked.data
            """, as: Data.self, on: connection) {
            return ServedPrekey(data: data, fallback: false)
        }
        return try await first("""
            SELECT data FROM prekeys WHERE installation = \(target) AND fallback AND data IS NOT NULL ORDER BY uploaded DESC LIMIT 1
            """, as: Data.self, on: connection).map { ServedPrekey(data: $0, fallback: true) }
    }

    func prekeyStock(_ request: SignedRequest) async throws -> PrekeyStock {
        try await transaction { [self] connection in
            try await use(request, connection)
            let (target, since) = (Data(request.installation), request.now - RelayRules.hour)
            guard let row = try await rows("""
                SELECT count(*) FILTER (WHERE NOT fallback), count(*) FILTER (WHERE fallback)
                FROM prekey_claims WHERE target = \(target) AND at > \(since)
                """, on: connection).first else { throw RelayStoreError.noRow("prekey_claims") }
            let (oneTime, fallback) = try row.decode((Int64, Int64).self)
            return PrekeyStock(oneTimeRemaining: try await oneTimePrekeys(of: request.installation, connection),
                               oneTimeServedLastHour: Int(oneTime), fallbackServedLastHour: Int(fallback))
        }
    }

    func admitUpload(_ request: SignedRequest, perHour: Int) async throws {
        try await transaction { [self] connection in
            try await lock(.uploader, request.installation, on: connection)
            try await use(request, connection)
            let installation = Data(request.installation)
            let recent = try await count("""
                SELECT count(*) FROM uploads WHERE installation = \(installation) AND at > \(request.now - RelayRules.hour)
                """, on: connection)
            guard recent < perHour else { throw RelayRules.uploadLimited(perHour) }
            try await execute("INSERT INTO uploads (installation, at) VALUES (\(installation), \(request.now))", on: connection)
        }
    }

    // MARK: - Backups

    func addBackup(_ backup: BackupRecord) async throws {
        try await transaction { [self] connection in
            try await execute("""
                INSERT INTO backups (id, installation, locator, size, digest, created_at, expires_at, delete_after_download)
                VALUES (\(backup.id), \(Data(backup.installation)), \(backup.locator), \(Int64(backup.size)), \(backup.digest),
                        \(backup.createdAt), \(backup.expiresAt), \(backup.deleteAfterDownload))
                """, on: connection)
        }
    }

    private static let backupColumns = "id, installation, locator, size, digest, created_at, expires_at, delete_after_download"

    private static func record(_ row: PostgresRow) throws -> BackupRecord {
        let (id, installation, locator, size, digest, created, expires, once) =
            try row.decode((String, Data, String?, Int64, String, Int64, Int64, Bool).self)
        return BackupRecord(id: id, installation: Array(installation), locator: locator, size: Int(size), digest: digest,
                            createdAt: created, expiresAt: expires, deleteAfterDownload: once)
    }

    func takeBackup(_ id: String, now: Int64) async throws -> BackupRecord? {
        try await transaction { [self] connection in
            // FOR UPDATE: two relays taking one delete-after-download file serve it once.
            guard let row = try await rows(PostgresQuery(unsafeSQL: """
                SELECT \(Self.backupColumns) FROM backups WHERE id = $1 AND NOT claimed AND expires_at > $2 FOR UPDATE
                """, binds: try Self.binds(id, now)), on: connection).first else { return nil }
            let backup = try Self.record(row)
            if backup.deleteAfterDownload {
                try await execute("UPDATE backups SET claimed = true WHERE id = \(id)", on: connection)
            }
            return backup
        }
    }

    func release(_ id: String) async throws {
        try await transaction { [self] connection in
            try await execute("UPDATE backups SET claimed = false WHERE id = \(id)", on: connection)
        }
    }

    func removeBackup(_ id: String) async throws {
        try await transaction { [self] connection in
            try await execute("DELETE FROM backups WHERE id = \(id)", on: connection)
        }
    }

    func backups(locator: String, now: Int64) async throws -> [BackupRecord] {
        try await pooled { [self] connection in
            try await rows(PostgresQuery(unsafeSQL: """
                SELECT \(Self.backupColumns) FROM backups WHERE locator = $1 AND NOT claimed AND expires_at > $2 ORDER BY created_at, id
                """, binds: try Self.binds(locator, now)), on: connection).map(Self.record)
        }
    }

    func removeExpiredBackups(now: Int64) async throws -> [String] {
        try await transaction { [self] connection in
            let ids = try await rows("DELETE FROM backups WHERE expires_at <= \(now) RETURNING id", on: connection).map { try $0.decode(String.self) }
            try await execute("DELETE FROM uploads WHERE at < \(now - RelayRules.hour)", on: connection)
            return ids
        }
    }

    func check() async throws {
        try await pooled { [self] connection in try await execute("SELECT 1", on: connection) }
    }

    func backupIDs() async throws -> Set<String> {
        try await pooled { [self] connection in
            Set(try await rows("SELECT id FROM backups", on: connection).map { try $0.decode(String.self) })
        }
    }

    private static func binds(_ text: String, _ number: Int64) throws -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(text)
        binds.append(number)
        return binds
    }

    // MARK: - Schema

    /// Applies the migrations this database lacks, in order, each in its own
    /// transaction; relays starting together take turns (an advisory lock).
    private func migrate() async throws {
        try await transaction { [self] connection in
            try await lock(.migrations, "relay", on: connection)
            try await execute("CREATE TABLE IF NOT EXISTS relay_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                                       on: connection)
            let applied = Set(try await rows("SELECT name FROM relay_migrations", on: connection).map { try $0.decode(String.self) })
            for migration in PostgresRelaySchema.migrations where !applied.contains(migration.name) {
                for statement in migration.statements {
                    try await execute(PostgresQuery(unsafeSQL: statement), on: connection)
                }
                try await execute("INSERT INTO relay_migrations (name, applied_at) VALUES (\(migration.name), \(Int64.nowMillis))",
                                           on: connection)
            }
        }
    }
}

/// Failures of a relay store that are not the database's own errors.
enum RelayStoreError: Error, CustomStringConvertible {
    case badDatabaseURL(String)
    /// A statement that always returns a row returned none.
    case noRow(String)
    case timedOut(Duration)

    var description: String {
        switch self {
        case let .badDatabaseURL(detail): "bad database URL: \(detail)"
        case let .noRow(table): "the database returned no row from \(table)"
        case let .timedOut(limit): "the database did not answer within \(limit)"
        }
    }
}

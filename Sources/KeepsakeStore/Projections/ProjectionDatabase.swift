import Foundation
import GRDB

/// What `Store.open` does with a projection database it cannot use.
public enum DamagedProjections: Sendable {
    /// Throw `KeepsakeError.projectionsDamaged`, leaving the file as it is (the default).
    case refuse
    /// Check the file (`PRAGMA quick_check`); when it is damaged, move it aside
    /// (renamed, never deleted) and rebuild the projections from the log.
    case setAside
}

/// Opens the projection database and applies the migrations of the store's
/// tables (`Migrations/Store/`) and of each extension's, each under its own
/// namespace: `store.0001_store`, `messaging.0001_messaging`.
package enum ProjectionDatabase {
    /// The store's own migrations.
    package static let storeMigrations = EmbeddedMigrations.all.map { ProjectionMigration(identifier: $0.identifier, sql: $0.sql) }

    /// The first migration of schema 1, when every migration shared one namespace.
    static let schemaOneMarker = "0001_projections"

    /// Opens (creating if missing) the database at `path` with the tables of
    /// the store and of `extensions`; with `.setAside`, a damaged file is moved
    /// aside first and its new path returned.
    static func open(
        at path: String, damaged: DamagedProjections, extensions: [any StoreExtension]
    ) throws(KeepsakeError) -> (pool: DatabasePool, setAside: String?) {
        do {
            return (try open(at: path, check: damaged == .setAside, extensions: extensions), nil)
        } catch .projectionsDamaged where damaged == .setAside {
            let aside = try setAside(path)
            return (try open(at: path, check: false, extensions: extensions), aside)
        }
    }

    /// Creates or updates the tables of one projection: `store`'s or an extension's.
    static func migrate(_ writer: some DatabaseWriter, namespace: String, _ migrations: [ProjectionMigration]) throws {
        var migrator = DatabaseMigrator()
        for migration in migrations {
            migrator.registerMigration("\(namespace).\(migration.identifier)") { db in try db.execute(sql: migration.sql) }
        }
        let applied = try writer.read { db in try migrator.appliedIdentifiers(db) }
        let newer = applied.filter { $0.hasPrefix(namespace + ".") && !migrator.migrations.contains($0) }
        guard newer.isEmpty else {
            throw KeepsakeError.projectionsFromNewerSchema(path: writer.path, applied: newer.sorted(), known: migrator.migrations)
        }
        try migrator.migrate(writer)
    }

    /// A database of schema 1 is emptied: every table goes, and the store
    /// rebuilds the projections from the log (they are a function of it).
    private static func dropSchemaOne(_ writer: some DatabaseWriter) throws {
        try writer.writeWithoutTransaction { db in
            guard try db.tableExists("grdb_migrations"),
                  try String.fetchOne(db, sql: "SELECT identifier FROM grdb_migrations WHERE identifier = ?", arguments: [schemaOneMarker]) != nil
            else { return }
            try db.inTransaction {
                let virtual = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")
                for table in virtual { try db.execute(sql: "DROP TABLE \(table.quotedDatabaseIdentifier)") }
                let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                for table in tables { try db.execute(sql: "DROP TABLE \(table.quotedDatabaseIdentifier)") }
                return .commit
            }
        }
    }

    /// The writer's page cache: large projector transactions stay in memory
    /// instead of spilling pages early. Readers keep SQLite's default.
    static let writerCacheKiB = 65_536
    /// The writer's page cache during a bulk load (`withBulkCache`). A bulk load
    /// writes rows in order and sorts index entries once at the end, within this
    /// much memory: at 1M messages 16 MiB restores as fast as 64 MiB and peaks
    /// about 95 MiB lower (Benchmarks/README.md).
    static let bulkCacheKiB = 16_384

    /// Runs a bulk load (`body`) on the writer connection `db` with the smaller bulk page cache.
    static func withBulkCache<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        try db.execute(sql: "PRAGMA cache_size = -\(bulkCacheKiB)")
        defer { try? db.execute(sql: "PRAGMA cache_size = -\(writerCacheKiB)") }
        return try body()
    }

    private static func open(at path: String, check: Bool, extensions: [any StoreExtension]) throws(KeepsakeError) -> DatabasePool {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw .projectionsDamaged(path: path, reason: "it is a directory, not a file")
        }
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            // Projections can be rebuilt from the log: no fsync per commit.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Overwrite deleted content (deleted messages) instead of leaving it in free pages.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        configuration.busyMode = .timeout(30)
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            if check, let problem = try pool.read({ db in try String.fetchOne(db, sql: "PRAGMA quick_check") }), problem != "ok" {
                throw KeepsakeError.projectionsDamaged(path: path, reason: problem)
            }
            try dropSchemaOne(pool)
            try migrate(pool, namespace: Projector.name, storeMigrations)
            for ext in extensions { try migrate(pool, namespace: ext.name, ext.migrations) }
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA cache_size = -\(writerCacheKiB)") }
            return pool
        } catch {
            throw KeepsakeError(database: error, path: path)
        }
    }

    /// Renames the database (and its WAL and shared-memory files) to
    /// `<name>.damaged-<UTC time>`; returns the new path of the database.
    private static func setAside(_ path: String) throws(KeepsakeError) -> String {
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let aside = "\(path).damaged-\(stamp)"
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            do {
                try FileManager.default.moveItem(atPath: path + suffix, toPath: aside + suffix)
            } catch {
                throw .cannotAccess(path: path + suffix, reason: FileErrors.reason(error))
            }
        }
        return aside
    }
}

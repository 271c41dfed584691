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

/// Opens the projection database and applies the migrations from `Migrations/`.
enum ProjectionDatabase {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in EmbeddedMigrations.all {
            migrator.registerMigration(migration.identifier) { db in try db.execute(sql: migration.sql) }
        }
        return migrator
    }

    /// Opens (creating if missing) the database at `path`; with `.setAside`, a
    /// damaged file is moved aside first and its new path returned.
    static func open(at path: String, damaged: DamagedProjections) throws(KeepsakeError) -> (pool: DatabasePool, setAside: String?) {
        do {
            return (try open(at: path, check: damaged == .setAside), nil)
        } catch .projectionsDamaged where damaged == .setAside {
            let aside = try setAside(path)
            return (try open(at: path, check: false), aside)
        }
    }

    private static func open(at path: String, check: Bool) throws(KeepsakeError) -> DatabasePool {
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
        let migrator = Self.migrator
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            if check, let problem = try pool.read({ db in try String.fetchOne(db, sql: "PRAGMA quick_check") }), problem != "ok" {
                throw KeepsakeError.projectionsDamaged(path: path, reason: problem)
            }
            let superseded = try pool.read { db in try migrator.hasBeenSuperseded(db) }
            if superseded {
                let applied = try pool.read { db in try migrator.appliedIdentifiers(db) }
                throw KeepsakeError.projectionsFromNewerSchema(path: path, applied: applied.sorted(), known: migrator.migrations)
            }
            try migrator.migrate(pool)
            // The writer gets a 64 MiB page cache, so large projector transactions
            // stay in memory instead of spilling pages early; readers keep the default.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA cache_size = -65536") }
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

import Foundation
import GRDB

/// Opens the projection database and applies the migrations from `Migrations/`.
enum ProjectionDatabase {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in EmbeddedMigrations.all {
            migrator.registerMigration(migration.identifier) { db in try db.execute(sql: migration.sql) }
        }
        return migrator
    }

    static func open(at path: String) throws(KeepsakeError) -> DatabasePool {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            // Projections can be rebuilt from the log: no fsync per commit.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Overwrite deleted content (deleted messages) instead of leaving it in free pages.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        configuration.busyMode = .timeout(30)
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw .database("cannot open \(path): \(error)")
        }
        let migrator = Self.migrator
        do {
            let superseded = try pool.read { db in try migrator.hasBeenSuperseded(db) }
            if superseded {
                let applied = try pool.read { db in try migrator.appliedIdentifiers(db) }
                throw KeepsakeError.projectionsFromNewerSchema(path: path, applied: applied.sorted(), known: migrator.migrations)
            }
            try migrator.migrate(pool)
            // The writer gets a 64 MiB page cache, so large projector transactions
            // stay in memory instead of spilling pages early; readers keep the default.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA cache_size = -65536") }
        } catch {
            throw KeepsakeError(database: error, path: path)
        }
        return pool
    }
}

import Foundation
import GRDB
import KeepsakeLog

/// What `Store.check()` found: every problem of the log and of the projections.
public struct StoreCheck: Sendable, Equatable {
    /// What part of the store a problem is in.
    public enum Area: String, Sendable {
        case log, projections
    }

    /// One problem the check found.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        /// Where it is.
        public let area: Area
        /// What is wrong, and what to do.
        public let message: String
        /// `<area>: <message>`.
        public var description: String { "\(area.rawValue): \(message)" }
    }

    /// What the log check read (records, sealed, erased).
    public let log: LogVerification
    /// The log position the projections reflect, which the fresh rebuild they were compared with stopped at.
    public let projectedUpTo: UInt64
    /// What the check found; empty for a healthy store.
    public let problems: [Problem]

    /// True when the check found nothing.
    public var isClean: Bool { problems.isEmpty }
}

extension Store {
    /// Checks the store as `restic check` checks a repository, changing nothing:
    /// the log (`EventLog.verify()`: contiguous sequences, every record decodes
    /// and authenticates, key slots present, indexes consistent), SQLite's
    /// integrity check and the full-text index's, and the projections row by
    /// row against a fresh rebuild from the log in a temporary file.
    public func check() throws(KeepsakeError) -> StoreCheck {
        let verification: LogVerification
        do { verification = try log.verify() } catch { throw .log(error) }
        var problems = verification.problems.map { StoreCheck.Problem(area: .log, message: $0.description) }
        if verification.unlistedProblems > 0 {
            problems.append(.init(area: .log, message: "\(verification.unlistedProblems) more problems"))
        }
        let cursors = try read(ProjectionCursors.all)
        let upTo = cursors[Projector.name].map { $0.log == log.id ? $0.sequence : 0 } ?? 0
        for (projection, cursor) in cursors.sorted(by: { $0.key < $1.key }) where cursor.log != log.id {
            problems.append(.init(area: .projections, message: "the \(projection) tables were built from log \(cursor.log.hex), not this store's"))
        }
        problems += try checkProjectionIntegrity().map { .init(area: .projections, message: $0) }
        do {
            problems += try compareWithFreshRebuild(upTo: upTo).map { .init(area: .projections, message: $0) }
        } catch {
            problems.append(.init(area: .projections, message: "they could not be compared with a rebuild from the log: \(error)"))
        }
        return StoreCheck(log: verification, projectedUpTo: upTo, problems: problems)
    }

    /// SQLite's `integrity_check` and FTS5's own check of the search index.
    private func checkProjectionIntegrity() throws(KeepsakeError) -> [String] {
        do {
            var problems = try pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }.filter { $0 != "ok" }
            do {
                try pool.writeWithoutTransaction { db in
                    try db.execute(sql: "INSERT INTO message_search (message_search) VALUES ('integrity-check')")
                }
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CORRUPT {
                problems.append("the full-text index does not match the messages: \(error.message ?? "corrupt")")
            }
            return problems
        } catch {
            throw KeepsakeError(database: error, path: pool.path)
        }
    }

    /// Rebuilds the projections from the log, up to where the live ones stand,
    /// into a temporary file, and lists the tables whose rows differ.
    private func compareWithFreshRebuild(upTo end: UInt64) throws(KeepsakeError) -> [String] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-check-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileErrors.createDirectory(atPath: folder.path)
        let freshPath = folder.appendingPathComponent("projections.sqlite").path
        let fresh = try ProjectionDatabase.open(at: freshPath, damaged: .refuse, extensions: extensions).pool
        do {
            try fresh.write { db in try replayLog(into: db, upTo: end) }
            return try fresh.writeWithoutTransaction { db in
                try db.execute(sql: "ATTACH DATABASE ? AS live", arguments: [pool.path])
                defer { try? db.execute(sql: "DETACH DATABASE live") }
                var differences: [String] = []
                for table in projectedTables.map(\.rawValue) {
                    let missing = try Int.fetchOne(db, sql: "SELECT count(*) FROM (SELECT * FROM main.\(table) EXCEPT SELECT * FROM live.\(table))") ?? 0
                    let extra = try Int.fetchOne(db, sql: "SELECT count(*) FROM (SELECT * FROM live.\(table) EXCEPT SELECT * FROM main.\(table))") ?? 0
                    if missing + extra > 0 {
                        differences.append("table \(table) differs from a rebuild from the log: \(missing) rows missing or changed, \(extra) extra; rebuilding the projections replaces them")
                    }
                }
                return differences
            }
        } catch {
            throw KeepsakeError(database: error, path: freshPath)
        }
    }
}

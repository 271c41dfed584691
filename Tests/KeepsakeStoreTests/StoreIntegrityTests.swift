import Foundation
import GRDB
import Testing
@testable import KeepsakeStore
@testable import KeepsakeLog

/// A store knows itself: damaged, missing or swapped files are typed errors
/// that change nothing, never a crash, a silent new log, or events read as erased.
@Suite struct StoreIntegrityTests {
    let dir = TemporaryDirectory()
    var log: URL { dir.store.appendingPathComponent("log") }
    var dataFile: URL { log.appendingPathComponent("data.mdb") }
    var slots: URL { log.appendingPathComponent("keys.slots") }
    var projections: URL { dir.store.appendingPathComponent("projections.sqlite") }

    /// A closed store with a generated history (sealed messages, erasures, ratchet steps).
    private func makeStore() throws -> LogID {
        let store = try Store.open(at: dir.store)
        try store.appendGenerated(messages: 400, conversations: 6)
        return store.logID
    }

    /// Every file of the store, by relative path, to show that a refused open changed nothing.
    private func snapshot() throws -> [String: Data] {
        var files: [String: Data] = [:]
        let root = dir.store.path
        for path in try FileManager.default.subpathsOfDirectory(atPath: root) where !path.hasSuffix("lock.mdb") {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory), !isDirectory.boolValue { files[path] = try Data(contentsOf: URL(fileURLWithPath: root + "/" + path)) }
        }
        return files
    }

    private func expectRefused(_ expected: KeepsakeError) throws {
        let before = try snapshot()
        #expect(throws: expected) { try Store.open(at: dir.store) }
        #expect(try snapshot() == before, "a refused open changes nothing")
    }

    @Test func theMarkerNamesTheLogAndAFormatOneMarkerIsCompleted() throws {
        let id = try makeStore()
        let marker = try String(contentsOf: dir.store.appendingPathComponent("STORE"), encoding: .utf8)
        #expect(marker == "keepsake-store format 2\nlog \(id.hex)\n")
        try Data("keepsake-store format 1\n".utf8).write(to: dir.store.appendingPathComponent("STORE"))
        _ = try Store.open(at: dir.store)
        #expect(try String(contentsOf: dir.store.appendingPathComponent("STORE"), encoding: .utf8) == marker)
    }

    @Test func aMissingLogIsRefusedNotReplaced() throws {
        _ = try makeStore()
        try FileManager.default.removeItem(at: log)
        #expect(throws: KeepsakeError.log(.missing(path: log.path, reason: "there is no data.mdb"))) { try Store.open(at: dir.store) }
        #expect(!FileManager.default.fileExists(atPath: dataFile.path), "no new log was made")
    }

    @Test func anEmptyLogFileIsRefused() throws {
        _ = try makeStore()
        try Data().write(to: dataFile)
        try expectRefused(.log(.missing(path: log.path, reason: "data.mdb is empty")))
    }

    @Test func anotherStoresLogIsRefused() throws {
        let id = try makeStore()
        let other = TemporaryDirectory()
        let otherID = try Store.open(at: other.store).logID
        try FileManager.default.removeItem(at: log)
        try FileManager.default.copyItem(at: other.store.appendingPathComponent("log"), to: log)
        try expectRefused(.logReplaced(path: log.path, expected: id, found: otherID))
    }

    @Test func missingOrTruncatedKeySlotsAreDamageNotErasure() throws {
        _ = try makeStore()
        let original = try Data(contentsOf: slots)
        let slotCount = (original.count - 16) / 32
        try FileManager.default.removeItem(at: slots)
        try expectRefused(.log(.damaged(path: slots.path, reason: "the key slot file is missing; \(slotCount) sealed events need it")))
        try original.prefix(100).write(to: slots)
        try expectRefused(.log(.damaged(
            path: slots.path, reason: "the key slot file is truncated: 100 bytes where \(slotCount) slots need \(original.count)")))
    }

    @Test func aTruncatedLogFileIsRefusedBeforeItIsMapped() throws {
        _ = try makeStore()
        let original = try Data(contentsOf: dataFile)
        for size in [original.count / 2, original.count - 4096] {
            try original.prefix(size).write(to: dataFile)
            try expectRefused(.log(.damaged(
                path: dataFile.path, reason: "it is truncated: \(size) bytes where its pages need \(original.count)")))
        }
    }

    @Test func aDamagedMetaPageIsRefused() throws {
        _ = try makeStore()
        var bytes = try Data(contentsOf: dataFile)
        bytes.replaceSubrange(128..<136, with: [0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0])  // meta 0's main root
        try bytes.write(to: dataFile)
        let before = try snapshot()
        #expect {
            try Store.open(at: dir.store)
        } throws: { error in
            guard case let .log(.damaged(path, reason)) = error as? KeepsakeError else { return false }
            return path == dataFile.path && reason.hasPrefix("meta page 0 is damaged: a root page (2147483647) lies outside")
        }
        #expect(try snapshot() == before)
    }

    @Test func zeroedBTreePagesAreAnErrorNotAnAbort() throws {
        _ = try makeStore()
        var bytes = try Data(contentsOf: dataFile)
        let pageSize = 4096
        // Zero every leaf page in use (its header names its own page number).
        for page in 2..<(bytes.count / pageSize) {
            let start = page * pageSize
            let number = bytes[start..<start + 8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            let flags = Int(bytes[start + 10]) | Int(bytes[start + 11]) << 8
            if number == page && flags & 0x02 != 0 { bytes.replaceSubrange(start..<start + pageSize, with: Data(count: pageSize)) }
        }
        try bytes.write(to: dataFile)
        #expect {
            let store = try Store.open(at: dir.store)
            try store.rebuildProjections()
        } throws: { error in
            guard case let .log(.damaged(path, reason)) = error as? KeepsakeError else { return false }
            return path == log.path && reason.contains("MDB_")
        }
    }

    @Test func damagedProjectionsAreRefusedThenSetAsideAndRebuilt() throws {
        _ = try makeStore()
        let expected = try Store.open(at: dir.store).contentDump()
        let damages: [(String, () throws -> Void)] = [
            ("file is not a database", { try Data(repeating: 0x5a, count: 100_000).write(to: projections) }),
            ("it is a directory, not a file", { try FileManager.default.createDirectory(at: projections, withIntermediateDirectories: false) }),
        ]
        for (reason, damage) in damages {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: projections.path + suffix) }
            try damage()
            try expectRefused(.projectionsDamaged(path: projections.path, reason: reason))
            var options = StoreOptions()
            options.damagedProjections = .setAside
            let store = try Store.open(at: dir.store, options: options)
            let aside = try #require(store.setAsideProjections)
            #expect(aside.lastPathComponent.hasPrefix("projections.sqlite.damaged-"))
            #expect(FileManager.default.fileExists(atPath: aside.path), "the damaged file is kept")
            #expect(try store.contentDump() == expected, "rebuilt from the log")
            try FileManager.default.removeItem(at: aside)
        }
    }

    @Test func checkFindsNothingInAHealthyStore() throws {
        _ = try makeStore()
        let report = try Store.open(at: dir.store).check()
        #expect(report.isClean, "\(report.problems)")
        #expect(report.log.records > 400 && report.log.sealed > 0 && report.log.erased > 0)
        #expect(report.projectedUpTo == UInt64(report.log.records))
    }

    @Test func checkReportsAZeroedKeySlotAndProjectionsThatDifferFromTheLog() throws {
        _ = try makeStore()
        let store = try Store.open(at: dir.store)
        // The newest live message's key slot, zeroed behind the log's back.
        let newest = try #require(store.events(after: Cursor(log: store.logID, sequence: 0), limit: .max).last {
            if case .messageReceived = $0.payload { true } else { false }
        })
        let bytes = try #require(try store.log.readTransaction { txn in try txn.value(sequenceKey(newest.sequence), in: store.log.databases.events) })
        guard case let .success(record) = RecordCodec.decode(bytes) else { Issue.record("the record does not decode"); return }
        #expect(record.flags.contains(.sealed))
        let keySlot = record.keySlot
        try store.write { db in try db.execute(sql: "UPDATE conversations SET unread_count = unread_count + 7") }
        let handle = try FileHandle(forWritingTo: slots)
        try handle.seek(toOffset: 16 + 32 * keySlot)
        try handle.write(contentsOf: Data(count: 32))
        try handle.close()
        let report = try store.check()
        #expect(!report.isClean)
        #expect(report.problems.contains(.init(
            area: .log, message: "record \(newest.sequence): its key slot \(keySlot) is zeroed, but no event erased or superseded it")))
        #expect(report.problems.contains { $0.area == .projections && $0.message.hasPrefix("table conversations differs from a rebuild") })
    }
}

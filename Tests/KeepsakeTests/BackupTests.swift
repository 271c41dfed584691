import Foundation
import Testing
@testable import Keepsake
import KeepsakeCrypto

/// A backup key of 32 copies of `byte`.
func rawKey(_ byte: UInt8 = 7) -> BackupKey {
    let key = try! SecureBytes(count: 32)
    key.withUnsafeMutableBytes { for i in $0.indices { $0[i] = byte } }
    return .raw(key)
}

/// A fresh store in a temporary directory, with a folder for backup files beside it.
final class BackupFixture {
    let dir = TemporaryDirectory()
    var backups: URL { dir.url.appendingPathComponent("backups") }

    init() {
        try! FileManager.default.createDirectory(at: backups, withIntermediateDirectories: true)
    }

    func store(_ name: String) throws -> Store {
        try Store.open(at: dir.url.appendingPathComponent(name))
    }

    func options(_ kind: BackupKind, incremental: Bool = false, key: BackupKey = rawKey(), chunkSize: Int = 4096) -> BackupOptions {
        var options = BackupOptions(kind: kind, key: key)
        options.incremental = incremental
        options.chunkSize = chunkSize
        return options
    }
}

@Suite struct BackupRoundTripTests {
    @Test func aFullHardBackupRestoresIdenticalProjections() throws {
        let f = BackupFixture()
        let source = try f.store("source")
        try source.appendGenerated(messages: 600, conversations: 12)
        let backup = try source.backup(into: f.backups, options: f.options(.hard))
        #expect(backup.header.kind == .hard)
        #expect(backup.file.lastPathComponent.hasPrefix("keepsake-hard-"))
        #expect(backup.file.pathExtension == "ksbak")

        let target = try f.store("target")
        let summary = try target.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
        #expect(summary.appended == Int(backup.events))
        #expect(summary.headVisibleAfter != nil)
        var sourceDump = try source.contentDump()
        var targetDump = try target.contentDump()
        // The restoring store adds its generation claim; everything else is equal.
        #expect(targetDump.removeValue(forKey: "installation_claims")!.count == sourceDump.removeValue(forKey: "installation_claims")!.count + 1)
        #expect(targetDump == sourceDump)
        #expect(try target.versionVector().covers(source.versionVector()))
    }

    @Test func incrementalsGiveTheSameStoreAsOneFullBackup() throws {
        let f = BackupFixture()
        let source = try f.store("source")
        try source.appendGenerated(messages: 300, conversations: 6, seed: 1)
        let full = try source.backup(into: f.backups, options: f.options(.soft))
        try source.appendGenerated(messages: 100, conversations: 6, seed: 2)
        let first = try source.backup(into: f.backups, options: f.options(.soft, incremental: true))
        try source.appendGenerated(messages: 100, conversations: 6, seed: 3)
        let second = try source.backup(into: f.backups, options: f.options(.soft, incremental: true))
        #expect(first.header.base?.id == full.header.id)
        #expect(second.header.base?.id == first.header.id)
        #expect(first.header.fromSequence == full.header.toSequence)
        #expect(second.events < full.events)
        #expect(Set([full.file, first.file, second.file]).count == 3, "backups made within one second get distinct names")

        let target = try f.store("target")
        // Given in any order, the chain is put back in order.
        let summary = try target.restore(from: [second.file, full.file, first.file], options: RestoreOptions(key: rawKey()))
        #expect(summary.backups.map(\.header.id) == [full.header.id, first.header.id, second.header.id])
        #expect(try target.contentDump(tables: Self.softTables) == source.contentDump(tables: Self.softTables))

        // The chain can also be restored link by link, across restores.
        let stepwise = try f.store("stepwise")
        _ = try stepwise.restore(from: [full.file], options: RestoreOptions(key: rawKey()))
        _ = try stepwise.restore(from: [first.file], options: RestoreOptions(key: rawKey()))
        _ = try stepwise.restore(from: [second.file], options: RestoreOptions(key: rawKey()))
        #expect(try stepwise.contentDump(tables: Self.softTables) == source.contentDump(tables: Self.softTables))
    }

    @Test func restoringTwiceFindsNothingNew() throws {
        let f = BackupFixture()
        let source = try f.store("source")
        try source.appendGenerated(messages: 200, conversations: 4)
        let backup = try source.backup(into: f.backups, options: f.options(.soft))
        let target = try f.store("target")
        _ = try target.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
        let before = try target.cursor()
        let again = try target.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
        #expect(again.nothingNew)
        #expect(try target.cursor() == before)
        // A store that already synced the events directly gets nothing new either.
        let synced = try f.store("synced")
        try synced.importEvents(source.events(after: Cursor(log: source.logID, sequence: 0), limit: 100_000))
        let afterSync = try synced.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
        #expect(afterSync.nothingNew)
        #expect(afterSync.duplicates == Int(backup.events))
    }

    @Test func aSoftRestoreMergesAndLeavesRestoredConversationsReadOnly() throws {
        let f = BackupFixture()
        let source = try f.store("source")
        let shared = ConversationID.generate(), mine = ConversationID.generate()
        try source.append(conversationCreated(shared, title: "Shared"))
        try source.append(ratchetStep(stream: "s-bob", peer: "bob", step: 1, state: "secret-state"))
        try source.append(message(.generate(), in: shared, "hello from source", at: 1_700_000_000_000))
        #expect(try source.conversation(shared)?.isWritable == true)
        let backup = try source.backup(into: f.backups, options: f.options(.soft))

        let target = try f.store("target")
        try target.append(conversationCreated(mine, title: "Mine", members: ["me", "carol"]))
        try target.append(ratchetStep(stream: "t-carol", peer: "carol", step: 1, state: "target-state"))
        _ = try target.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
        _ = try target.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
        let conversations = try target.conversations()
        #expect(Set(conversations.map(\.title)) == ["Shared", "Mine"])
        #expect(try target.messages(in: shared).messages.map(\.text) == ["hello from source"])
        // No session secrets travel in a soft backup: the restored conversation is read-only.
        #expect(try target.conversation(shared)?.isWritable == false)
        #expect(try target.conversation(mine)?.isWritable == true)
        let data = try Data(contentsOf: backup.file)
        #expect(data.range(of: Data("secret-state".utf8)) == nil)
    }

    @Test func anOlderBackupNeverRollsASessionBack() throws {
        // The Quorum case: a backup taken at step 2 is restored where step 5 already lives.
        let f = BackupFixture()
        let device = try f.store("device")
        try device.append(ratchetStep(stream: "dm", peer: "bob", step: 2, state: "state-2"))
        let old = try device.backup(into: f.backups, options: f.options(.hard))
        try device.append(ratchetStep(stream: "dm", peer: "bob", step: 5, state: "state-5"))

        var options = RestoreOptions(key: rawKey())
        options.force = true
        _ = try device.restore(from: [old.file], options: options)
        #expect(try device.log.currentStep(of: [0x02] + Array("dm".utf8))?.step == 5)
        #expect(try device.contentDump(tables: [.sessions])["sessions"]?.first?.contains("5") == true)
    }

    static let softTables: [ProjectedTable] = [.conversations, .members, .messages, .contacts, .consent, .preferences]
}

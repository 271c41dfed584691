import Foundation
import Synchronization
import Testing
@testable import KeepsakeStore
import KeepsakeMessaging
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
        try Store.open(at: dir.url.appendingPathComponent(name), options: StoreOptions(extensions: [MessagingExtension()]))
    }

    func options(_ kind: BackupKind, incremental: Bool = false, key: BackupKey = rawKey(), chunkSize: Int = 4096) -> BackupOptions {
        var options = BackupOptions(kind: kind, key: key)
        options.incremental = incremental
        options.chunkSize = chunkSize
        return options
    }
}

@Suite struct BackupRoundTripTests {
    /// A restore told to stop (between chunks) ends with `cancelled`, leaves the
    /// store consistent, and restoring again resumes and ends equal to a restore
    /// that was never cancelled.
    @Test func aCancelledRestoreStopsConsistentAndResumes() throws {
        let f = BackupFixture()
        let source = try f.store("source")
        try source.appendGenerated(messages: 8_000, conversations: 40, batch: 4_000)
        let backup = try source.backup(into: f.backups, options: f.options(.soft, chunkSize: 16 << 10))
        let clean = try f.store("clean")
        _ = try clean.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))

        let target = try f.store("target")
        let stop = Mutex(false)
        #expect(throws: BackupError.cancelled) {
            try target.restore(from: [backup.file], options: RestoreOptions(key: rawKey()), stoppingWhen: { stop.withLock { $0 } }) {
                if case let .applying(_, chunk, _) = $0, chunk >= 3 { stop.withLock { $0 = true } }
            }
        }
        #expect(try target.cursor().sequence < clean.cursor().sequence, "it stopped before the end")
        #expect(try target.check().isClean, "what it logged is projected")

        let resumed = try target.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
        #expect(resumed.appended > 0)
        #expect(try target.cursor().sequence == clean.cursor().sequence, "nothing twice")
        #expect(try target.contentDump() == clean.contentDump())
    }

    /// A restore's async sequence stops the restore when its consumer goes away:
    /// the store's backup lock is free soon after, the store is consistent, and a
    /// later restore finishes the job.
    @Test(.timeLimit(.minutes(5))) func aRestoreWhoseConsumerGoesAwayStops() async throws {
        let f = BackupFixture()
        let source = try f.store("source")
        try source.appendGenerated(messages: 4_000, conversations: 20, batch: 4_000)
        let backup = try source.backup(into: f.backups, options: f.options(.soft, chunkSize: 16 << 10))
        let target = try f.store("target")
        for try await update in target.restoring(from: [backup.file], options: RestoreOptions(key: rawKey())) {
            if case .progress(.applying) = update { break }
        }
        let cancelled = ContinuousClock.now
        var stopped: Duration?
        while stopped == nil, ContinuousClock.now - cancelled < .seconds(60) {
            if (try? BackupLock(store: target.directory)) != nil { stopped = ContinuousClock.now - cancelled } else { usleep(10_000) }
        }
        #expect(stopped != nil, "the restore stopped and released the store")
        print("the restore released the store \(stopped.map { "\($0)" } ?? "-") after its consumer went away")
        #expect(try target.check().isClean)
        _ = try target.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
        #expect(try target.cursor().sequence == backup.events, "every event of the file, once")
    }

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
        #expect(try source.isWritable(#require(try source.conversation(shared))))
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
        #expect(try !target.isWritable(#require(try target.conversation(shared))))
        #expect(try target.isWritable(#require(try target.conversation(mine))))
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

@Suite struct HardRestoreTests {
    @Test func aHardRestoreTakesOverTheInstallationAndTheOldStoreIsSuperseded() throws {
        let f = BackupFixture()
        let old = try f.store("old")
        try old.append(ratchetStep(stream: "dm", peer: "bob", step: 1, state: "state-1"))
        let backup = try old.backup(into: f.backups, options: f.options(.hard))
        let original = try #require(try old.installation())
        #expect(original.generation == 1 && !original.isSuperseded)

        let new = try f.store("new")
        _ = try new.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
        let restored = try #require(try new.installation())
        #expect(restored.id == original.id && restored.publicKey == original.publicKey)
        #expect(restored.generation == 2 && restored.holder.log == new.logID && !restored.isSuperseded)
        #expect(try new.currentSession("dm") == 1)

        // Once the old store learns of the new generation (a later issue sends it over
        // the network; here it is copied), it refuses to act as the installation.
        try old.importEvents(new.events(after: Cursor(log: new.logID, sequence: 0), limit: 10_000))
        let stale = try #require(try old.installation())
        #expect(stale.isSuperseded && stale.generation == 1 && stale.holder.generation == 2)
        #expect(throws: BackupError.store(.installationSuperseded(stale))) {
            try old.backup(into: f.backups, options: f.options(.soft))
        }
        #expect(throws: KeepsakeError.installationSuperseded(stale)) {
            try old.append(ratchetStep(stream: "dm", peer: "bob", step: 2, state: "state-2"))
        }
        try old.append(conversationCreated(.generate()))
    }

    @Test func aHardRestoreOntoAnotherInstallationNeedsForce() throws {
        let f = BackupFixture()
        let a = try f.store("a"), b = try f.store("b")
        let backup = try a.backup(into: f.backups, options: f.options(.hard))
        let mine = try b.createInstallation()
        let before = try b.cursor()
        #expect(throws: BackupError.storeHasInstallation(mine.id)) {
            try b.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
        }
        #expect(try b.cursor() == before)
        var forced = RestoreOptions(key: rawKey())
        forced.force = true
        _ = try b.restore(from: [backup.file], options: forced)
        #expect(try b.installation()?.id == a.installation()?.id)

        // The installation it replaced is retired: its keys are erased, so the store's
        // own hard backups hold one installation's keys and verify.
        let keys = try b.events(after: .start(of: b.logID), limit: 1_000).filter { $0.kind == EventKind(rawValue: 13) }
        #expect(keys.map { if case .erased = $0.content { "erased" } else { "live" } }.sorted() == ["erased", "live"])
        let again = try b.backup(into: f.backups, options: f.options(.hard))
        #expect(try Backup.verify([again.file], key: rawKey(), eventKinds: MessagingExtension().eventKinds).map(\.events) == [again.events])
    }

    /// One archive per conversation: each restores its conversation alone, and
    /// each extends its own chain.
    @Test func eachConversationGetsAnArchiveOfItsOwn() throws {
        let f = BackupFixture()
        let source = try f.store("source")
        let chats = (0..<3).map { ConversationStart(title: "Chat \($0)", members: ["me", "bob"], createdBy: "me") }
        try source.append(contentsOf: chats.map { EventDraft(.conversationCreated($0)) })
        for chat in chats { try source.append(.messageReceived(MessagePost(conversation: chat.id, sender: "bob", text: "in \(chat.title)"))) }
        let archives = try source.backupEachConversation(into: f.backups, options: f.options(.soft))
        #expect(archives.map(\.header.conversations) == chats.map(\.id).sorted().map { [$0] })
        for archive in archives {
            let target = try f.store("target-\(archive.header.id)")
            _ = try target.restore(from: [archive.file], options: RestoreOptions(key: rawKey()))
            #expect(try target.conversations().map(\.id) == archive.header.conversations)
        }

        try source.append(.messageReceived(MessagePost(conversation: chats[0].id, sender: "bob", text: "later")))
        let increments = try source.backupEachConversation(into: f.backups, options: f.options(.soft, incremental: true))
        #expect(increments.map { $0.header.base?.id } == archives.map(\.header.id))
        #expect(increments.map(\.events).reduce(0, +) == 1)
    }

    /// Backups and restores report how far they have come from their start, and the time left.
    @Test func progressGrowsToTheWholeWithATimeLeft() throws {
        let f = BackupFixture()
        let source = try f.store("source")
        try source.appendGenerated(messages: 2_000, conversations: 10)
        var backupProgress: [ProgressEstimate] = []
        let backup = try source.backup(into: f.backups, options: f.options(.soft, chunkSize: 4096)) { backupProgress.append($0) }
        #expect(backupProgress.count > 1 && backupProgress.last?.fraction == 1)
        #expect(zip(backupProgress, backupProgress.dropFirst()).allSatisfy { $0.fraction <= $1.fraction })

        var restoreProgress: [ProgressEstimate] = []
        _ = try f.store("target").restore(from: [backup.file], options: RestoreOptions(key: rawKey())) {
            if case let .estimated(estimate) = $0 { restoreProgress.append(estimate) }
        }
        #expect(restoreProgress.count > 2 && restoreProgress.last?.fraction == 1)
        #expect(zip(restoreProgress, restoreProgress.dropFirst()).allSatisfy { $0.fraction <= $1.fraction && $0.elapsed <= $1.elapsed })
        #expect(restoreProgress.contains { $0.fraction > 0.01 && $0.fraction < 1 && $0.remaining != nil })
    }

    /// A dry run says exactly what the backup would write, and writes nothing:
    /// no file, and no change to the chain the next incremental extends.
    @Test func anEstimateMatchesTheBackupAndWritesNothing() throws {
        let f = BackupFixture()
        let source = try f.store("source")
        try source.appendGenerated(messages: 400, conversations: 6)
        let options = f.options(.soft, chunkSize: 2048)
        let full = try source.backup(into: f.backups, options: options)
        try source.appendGenerated(messages: 50, conversations: 6, seed: 9)
        var incremental = options
        incremental.incremental = true
        let estimate = try source.estimateBackup(options: incremental)
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.backups.path) == [full.file.lastPathComponent])
        let written = try source.backup(into: f.backups, options: incremental)
        #expect(estimate.base == full.header.id && written.header.base?.id == full.header.id, "the dry run did not move the chain")
        #expect(estimate.events == written.events && estimate.fileBytes == written.fileBytes && estimate.plaintextBytes == written.plaintextBytes)
        #expect(estimate.eventsByElement.values.reduce(0, +) == estimate.events && estimate.eventsByElement["messages"] ?? 0 > 0)
    }

    /// "Direct conversations only" is a selection by kind: the chain's
    /// incrementals carry direct conversations started after the full backup.
    @Test func aSelectionByConversationKindCoversLaterConversations() throws {
        let f = BackupFixture()
        let source = try f.store("source")
        let direct = ConversationStart(kind: .direct, title: "Bob", members: ["me", "bob"], createdBy: "me")
        let group = ConversationStart(kind: .group, title: "Team", members: ["me", "bob", "carol"], createdBy: "me")
        try source.append(contentsOf: [.conversationCreated(direct), .conversationCreated(group)].map { EventDraft($0) })
        try source.append(.messageReceived(MessagePost(conversation: group.id, sender: "carol", text: "group words")))
        var options = f.options(.soft)
        options.conversationKinds = [.direct]
        let full = try source.backup(into: f.backups, options: options)
        #expect(full.header.conversationKinds == [.direct])

        let later = ConversationStart(kind: .direct, title: "Dave", members: ["me", "dave"], createdBy: "me")
        try source.append(.conversationCreated(later))
        try source.append(.messageReceived(MessagePost(conversation: later.id, sender: "dave", text: "direct words")))
        options.incremental = true
        let increment = try source.backup(into: f.backups, options: options)
        #expect(increment.events == 2)

        let target = try f.store("target")
        _ = try target.restore(from: [full.file, increment.file], options: RestoreOptions(key: rawKey()))
        #expect(Set(try target.conversations().map(\.title)) == ["Bob", "Dave"])
        #expect(try target.search("words").map(\.text) == ["direct words"])
    }

    @Test func softBackupsCarryNoKeysAndSelectionsNarrowThem() throws {
        let f = BackupFixture()
        let source = try f.store("source")
        let keep = ConversationID.generate(), skip = ConversationID.generate()
        try source.append(conversationCreated(keep, title: "Keep"))
        try source.append(conversationCreated(skip, title: "Skip"))
        try source.append(message(.generate(), in: keep, "kept words", at: 1_700_000_000_000))
        try source.append(message(.generate(), in: skip, "skipped words", at: 1_700_000_000_001))
        try source.append(ratchetStep(stream: "dm", peer: "bob", step: 1, state: "state"))
        var options = f.options(.soft)
        options.elements = [.messages, .conversations, .sessions]
        options.conversations = [keep]
        let backup = try source.backup(into: f.backups, options: options)
        #expect(backup.header.elements == [.messages, .conversations], "a soft backup never selects sessions")

        let target = try f.store("target")
        _ = try target.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
        #expect(try target.conversations().map(\.title) == ["Keep"])
        #expect(try target.search("words").map(\.text) == ["kept words"])
        #expect(try target.installation() == nil)
        #expect(try target.contentDump(tables: [.sessions])["sessions"] == [])
    }

    @Test func oneBackupOrRestoreAtATime() throws {
        let f = BackupFixture()
        let store = try f.store("store")
        do {
            let held = try BackupLock(store: store.directory)
            #expect(throws: BackupError.busy(path: store.directory.path)) {
                try store.backup(into: f.backups, options: f.options(.soft))
            }
            withExtendedLifetime(held) {}
        }
        _ = try store.backup(into: f.backups, options: f.options(.soft))
    }
}

extension Store {
    /// The current step of a session stream, from the log.
    func currentSession(_ stream: String) throws -> UInt64? {
        try log.currentStep(of: [0x02] + Array(stream.utf8))?.step
    }
}

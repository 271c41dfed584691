import Foundation
import Testing
@testable import KeepsakeStore

@Suite struct AutomaticBackupTests {
    /// The next report, or nil when none comes within `seconds`.
    private func next(_ iterator: inout AsyncStream<AutomaticBackupReport>.Iterator, within seconds: Double = 5) async -> AutomaticBackupReport? {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: .seconds(seconds)) }
            defer { group.cancelAll() }
            return await iterator.next(isolation: #isolation)
        }
    }

    @Test func backupsFollowTheAddressBookAndTheEventCount() async throws {
        let f = BackupFixture()
        let store = try f.store("store")
        let chat = ConversationID.generate()
        try store.append(conversationCreated(chat))
        var policy = AutomaticBackupPolicy(directory: f.backups, options: f.options(.soft), everyEvents: 10)
        policy.options.chunkSize = 1 << 16
        let automatic = store.startAutomaticBackups(policy)
        var reports = automatic.reports.makeAsyncIterator()

        guard case let .wrote(full)? = await next(&reports) else { Issue.record("no first backup"); return }
        #expect(!full.header.isIncremental)

        var contact = ContactAdded()
        contact.accountID = "carol"
        try store.append(.contactAdded(contact))
        guard case let .wrote(afterContact)? = await next(&reports) else { Issue.record("no backup after the address book changed"); return }
        #expect(afterContact.header.base?.id == full.header.id)

        for i in 0..<3 { try store.append(message(.generate(), in: chat, "m\(i)", at: 1_700_000_000_000 + Int64(i))) }
        try await Task.sleep(for: .milliseconds(300))
        for i in 3..<12 { try store.append(message(.generate(), in: chat, "m\(i)", at: 1_700_000_000_000 + Int64(i))) }
        guard case let .wrote(byCount)? = await next(&reports) else { Issue.record("no backup after 10 events"); return }
        #expect(byCount.header.base?.id == afterContact.header.id)
        #expect(byCount.events >= 10, "the three early messages waited for the count")
        automatic.stop()
        while await next(&reports) != nil {}
        _ = try store.backup(into: f.backups, options: f.options(.soft, incremental: true))

        let restored = try f.store("restored")
        let files = try FileManager.default.contentsOfDirectory(at: f.backups, includingPropertiesForKeys: nil)
        _ = try restored.restore(from: files, options: RestoreOptions(key: rawKey()))
        #expect(try restored.contentDump(tables: BackupRoundTripTests.softTables) == store.contentDump(tables: BackupRoundTripTests.softTables))
    }

    @Test func aTimerBacksUpWhatIsNew() async throws {
        let f = BackupFixture()
        let store = try f.store("store")
        try store.append(conversationCreated(.generate()))
        let automatic = store.startAutomaticBackups(
            AutomaticBackupPolicy(directory: f.backups, options: f.options(.soft), every: .milliseconds(200)))
        var reports = automatic.reports.makeAsyncIterator()
        guard case .wrote? = await next(&reports) else { Issue.record("no first backup"); return }
        try store.append(conversationCreated(.generate()))
        guard case let .wrote(timed)? = await next(&reports) else { Issue.record("the timer made no backup"); return }
        #expect(timed.header.isIncremental && timed.events == 1)
    }

    @Test func aBusyStoreIsReportedAndRetried() async throws {
        let f = BackupFixture()
        let store = try f.store("store")
        try store.append(conversationCreated(.generate()))
        let held = try BackupLock(store: store.directory)
        let automatic = store.startAutomaticBackups(
            AutomaticBackupPolicy(directory: f.backups, options: f.options(.soft), every: .milliseconds(100)))
        var reports = automatic.reports.makeAsyncIterator()
        guard case let .failed(error)? = await next(&reports) else { Issue.record("no report while busy"); return }
        #expect(error == .busy(path: store.directory.path))
        withExtendedLifetime(held) {}
    }
}

@Suite struct RestoreProgressTests {
    @Test func progressArrivesAsAnAsyncSequenceEndingWithTheSummary() async throws {
        let f = BackupFixture()
        let source = try f.store("source")
        try source.appendGenerated(messages: 300, conversations: 5)
        let backup = try source.backup(into: f.backups, options: f.options(.soft, chunkSize: 2048))
        let target = try f.store("target")
        var updates: [RestoreUpdate] = []
        for try await update in target.restoring(from: [backup.file], options: RestoreOptions(key: rawKey())) { updates.append(update) }
        let verified = updates.compactMap { if case let .progress(.verifying(_, chunk)) = $0 { chunk } else { nil } }
        let applied = updates.compactMap { if case let .progress(.applying(_, chunk, _)) = $0 { chunk } else { nil } }
        #expect(applied.count > 2)
        #expect(applied == Array(1...applied.count), "one report per chunk, in order")
        #expect(verified.last == applied.count, "every chunk was authenticated before any was applied")
        #expect(updates.contains { if case .progress(.headVisible) = $0 { true } else { false } })
        guard case let .finished(summary)? = updates.last else { Issue.record("no summary at the end"); return }
        #expect(summary.appended == Int(backup.events))

        let bad = f.backups.appendingPathComponent("bad.ksbak")
        try Data("not a backup".utf8).write(to: bad)
        await #expect(throws: BackupError.notABackup) {
            for try await _ in target.restoring(from: [bad], options: RestoreOptions(key: rawKey())) {}
        }
    }
}

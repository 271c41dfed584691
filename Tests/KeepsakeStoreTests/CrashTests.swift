import Foundation
import Synchronization
import Testing
@testable import KeepsakeStore
import KeepsakeMessaging

/// Kills a real `keepsake` process with SIGKILL while it appends, again and
/// again, and checks after each kill that nothing acknowledged was lost and
/// that the projections equal a full rebuild.
@Suite struct CrashTests {
    @Test(.timeLimit(.minutes(3))) func killedAppendersLoseNothingAcknowledged() throws {
        let dir = TemporaryDirectory()
        let chat = ConversationID.generate()
        do {
            let store = try Store.open(at: dir.store)
            try store.append(conversationCreated(chat))
        }
        var acknowledged: [EventID] = []
        for round in 0..<20 {
            acknowledged += try appendUntilKilled(store: dir.store, conversation: chat, after: .milliseconds(Int.random(in: 150...500)))

            let store = try Store.open(at: dir.store)
            let head = try store.cursor().sequence
            for id in acknowledged {
                #expect(id.origin == store.logID && id.sequence <= head, "round \(round): acknowledged \(id) is missing")
            }
            let incremental = try store.projectionDump()
            #expect(incremental["messages"]!.count == Int(head) - 1, "round \(round): every logged message is projected")
            try store.rebuildProjections()
            #expect(try store.projectionDump() == incremental, "round \(round): projections differ from a rebuild")
        }
        #expect(acknowledged.count > 20)
    }

    /// A restore killed at random points, then run again, ends with the same store
    /// as a restore that was never interrupted: nothing lost, nothing twice.
    @Test(.timeLimit(.minutes(4))) func killedRestoresFinishWhenRunAgain() throws {
        let f = BackupFixture()
        let source = try f.store("source")
        try source.appendGenerated(messages: 12_000, conversations: 40, batch: 4000)
        let keyFile = f.dir.url.appendingPathComponent("backup.key")
        try Data(repeating: 7, count: 32).write(to: keyFile)
        let backup = try source.backup(into: f.backups, options: f.options(.soft, chunkSize: 16 << 10))
        let clean = try f.store("clean")
        _ = try clean.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))

        // Time one uninterrupted run, so the kills land inside a restore however fast this machine is.
        let probe = ["restore", "--store", f.dir.url.appendingPathComponent("probe").path, "--key-file", keyFile.path, backup.file.path]
        let started = ContinuousClock.now
        #expect(try CLI.run(probe).status == 0)
        let duration = (ContinuousClock.now - started) / .seconds(1)

        let target = f.dir.url.appendingPathComponent("target")
        let arguments = ["restore", "--store", target.path, "--key-file", keyFile.path, backup.file.path]
        var kills = 0
        for _ in 0..<8 {
            let process = Process()
            process.executableURL = CLI.url
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            Thread.sleep(forTimeInterval: Double.random(in: 0.05...max(0.1, duration * 0.3)))
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                kills += 1
            }
            process.waitUntilExit()
        }
        let finish = try CLI.run(arguments)
        #expect(finish.status == 0, "\(finish.error)")
        #expect(kills >= 3, "rounds kill the restore midway until resumed runs finish it")

        let restored = try Store.open(at: target, options: StoreOptions(extensions: [MessagingExtension()]))
        #expect(try restored.cursor().sequence == clean.cursor().sequence, "no event was appended twice")
        #expect(try restored.contentDump() == clean.contentDump())
    }

    /// SIGKILL again and again, across every command that writes: appends,
    /// generate, rebuild and restore. No acknowledged append is lost, every
    /// reopen succeeds, and at the end `keepsake check` finds both stores clean.
    @Test(.timeLimit(.minutes(5))) func aKillLoopAcrossCommandsLosesNothingAndLeavesTheStoresClean() throws {
        let dir = TemporaryDirectory()
        let chat = ConversationID.generate()
        let keyFile = dir.url.appendingPathComponent("backup.key")
        do {
            let store = try Store.open(at: dir.store)
            try store.append(conversationCreated(chat))
            try store.appendGenerated(messages: 3_000, conversations: 20)
            try Data(repeating: 9, count: 32).write(to: keyFile)
            _ = try store.backup(into: dir.url, options: BackupOptions(kind: .soft, key: rawKey(9)))
        }
        let backup = try #require(try FileManager.default.contentsOfDirectory(at: dir.url, includingPropertiesForKeys: nil)
            .first { $0.pathExtension == "ksbak" })
        let target = dir.url.appendingPathComponent("restored")
        let commands: [[String]] = [
            ["append", "message", chat.description, "crash", "--from", "bob", "--repeat", "1000000", "--store", dir.store.path],
            ["generate", "--messages", "200000", "--conversations", "30", "--store", dir.store.path],
            ["rebuild", "--store", dir.store.path],
            ["restore", "--store", target.path, "--key-file", keyFile.path, backup.path],
        ]
        var acknowledged: [EventID] = []
        var kills = 0
        for round in 0..<200 where kills < 52 {
            let command = commands[round % commands.count]
            // Appends get a later kill: a busy machine starts the process slowly, and the round must acknowledge some.
            let window = command[0] == "append" ? 200...700 : 60...400
            let run = try runUntilKilled(command, after: .milliseconds(Int.random(in: window)))
            if run.killed { kills += 1 }
            if command[0] == "append" { acknowledged += run.acknowledged }
            let store = try Store.open(at: dir.store)
            let head = try store.cursor().sequence
            let missing = acknowledged.filter { $0.origin != store.logID || $0.sequence > head }
            #expect(missing.isEmpty, "round \(round) (\(command[0])): acknowledged appends are missing: \(missing.prefix(3))")
        }
        #expect(kills >= 50 && acknowledged.count > 10)
        let finished = try CLI.run(["restore", "--store", target.path, "--key-file", keyFile.path, backup.path])
        #expect(finished.status == 0, "\(finished.output)")
        for store in [dir.store, target] {
            let check = try CLI.run(["check", "--store", store.path])
            #expect(check.status == 0 && !check.signaled, "\(check.output)")
        }
    }

    /// Runs `keepsake append message --repeat` and kills it with SIGKILL after
    /// `delay`; returns the event IDs it printed (each printed only once durable).
    private func appendUntilKilled(store: URL, conversation: ConversationID, after delay: Duration) throws -> [EventID] {
        try runUntilKilled(
            ["append", "message", conversation.description, "crash", "--from", "bob", "--repeat", "1000000", "--store", store.path],
            after: delay).acknowledged
    }

    /// Runs the CLI and kills it with SIGKILL after `delay` unless it finished;
    /// returns whether it was killed and the event IDs it printed on complete
    /// lines (an append prints each only once it is durable).
    private func runUntilKilled(_ arguments: [String], after delay: Duration) throws -> (killed: Bool, acknowledged: [EventID]) {
        let process = Process()
        process.executableURL = CLI.url
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        let output = Pipe()
        process.standardOutput = output
        let received = Mutex(Data())
        output.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            received.withLock { $0.append(chunk) }
        }
        try process.run()
        Thread.sleep(forTimeInterval: Double(delay.components.attoseconds) / 1e18 + Double(delay.components.seconds))
        let killed = process.isRunning
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        output.fileHandleForReading.readabilityHandler = nil
        let rest = output.fileHandleForReading.readDataToEndOfFile()
        let text = received.withLock { String(decoding: $0 + rest, as: UTF8.self) }
        // Only complete lines were acknowledged.
        let acknowledged = text.split(separator: "\n", omittingEmptySubsequences: true)
            .dropLast(text.hasSuffix("\n") ? 0 : 1)
            .compactMap { EventID($0) }
        return (killed, acknowledged)
    }
}

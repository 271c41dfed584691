import Foundation
import Testing
@testable import KeepsakeStore

/// The `keepsake` executable, run as a user would.
@Suite struct CLITests {
    private func keepsake(_ arguments: [String]) throws -> (status: Int32, output: String, error: String, signaled: Bool) {
        try CLI.run(arguments)
    }

    @Test func aTourOfTheCommandsWorks() throws {
        let dir = TemporaryDirectory()
        let store = ["--store", dir.store.path]
        #expect(try keepsake(["init"] + store).status == 0)
        let conversation = try keepsake(["append", "conversation", "--title", "Bob", "--member", "bob"] + store).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try keepsake(["append", "message", conversation, "lunch tomorrow?", "--from", "bob"] + store).status == 0)
        let conversations = try keepsake(["conversations"] + store).output
        #expect(conversations.contains("Bob 1 unread") && !conversations.contains("read-only"), "created here, so writable")
        #expect(try keepsake(["search", "lunch"] + store).output.contains("bob: lunch tomorrow?"))
        let log = try keepsake(["log", "--json"] + store).output.split(separator: "\n")
        #expect(log.count == 2)
        #expect(try keepsake(["cursor"] + store).output.contains("cursor c1."))
    }

    @Test func aMalformedCursorIsExplained() throws {
        let dir = TemporaryDirectory()
        _ = try keepsake(["init", "--store", dir.store.path])
        let result = try keepsake(["log", "--from", "garbage", "--store", dir.store.path])
        #expect(result.status != 0)
        #expect(result.error.contains("'garbage' is not a cursor; expected c1.<32 hex digits>.<sequence>"))
    }

    @Test func aFolderThatIsNotAStoreIsRefusedUntouched() throws {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(at: dir.url, withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: dir.url.appendingPathComponent("notes.txt"))
        let result = try keepsake(["init", "--store", dir.url.path])
        #expect(result.status != 0)
        #expect(result.error.contains("is not a Keepsake store"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["notes.txt"])
    }
}

/// The commands that make synthetic histories (`demo`, `bench restore`) run end to end.
@Suite struct GeneratedHistoryCLITests {
    @Test func demoAndBenchRestoreRunOnASmallHistory() throws {
        let dir = TemporaryDirectory()
        let demo = try CLI.run(["demo", "--path", dir.url.appendingPathComponent("demo").path, "--messages", "200", "--conversations", "4"])
        #expect(demo.status == 0, "\(demo.error)")
        #expect(demo.output.contains("Generated"))

        let bench = try CLI.run(["bench", "restore", "--messages", "300", "--conversations", "5", "--hard", "--json",
                                 "--dir", dir.url.appendingPathComponent("bench").path])
        #expect(bench.status == 0, "\(bench.error)")
        let report = try JSONSerialization.jsonObject(with: Data(bench.output.utf8)) as? [String: Any]
        let restore = report?["restore"] as? [String: Any]
        #expect((restore?["messagesPerSecond"] as? Double ?? 0) > 0, "\(bench.output)")
        #expect(report?["floors"] != nil && report?["incremental"] != nil)
    }
}

/// The backup commands, run as a user would.
@Suite struct BackupCLITests {
    @Test func backupListVerifyAndRestoreFromTheCommandLine() throws {
        let dir = TemporaryDirectory()
        let source = ["--store", dir.url.appendingPathComponent("source").path]
        let backups = dir.url.appendingPathComponent("backups").path
        #expect(try CLI.run(["init"] + source).status == 0)
        #expect(try CLI.run(["generate", "--messages", "300", "--conversations", "5"] + source).status == 0)
        let phrase = try BackupKey.generateMnemonic().description
        setenv("KEEPSAKE_MNEMONIC", phrase, 1)
        defer { unsetenv("KEEPSAKE_MNEMONIC") }

        let full = try CLI.run(["backup", "--mnemonic", "--to", backups, "--json"] + source)
        #expect(full.status == 0, "\(full.error)")
        #expect(try CLI.run(["append", "conversation", "--title", "Later", "--member", "x"] + source).status == 0)
        let increment = try CLI.run(["backup", "--mnemonic", "--incremental", "--to", backups, "--only", "conversations"] + source)
        #expect(increment.status != 0, "a selection never backed up has nothing to extend")
        #expect(increment.error.contains("make a full backup first"))
        #expect(try CLI.run(["backup", "--mnemonic", "--incremental", "--to", backups] + source).status == 0)

        let listed = try CLI.run(["backups", backups]).output.split(separator: "\n")
        #expect(listed.count == 2)
        #expect(listed[0].contains("full") && listed[1].contains("extends"))
        let files = try FileManager.default.contentsOfDirectory(atPath: backups).map { backups + "/" + $0 }
        let verified = try CLI.run(["verify", "--mnemonic"] + files)
        #expect(verified.status == 0, "\(verified.error)")
        #expect(verified.output.contains("(link checked)"))

        let target = ["--store", dir.url.appendingPathComponent("target").path]
        let restored = try CLI.run(["restore", "--mnemonic", "--json"] + files + target)
        #expect(restored.status == 0, "\(restored.error)")
        #expect(try CLI.run(["conversations"] + target).output.contains("Later"))
        #expect(try CLI.run(["restore", "--mnemonic"] + files + target).output.contains("nothing new"))

        setenv("KEEPSAKE_MNEMONIC", String(phrase.dropLast()), 1)
        let mistyped = try CLI.run(["verify", "--mnemonic"] + files)
        #expect(mistyped.status != 0)
        #expect(mistyped.error.contains("BIP-39") || mistyped.error.contains("checksum"))
    }

    @Test func anotherProcessSeesTheStoreBusy() throws {
        let dir = TemporaryDirectory()
        let store = try Store.open(at: dir.store)
        try store.append(conversationCreated(.generate()))
        let keyFile = dir.url.appendingPathComponent("backup.key")
        try Data(repeating: 1, count: 32).write(to: keyFile)
        let arguments = ["backup", "--key-file", keyFile.path, "--to", dir.url.path, "--store", dir.store.path]
        do {
            let held = try BackupLock(store: store.directory)
            let busy = try CLI.run(arguments)
            #expect(busy.status != 0)
            #expect(busy.error.contains("another backup or restore is running"))
            withExtendedLifetime(held) {}
        }
        #expect(try CLI.run(arguments).status == 0, "the lock is gone with its holder")
    }

    @Test func outOfRangeNumbersAreRefusedWhenTheCommandLineIsRead() throws {
        let dir = TemporaryDirectory()
        let store = ["--store", dir.store.path]
        let conversation = try CLI.run(["append", "conversation", "--title", "Bob", "--member", "bob"] + store).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let cases: [([String], String)] = [
            (["messages", conversation, "--limit=-1"] + store, "-1 is out of range: use 1 to 10000"),
            (["messages", conversation, "--limit", "9223372036854775807"] + store, "9223372036854775807 is out of range: use 1 to 10000"),
            (["append", "message", conversation, "x", "--repeat=-1"] + store, "-1 is out of range: use 1 to 1000000"),
            (["generate", "--conversations", "1000000000000"] + store, "1000000000000 is out of range: use 1 to 1000000"),
            (["generate", "--batch", "1000000000"] + store, "1000000000 is out of range: use 1 to 1000000"),
            (["bench", "relay", "--size", "1e11"], "'1e11' is not a whole number between 1 and 200000"),
            (["bench", "relay", "--time-limit", "nan"], "'nan' is not a number of seconds from 0.1 to 86400.0"),
            (["bench", "relay", "--instances", "2"], "several relays share their data through --database postgres://…"),
            (["bench", "relay", "--relay", "http://127.0.0.1:1", "--database", "postgres://x/y"], "--relay loads relays already running"),
            (["bench", "provider", "--size", "1e11"], "'1e11' is not a whole number between 1 and 268435456"),
            (["serve", "--port", "99999"], "99999 is out of range: use 0 to 65535"),
            (["backup", "--key-file", "k", "--chunk-size", "0"] + store, "0 is out of range: use 1024 to 16777216"),
        ]
        for (arguments, message) in cases {
            let result = try CLI.run(arguments)
            #expect(!result.signaled && result.status == 64, "\(arguments)")
            #expect(result.error.contains(message), "\(arguments): \(result.error)")
        }
        #expect(try CLI.run(["messages", conversation] + store).status == 0, "nothing changed")
    }

    @Test func errorsNameThePathAndTheCause() throws {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(at: dir.url, withIntermediateDirectories: true)
        let file = dir.url.appendingPathComponent("file")
        try Data("x".utf8).write(to: file)
        let underFile = try CLI.run(["init", "--store", file.path + "/store"])
        #expect(underFile.status == 1 && underFile.error.contains("cannot use \(file.path)/store: Not a directory"), "\(underFile.error)")
        setenv("KEEPSAKE_PASSPHRASE", "", 1)
        defer { unsetenv("KEEPSAKE_PASSPHRASE") }
        #expect(try CLI.run(["init", "--store", dir.store.path]).status == 0)
        let empty = try CLI.run(["backup", "--passphrase", "--to", dir.url.path, "--store", dir.store.path])
        #expect(empty.status != 0 && empty.error.contains("KEEPSAKE_PASSPHRASE is set but empty"))
    }

    @Test func checkReportsDamageAndRebuildRecoversFromDamagedProjections() throws {
        let dir = TemporaryDirectory()
        let store = ["--store", dir.store.path]
        #expect(try CLI.run(["generate", "--messages", "300", "--conversations", "5"] + store).status == 0)
        let before = try CLI.run(["conversations", "--json"] + store).output
        let clean = try CLI.run(["check", "--json"] + store)
        #expect(clean.status == 0 && clean.output.contains("\"clean\":true"), "\(clean.output)")

        let projections = dir.store.appendingPathComponent("projections.sqlite")
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: projections.path + suffix) }
        try Data(repeating: 7, count: 50_000).write(to: projections)
        let refused = try CLI.run(["conversations"] + store)
        #expect(refused.status == 1 && refused.error.contains("is damaged (file is not a database); the log is intact"))
        let damaged = try CLI.run(["check"] + store)
        #expect(damaged.status == 1 && damaged.output.contains("problem: store: the projection database"))

        let rebuilt = try CLI.run(["rebuild"] + store)
        #expect(rebuilt.status == 0 && rebuilt.output.contains("moved it aside to \(projections.path).damaged-"), "\(rebuilt.output)")
        #expect(try CLI.run(["conversations", "--json"] + store).output == before)
        #expect(try CLI.run(["check"] + store).status == 0)

        try FileManager.default.removeItem(at: dir.store.appendingPathComponent("log/keys.slots"))
        let noSlots = try CLI.run(["rebuild"] + store)
        #expect(noSlots.status == 1 && !noSlots.signaled && noSlots.error.contains("the key slot file is missing"))
    }
}

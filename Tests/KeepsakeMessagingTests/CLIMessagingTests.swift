import Foundation
import KeepsakeCrypto
import Testing

/// The messaging commands as a user runs them, against a relay process.
@Suite(.serialized) struct CLIMessagingTests {
    @Test func accountsInstallationsMessagesAndGroupsFromTheCommandLine() throws {
        let relay = try RelayProcess()
        let scratch = Scratch()
        let env = ["KEEPSAKE_RELAY": relay.url.absoluteString]
        func run(_ arguments: String...) throws -> String { try succeeding(arguments, environment: env) }
        func store(_ name: String) -> String { scratch.path(name).path }

        let aliceKey = scratch.path("alice.key").path, bobKey = scratch.path("bob.key").path
        try FileManager.default.createDirectory(at: scratch.url, withIntermediateDirectories: true)
        let alice = try run("account", "create", "--key-file", aliceKey)
        let bob = try run("account", "create", "--key-file", bobKey)
        #expect(alice.count == 64 && bob.count == 64 && alice != bob)
        let existing = try keepsake(["account", "create", "--key-file", aliceKey])
        #expect(existing.status != 0 && existing.error.contains("exists; not overwriting"))

        #expect(try run("installation", "add", "--store", store("alice"), "--account-key", aliceKey, "--role", "phone").contains("joined account \(alice)"))
        _ = try run("installation", "add", "--store", store("bob"), "--account-key", bobKey, "--role", "laptop")
        _ = try run("installation", "add", "--store", store("bob2"), "--account-key", bobKey, "--role", "spare")
        let listed = try run("installation", "list", "--store", store("alice"), bob)
        #expect(listed.contains("laptop") && listed.contains("spare"))

        #expect(try run("send", "--store", store("alice"), bob, "lunch?").contains("to 2 installation(s)"))
        #expect(try run("sync", "--store", store("bob")).hasPrefix("received 1"))
        let conversation = String(try run("conversations", "--store", store("bob")).prefix(32))
        _ = try run("send", "--store", store("bob"), conversation, "yes")
        _ = try run("sync", "--store", store("alice"))
        #expect(try run("messages", "--store", store("alice"), conversation).contains("\(bob): yes"))

        let spare = try #require(listed.split(separator: "\n").first { $0.contains("spare") }.map { String($0.prefix(32)) })
        #expect(try run("installation", "revoke", "--store", store("bob"), "--account-key", bobKey, spare) == "revoked \(spare)")
        #expect(try run("installation", "list", "--store", store("alice"), bob).contains("revoked"))

        let group = try run("group", "create", "--store", store("alice"), "--title", "Trip", bob)
        #expect(group.count == 32)
        #expect(try run("sync", "--store", store("bob")).contains("commits 1"))
        #expect(try run("group", "remove", "--store", store("bob"), group, alice) == "epoch 1")
        let refused = try keepsake(["group", "add", "--store", store("bob"), group, bob], environment: env)
        #expect(refused.status != 0 && refused.error.contains("is already a member"))
        let badAccount = try keepsake(["send", "--store", store("alice"), "not-an-account", "hi"], environment: env)
        #expect(badAccount.status != 0 && badAccount.error.contains("is not an account ID"))
        let noRelay = try keepsake(["sync", "--store", store("alice")], environment: ["KEEPSAKE_RELAY": "http://127.0.0.1:9"])
        #expect(noRelay.status != 0 && noRelay.error.contains("cannot reach the relay at http://127.0.0.1:9"))
    }

    @Test func historyMovesToANewInstallationFromTheCommandLine() throws {
        let relay = try RelayProcess()
        let scratch = Scratch()
        try FileManager.default.createDirectory(at: scratch.url, withIntermediateDirectories: true)
        let env = ["KEEPSAKE_RELAY": relay.url.absoluteString]
        func run(_ arguments: String...) throws -> String { try succeeding(arguments, environment: env) }
        let key = scratch.path("alice.key").path, bobKey = scratch.path("bob.key").path
        _ = try run("account", "create", "--key-file", key)
        let bob = try run("account", "create", "--key-file", bobKey)
        let old = scratch.path("old").path, new = scratch.path("new").path, bobStore = scratch.path("bob").path
        _ = try run("installation", "add", "--store", old, "--account-key", key)
        _ = try run("installation", "add", "--store", bobStore, "--account-key", bobKey)
        _ = try run("send", "--store", old, bob, "an old message")
        _ = try run("installation", "add", "--store", new, "--account-key", key)

        let asked = try run("history", "request", "--store", new)
        let pin = try #require(asked.split(separator: " ").dropFirst().first.map { String($0.dropLast()) })
        #expect(try run("sync", "--store", old).contains("history request"))
        let request = String(try run("history", "pending", "--store", old).prefix(32))
        #expect(request.count == 32)
        let wrong = try keepsake(["history", "approve", "--store", old, request, "--pin", pin == "0000" ? "1111" : "0000"], environment: env)
        #expect(wrong.status != 0 && wrong.error.contains("the PIN does not match"))
        #expect(try run("history", "approve", "--store", old, request, "--pin", pin).contains("answered"))
        #expect(try run("sync", "--store", new).contains("history imported"))
        #expect(try run("history", "status", "--store", new).contains("applied"))
        let conversation = String(try run("conversations", "--store", new).prefix(32))
        #expect(try run("messages", "--store", new, conversation).contains("an old message"))
    }

    @Test func backupsGoToTheProviderAndComeBackWithTheKeyAlone() throws {
        let relay = try RelayProcess()
        let scratch = Scratch()
        try FileManager.default.createDirectory(at: scratch.url, withIntermediateDirectories: true)
        let env = ["KEEPSAKE_RELAY": relay.url.absoluteString]
        func run(_ arguments: String...) throws -> String { try succeeding(arguments, environment: env) }
        let store = scratch.path("store").path, backups = scratch.path("backups").path, keyFile = scratch.path("backup.key")
        try Data(Random.bytes(32)).write(to: keyFile)
        _ = try run("account", "create", "--key-file", scratch.path("account.key").path)
        _ = try run("installation", "add", "--store", store, "--account-key", scratch.path("account.key").path)
        let conversation = try run("append", "conversation", "--title", "Notes", "--member", "me", "--store", store)
        _ = try run("append", "message", conversation, "keep me", "--store", store)
        let file = try #require(try run("backup", "--store", store, "--key-file", keyFile.path, "--to", backups, "--json")
            .split(separator: "\"").drop { $0 != "file" }.dropFirst(2).first).description
        #expect(try run("backups", "push", "--store", store, "--key-file", keyFile.path, file).contains("uploaded as"))
        #expect(try run("backups", "push", "--store", store, "--key-file", keyFile.path, file).contains("already on the provider"))
        #expect(try run("backups", backups).contains("full"), "listing a folder is still the default")

        let pulled = try run("backups", "pull", "--key-file", keyFile.path, "--to", scratch.path("pulled").path)
        _ = try run("restore", "--store", scratch.path("new").path, "--key-file", keyFile.path, pulled)
        #expect(try run("messages", "--store", scratch.path("new").path, conversation).contains("keep me"))

        let otherKey = scratch.path("other.key")
        try Data(Random.bytes(32)).write(to: otherKey)
        let none = try keepsake(["backups", "pull", "--key-file", otherKey.path, "--to", scratch.path("x").path], environment: env)
        #expect(none.status != 0 && none.error.contains("holds no backup made with this key"))
    }

    @Test func theProviderLoadTestChecksEveryFile() throws {
        let result = try keepsake(["bench", "provider", "--files", "20", "--size", "20000", "--concurrency", "4", "--json"])
        #expect(result.status == 0, "\(result.error)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        #expect(report["stored"] as? Int == 20 && report["lost"] as? Int == 0 && report["corrupted"] as? Int == 0)
    }

    @Test func theRelayLoadTestRunsFromAnotherProcessAndFindsNothingLost() throws {
        let result = try keepsake(["bench", "relay", "--envelopes", "300", "--topics", "5", "--concurrency", "4", "--json"])
        #expect(result.status == 0, "\(result.error)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        #expect(report["published"] as? Int == 300)
        #expect(report["lost"] as? Int == 0 && report["duplicated"] as? Int == 0 && report["unexpected"] as? Int == 0)
        #expect((report["followLatencyMs"] as? [String: Double])?["p50"] != nil)
    }

    @Test(.serialized, arguments: [SIGTERM, SIGINT, SIGKILL])
    func aLoadTestStoppedBySignalLeavesNoServerAndNoFolder(signal: Int32) throws {
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { $0.hasPrefix("keepsake-bench-") })
        let process = Process()
        process.executableURL = keepsakeExecutable
        process.arguments = ["bench", "relay", "--envelopes", "100000000", "--time-limit", "120"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until it loads its relay child (its first line names the relay's URL).
        var first = Data()
        while !first.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            first += chunk
        }
        let folders = Set(try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { $0.hasPrefix("keepsake-bench-") })
        let folder = try #require(folders.subtracting(before).first, "the benchmark made its folder")
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        var gone = false
        for _ in 0..<100 where !gone {
            gone = !FileManager.default.fileExists(atPath: NSTemporaryDirectory() + "/" + folder) && !serveChildRuns(for: folder)
            if !gone { Thread.sleep(forTimeInterval: 0.1) }  // wall time, whatever the concurrency pool is doing
        }
        #expect(gone, "signal \(signal): the relay child stopped and the folder \(folder) was removed")
    }

    /// Whether a `keepsake serve` started for the benchmark folder `folder` still runs.
    private func serveChildRuns(for folder: String) -> Bool {
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return processes.contains { pid in
            guard let command = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: command, as: UTF8.self).contains(folder)
        }
    }
}

/// Runs the CLI, records an issue unless it succeeds, and returns its trimmed output.
func succeeding(_ arguments: [String], environment: [String: String]) throws -> String {
    let result = try keepsake(arguments, environment: environment)
    #expect(result.status == 0, "keepsake \(arguments.joined(separator: " ")): \(result.error)")
    return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
}

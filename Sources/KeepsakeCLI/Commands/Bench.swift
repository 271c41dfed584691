import ArgumentParser
import Foundation
import KeepsakeBenchSupport
import Keepsake

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Keepsake on this machine, next to the floors of the same run.",
        subcommands: [BenchRestore.self, BenchRelay.self, BenchProvider.self])
}

struct BenchRestore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Generate a history, back it up, restore it into a fresh store, and report.",
        discussion: """
        Reports: restore rate (events/s, messages/s) against two floors of raw SQLite prepared \
        inserts of the same message rows (indexes and full-text index kept up row by row; and in \
        bulk: rows, then indexes, then the full-text index in one pass) and raw AEAD, measured in \
        the same run; time until the conversation \
        list and newest messages are usable; peak memory of the restoring process (resident, \
        and anonymous: heap without the LMDB map's file pages); bytes per message; and an \
        incremental backup after 1% more messages. The restore runs as a child `keepsake \
        restore` process, so its memory is measured alone.
        """)

    @Option(help: "Messages in the generated history (1 to 100000000).", transform: bounded(1...100_000_000)) var messages = 100_000
    @Option(help: "Conversations to spread them over (1 to 1000000).", transform: bounded(1...1_000_000)) var conversations = 1_000
    @Option(help: "Work here instead of a new temporary folder (kept afterwards).") var dir: String?
    @Flag(help: "Hard backup (with keys and sessions) instead of soft.") var hard = false
    @OptionGroup var output: OutputFormat

    func run() throws {
        let root = dir.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { if dir == nil { try? FileManager.default.removeItem(at: root) } }
        let backups = root.appendingPathComponent("backups")
        try FileManager.default.createDirectory(at: backups, withIntermediateDirectories: true)
        let keyFile = root.appendingPathComponent("backup.key")
        try Data((0..<32).map { _ in UInt8.random(in: 0...255) }).write(to: keyFile)
        var report: [String: Any] = ["messages": messages]
        func say(_ line: String) { if !output.json { print(line); flushOutput() } }

        let source = try Store.open(at: root.appendingPathComponent("source"), options: .withMessaging(durability: .unsafeNoSync))
        let generated = try GenerationOptions.parse(["--messages", "\(messages)", "--conversations", "\(conversations)"]).generate(into: source)
        say("generated \(generated.events) events (\(generated.messages) messages) in \(format(generated.seconds)) s")

        let key = try BackupKey.fromFile(keyFile)
        var options = BackupOptions(kind: hard ? .hard : .soft, key: key)
        var started = ContinuousClock.now
        let full = try source.backup(into: backups, options: options)
        let backupSeconds = (ContinuousClock.now - started).seconds
        let perMessage = Double(full.fileBytes) / Double(generated.messages)
        report["backup"] = ["bytes": full.fileBytes, "plaintextBytes": full.plaintextBytes, "seconds": backupSeconds,
                            "events": full.events, "bytesPerMessage": perMessage]
        say("full \(full.header.kind) backup: \(full.events) events, \(full.fileBytes) bytes (\(format(perMessage)) bytes/message, \(full.plaintextBytes) before compression) in \(format(backupSeconds)) s")

        let rows = try messageRows(of: source)
        let sqlite = try Floors.sqliteInserts(rows, at: root.appendingPathComponent("floor.sqlite").path).seconds
        let bulk = try Floors.sqliteInserts(rows, at: root.appendingPathComponent("bulk-floor.sqlite").path, strategy: .bulk).seconds
        let aead = try Floors.aeadOpen(bytes: max(full.fileBytes, 1 << 20)).seconds
        let sqliteRate = Double(rows.count) / sqlite, bulkRate = Double(rows.count) / bulk
        report["floors"] = ["sqliteRowsPerSecond": sqliteRate, "sqliteBulkRowsPerSecond": bulkRate,
                            "aeadBytesPerSecond": Double(max(full.fileBytes, 1 << 20)) / aead]
        say("floors: raw SQLite \(Int(sqliteRate)) message rows/s with live indexes, \(Int(bulkRate)) in bulk (rows, then indexes, then "
            + "the search index); raw AEAD \(format(Double(max(full.fileBytes, 1 << 20)) / aead / 1e6)) MB/s")

        let restore = try measureRestore(into: root.appendingPathComponent("restored"), files: [full.file], keyFile: keyFile)
        let messageRate = Double(rows.count) / restore.seconds
        report["restore"] = [
            "seconds": restore.seconds, "eventsPerSecond": Double(full.events) / restore.seconds,
            "messagesPerSecond": messageRate, "ratioToSQLite": messageRate / sqliteRate, "ratioToSQLiteBulk": messageRate / bulkRate,
            "headVisibleSeconds": restore.headVisible, "peakResidentBytes": restore.peakResident,
            "peakAnonymousBytes": restore.peakAnonymous,
        ]
        say("restore: \(format(restore.seconds)) s, \(Int(Double(full.events) / restore.seconds)) events/s, \(Int(messageRate)) messages/s = \(format(messageRate / sqliteRate))x raw SQLite with live indexes, \(format(messageRate / bulkRate))x in bulk")
        say("         conversation list and newest messages usable after \(format(restore.headVisible)) s; peak memory \(restore.peakResident >> 20) MiB resident, \(restore.peakAnonymous >> 20) MiB anonymous")

        let extra = max(1, generated.messages / 100)
        let more = try GenerationOptions.parse(["--messages", "\(extra)", "--conversations", "\(conversations)", "--seed", "2"]).generate(into: source)
        options.incremental = true
        started = ContinuousClock.now
        let increment = try source.backup(into: backups, options: options)
        let incrementSeconds = (ContinuousClock.now - started).seconds
        let incrementPerMessage = Double(increment.fileBytes) / Double(more.messages)
        report["incremental"] = [
            "messages": more.messages, "bytes": increment.fileBytes, "seconds": incrementSeconds,
            "bytesPerMessage": incrementPerMessage, "ratioToFullPerMessage": incrementPerMessage / perMessage,
            "ratioToFullBackup": Double(increment.fileBytes) / Double(full.fileBytes),
        ]
        say("incremental after +\(more.messages) messages: \(increment.fileBytes) bytes (\(format(incrementPerMessage)) bytes/message = \(format(incrementPerMessage / perMessage))x the full backup's) in \(format(incrementSeconds)) s")
        if output.json { printJSON(report) }
    }

    /// The message rows a restore of `store` projects (deleted messages have none).
    private func messageRows(of store: Store) throws -> [MessagePost] {
        var rows: [MessagePost] = []
        var cursor = Cursor(log: store.logID, sequence: 0)
        while case let events = try store.events(after: cursor, limit: 50_000), let last = events.last {
            rows += Floors.messageRows(of: events.map(\.content))
            cursor = Cursor(log: store.logID, sequence: last.sequence)
        }
        return rows
    }

    /// Runs `keepsake restore` as a child process, sampling its memory.
    private func measureRestore(into store: URL, files: [URL], keyFile: URL) throws -> (seconds: Double, headVisible: Double, peakResident: Int, peakAnonymous: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["restore", "--store", store.path, "--key-file", keyFile.path, "--json"] + files.map(\.path)
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var peakResident = 0, peakAnonymous = 0
        let status = "/proc/\(process.processIdentifier)/status"
        while process.isRunning {
            if let text = try? String(contentsOfFile: status, encoding: .utf8) {
                peakResident = max(peakResident, Self.kilobytes("VmHWM", in: text) * 1024)
                peakAnonymous = max(peakAnonymous, Self.kilobytes("RssAnon", in: text) * 1024)
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let seconds = json["seconds"] as? Double else {
            throw ValidationError("the restore failed: \(String(decoding: data, as: UTF8.self))")
        }
        return (seconds, json["headVisibleSeconds"] as? Double ?? .nan, peakResident, peakAnonymous)
    }

    private static func kilobytes(_ field: String, in status: String) -> Int {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
    }

    private func format(_ value: Double) -> String { String(format: "%.2f", value) }
}

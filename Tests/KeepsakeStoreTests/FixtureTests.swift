import Foundation
import Testing

/// Stores written by earlier Keepsake versions, committed under Tests/Fixtures,
/// must keep reading: every query answers exactly as it did when the fixture was made.
@Suite struct FixtureTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// `store-v1`: 245 generated events (ChaCha20-Poly1305-sealed payloads, erased
    /// ratchet steps, edits, deletes), written by the first release of the format.
    @Test func aVersion1StoreReadsAsItDidWhenWritten() throws {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(at: dir.url, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("store-v1"), to: dir.store)
        let expected = Self.fixtures.appendingPathComponent("store-v1-expected")
        let store = ["--store", dir.store.path]

        // Rebuilding decodes and unseals every event again, with this version's code.
        let rebuild = try CLI.run(["rebuild"] + store)
        #expect(rebuild.status == 0, "\(rebuild.error)")
        func answer(_ arguments: [String]) throws -> String { try CLI.run(arguments + store).output }
        func file(_ name: String) throws -> String { try String(contentsOf: expected.appendingPathComponent(name), encoding: .utf8) }

        #expect(try answer(["cursor", "--json"]) == file("cursor.json"))
        #expect(try answer(["log", "--json"]) == file("log.jsonl"))
        let conversations = try answer(["conversations", "--json"])
        #expect(conversations == (try file("conversations.json")))
        let ids = try JSONSerialization.jsonObject(with: Data(conversations.utf8)) as! [[String: Any]]
        #expect(ids.count == 4)
        for id in ids.compactMap({ $0["id"] as? String }) {
            #expect(try answer(["messages", "--json", "--limit", "1000", id]) == file("messages-\(id).json"))
        }
    }

    /// `backup-v1`: the test vectors of docs/BACKUP-FORMAT.md, a full soft backup in
    /// 9 chunks and an incremental that extends it, sealed with `backup.key`
    /// (bytes 0x00...0x1f). Every future version must restore them to the same store.
    @Test func version1BackupsRestoreAsTheyDidWhenWritten() throws {
        let dir = TemporaryDirectory()
        let fixture = Self.fixtures.appendingPathComponent("backup-v1")
        let store = ["--store", dir.store.path]
        let restore = try CLI.run(["restore", "--key-file", fixture.appendingPathComponent("backup.key").path,
                                   fixture.appendingPathComponent("incremental.ksbak").path,
                                   fixture.appendingPathComponent("full.ksbak").path] + store)
        #expect(restore.status == 0, "\(restore.error)")
        #expect(restore.output.contains("53 new events"))

        func withoutLocalSequences(_ json: String) throws -> NSDictionary {
            var page = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
            page["messages"] = (page["messages"] as! [[String: Any]]).map { $0.filter { $0.key != "sequence" } }
            return page as NSDictionary
        }
        let expected = fixture.appendingPathComponent("expected")
        let conversations = try CLI.run(["conversations", "--json"] + store).output
        #expect(conversations == (try String(contentsOf: expected.appendingPathComponent("conversations.json"), encoding: .utf8)))
        let ids = (try JSONSerialization.jsonObject(with: Data(conversations.utf8)) as! [[String: Any]]).compactMap { $0["id"] as? String }
        #expect(ids.count == 3)
        for id in ids {
            let page = try CLI.run(["messages", "--json", "--limit", "1000", id] + store).output
            let want = try String(contentsOf: expected.appendingPathComponent("messages-\(id).json"), encoding: .utf8)
            #expect(try withoutLocalSequences(page) == withoutLocalSequences(want))
        }
    }

    /// scripts/read-backup.py, written from docs/BACKUP-FORMAT.md alone, reads the
    /// test vectors to the values the document gives. Skipped where Python's
    /// `cryptography` package or the `zstd` tool is missing.
    @Test(.enabled(if: FixtureTests.independentReaderAvailable)) func theIndependentReaderAgreesWithTheFormatDocument() throws {
        let root = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent()
        let fixture = Self.fixtures.appendingPathComponent("backup-v1")
        func read(_ name: String) throws -> (status: Int32, output: String) {
            try CLI.runTool("/usr/bin/env", "python3", root.appendingPathComponent("scripts/read-backup.py").path,
                            fixture.appendingPathComponent("backup.key").path, fixture.appendingPathComponent(name).path)
        }
        let full = try read("full.ksbak")
        #expect(full.status == 0)
        #expect(full.output.contains("key check 844f0e7ee4d705a350d8ecf4b4539e72 file key 8248b0f281ed2ecd7fa8eb1da81447dbdc9cbc82c0c305a6eb9a4aad91148546"))
        #expect(full.output.contains("52 events in 9 chunks, file hash 030d1541dff66aa93eb544d85e51c09d9b2d95452e0f69ed81a28a9bb6ccd4b8"))
        let incremental = try read("incremental.ksbak")
        #expect(incremental.output.contains("1 events in 1 chunks"))
    }

    static var independentReaderAvailable: Bool {
        ((try? CLI.runTool("/usr/bin/env", "python3", "-c", "import cryptography"))?.status == 0)
            && ((try? CLI.runTool("/usr/bin/env", "zstd", "--version"))?.status == 0)
    }
}

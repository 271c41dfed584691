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
}

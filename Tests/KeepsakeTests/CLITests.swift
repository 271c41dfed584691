import Foundation
import Testing
@testable import Keepsake

/// The `keepsake` executable, run as a user would.
@Suite struct CLITests {
    private func keepsake(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        try CLI.run(arguments)
    }

    @Test func aTourOfTheCommandsWorks() throws {
        let dir = TemporaryDirectory()
        let store = ["--store", dir.store.path]
        #expect(try keepsake(["init"] + store).status == 0)
        let conversation = try keepsake(["append", "conversation", "--title", "Bob", "--member", "bob"] + store).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try keepsake(["append", "message", conversation, "lunch tomorrow?", "--from", "bob"] + store).status == 0)
        #expect(try keepsake(["conversations"] + store).output.contains("Bob 1 unread read-only"))
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

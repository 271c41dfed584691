import Foundation
import Testing
@testable import KeepsakeStore

/// A small tmpfs mounted for one test (needs root; the test is skipped elsewhere).
final class SmallDisk {
    let url: URL

    init?(megabytes: Int) {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-disk-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        guard SmallDisk.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)M", "tmpfs", url.path]) else {
            try? FileManager.default.removeItem(at: url)
            return nil
        }
    }

    func grow(to megabytes: Int) -> Bool {
        SmallDisk.run("/bin/mount", ["-o", "remount,size=\(megabytes)M", url.path])
    }

    deinit {
        _ = SmallDisk.run("/bin/umount", [url.path])
        try? FileManager.default.removeItem(at: url)
    }

    static var available: Bool { getuid() == 0 && SmallDisk(megabytes: 1) != nil }

    private static func run(_ tool: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}

@Suite struct DiskFullTests {
    @Test(.enabled(if: SmallDisk.available, "needs root to mount a small tmpfs"))
    func aFullDiskIsReportedAndLosesNothingAcknowledged() throws {
        let disk = try #require(SmallDisk(megabytes: 3))
        let location = disk.url.appendingPathComponent("store")
        let chat = ConversationID.generate()
        var acknowledged: [MessageID] = []
        var failure: KeepsakeError?
        do {
            let store = try Store.open(at: location)
            try store.append(conversationCreated(chat))
            let text = String(repeating: "a long message to fill the disk ", count: 100)
            for i in 0..<10_000 {
                let id = MessageID.generate()
                do {
                    try store.append(message(id, in: chat, text + "\(i)", at: Int64(i)))
                    acknowledged.append(id)
                } catch {
                    failure = error
                    break
                }
            }
        }
        let error = try #require(failure)
        switch error {
        case .log(.diskFull), .diskFull:
            break
        case let .projectionsBehind(_, reason):
            #expect(reason.contains("full"), "unexpected reason: \(reason)")
        default:
            Issue.record("expected a disk-full error, got \(error)")
        }
        #expect(error.description.contains("full"))
        #expect(acknowledged.count > 10)

        #expect(disk.grow(to: 64))
        let reopened = try Store.open(at: location)
        for id in acknowledged { #expect(try reopened.message(id) != nil) }
        let incremental = try reopened.projectionDump()
        try reopened.rebuildProjections()
        #expect(try reopened.projectionDump() == incremental)
    }
}

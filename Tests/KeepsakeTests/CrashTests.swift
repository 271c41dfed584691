import Foundation
import Synchronization
import Testing
@testable import Keepsake

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

    /// Runs `keepsake append message --repeat` and kills it with SIGKILL after
    /// `delay`; returns the event IDs it printed (each printed only once durable).
    private func appendUntilKilled(store: URL, conversation: ConversationID, after delay: Duration) throws -> [EventID] {
        let process = Process()
        process.executableURL = CLI.url
        process.arguments = ["append", "message", conversation.description, "crash", "--from", "bob",
                             "--repeat", "1000000", "--store", store.path]
        let output = Pipe()
        process.standardOutput = output
        let received = Mutex(Data())
        output.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            received.withLock { $0.append(chunk) }
        }
        try process.run()
        Thread.sleep(forTimeInterval: Double(delay.components.attoseconds) / 1e18 + Double(delay.components.seconds))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        output.fileHandleForReading.readabilityHandler = nil
        let rest = output.fileHandleForReading.readDataToEndOfFile()
        let text = received.withLock { String(decoding: $0 + rest, as: UTF8.self) }
        // Only complete lines were acknowledged.
        return text.split(separator: "\n", omittingEmptySubsequences: true)
            .dropLast(text.hasSuffix("\n") ? 0 : 1)
            .compactMap { EventID($0) }
    }
}

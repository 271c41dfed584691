import Foundation
import Synchronization
import Testing
@testable import KeepsakeStore

@Suite struct ConcurrencyTests {
    @Test func threadsAndAnotherProcessReadWhileOneWriterAppends() throws {
        let dir = TemporaryDirectory()
        let store = try Store.open(at: dir.store)
        let chat = ConversationID.generate()
        try store.append(conversationCreated(chat))
        let done = Flag()
        let threads = DispatchGroup()
        let readCounts = Mutex<[Int]>([])

        onThread(threads) {
            defer { done.set() }
            for i in 0..<300 { try store.append(message(.generate(), in: chat, "message \(i)", at: Int64(i))) }
        }
        // Readers in this process: counts only grow, and a page is never torn.
        for _ in 0..<3 {
            onThread(threads) {
                var last = 0, reads = 0
                while !done.isSet {
                    let page = try store.messages(in: chat, limit: 1_000)
                    #expect(page.messages.count >= last)
                    last = page.messages.count
                    reads += 1
                }
                readCounts.withLock { $0.append(reads) }
            }
        }
        // A second process reading the same store meanwhile.
        var counts: [Int] = []
        while !done.isSet {
            let output = try runCLI(["messages", chat.description, "--json", "--limit", "1000", "--store", dir.store.path])
            let json = try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: Any]
            counts.append((json["messages"] as! [Any]).count)
        }
        threads.wait()
        #expect(readCounts.withLock { $0.count == 3 && $0.allSatisfy { $0 > 0 } })
        #expect(!counts.isEmpty)
        #expect(counts == counts.sorted())
        #expect(try store.messages(in: chat, limit: 1_000).messages.count == 300)
    }

    /// Runs `body` on a new thread (not the async pool), recording any error as a test issue.
    private func onThread(_ group: DispatchGroup, _ body: @escaping @Sendable () throws -> Void) {
        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            do { try body() } catch { Issue.record(error) }
        }
    }

    private func runCLI(_ arguments: [String]) throws -> String {
        let result = try CLI.run(arguments)
        #expect(result.status == 0, "\(result.error)")
        return result.output
    }
}

/// A flag one task raises and others watch.
final class Flag: Sendable {
    private let raised = Atomic<Bool>(false)
    func set() { raised.store(true, ordering: .releasing) }
    var isSet: Bool { raised.load(ordering: .acquiring) }
}

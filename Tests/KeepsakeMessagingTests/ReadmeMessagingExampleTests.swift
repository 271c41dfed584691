import Foundation
import Testing
import Keepsake
import KeepsakeRelayClient

// README-MESSAGING-BEGIN
func readmeMessagingExample(relay: URL, phoneStore: URL, laptopStore: URL) async throws -> [String] {
    let alice = try AccountKey.generate()  // an account: keep its key like a wallet (write(to:) / read(from:))
    let bob = try AccountKey.generate()
    let phone = Messenger(store: try Store.open(at: phoneStore), relay: RelayClient(baseURL: relay))
    let laptop = Messenger(store: try Store.open(at: laptopStore), relay: RelayClient(baseURL: relay))
    try await phone.join(alice, role: "phone")  // signs and publishes the installation's bundle and prekeys
    try await laptop.join(bob, role: "laptop")

    let sent = try await phone.send("lunch tomorrow?", toAccount: bob.id)  // creates the direct conversation
    let report = try await laptop.sync()  // pulls the inbox, validates, decrypts, logs
    _ = try await laptop.send("yes, noon", to: sent.conversation)
    _ = try await phone.sync()  // or: for try await report in phone.live() { ... }

    let group = try await phone.createGroup(title: "Trip", members: [bob.id])
    _ = try await laptop.sync()
    let texts = try phone.store.messages(in: sent.conversation).messages.map(\.text)  // newest first
    return texts + [try laptop.store.conversation(group)?.title ?? "", "\(report.received.count)"]
}
// README-MESSAGING-END

@Suite struct ReadmeMessagingExampleTests {
    @Test func theReadmeMessagingExampleRunsAndIsQuotedExactly() async throws {
        let relay = try RelayProcess()
        let scratch = Scratch()
        let result = try await readmeMessagingExample(relay: relay.url, phoneStore: scratch.path("phone"), laptopStore: scratch.path("laptop"))
        #expect(result == ["yes, noon", "lunch tomorrow?", "Trip", "1"])

        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let example = source.components(separatedBy: "// README-MESSAGING-BEGIN\n")[1].components(separatedBy: "// README-MESSAGING-END")[0]
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).appendingPathComponent("../../../README.md").standardized, encoding: .utf8)
        #expect(readme.contains("```swift\n" + example + "```"), "README's messaging example differs from this test's")
    }
}

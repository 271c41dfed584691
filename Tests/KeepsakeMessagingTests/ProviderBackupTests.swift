import Foundation
import Testing
@testable import KeepsakeMessaging
@testable import KeepsakeStore
import KeepsakeCrypto

/// Automatic backups to the provider, and the Identity Box flow: a new device restores from the recovery phrase alone.
@Suite struct ProviderBackupTests {
    @Test func automaticBackupsReachTheProviderAndComeBackWithThePhraseAlone() async throws {
        let relay = try RelayProcess()
        let scratch = Scratch()
        let phone = try Device("phone", in: scratch, relay: relay)
        try await phone.messenger.join(AccountKey.generate())
        let chat = ConversationID.generate()
        try phone.store.append(conversationCreated(chat))
        let phrase = try BackupKey.generateMnemonic()
        var policy = AutomaticBackupPolicy(directory: scratch.path("local-backups"), options: BackupOptions(kind: .hard, key: .mnemonic(phrase)))
        policy.everyEvents = 1
        policy.destination = ProviderBackups.Destination(provider: relay.client)
        try FileManager.default.createDirectory(at: policy.directory, withIntermediateDirectories: true)
        let backups = phone.store.startAutomaticBackups(policy)
        var reports = backups.reports.makeAsyncIterator()
        var uploaded = 0
        try phone.store.append(textMessage(in: chat, "first"))
        while uploaded < 1, let report = await reports.next() { if case .uploaded = report { uploaded += 1 } }
        try phone.store.append(textMessage(in: chat, "second"))
        while uploaded < 2, let report = await reports.next() { if case .uploaded = report { uploaded += 1 } }
        backups.stop()

        // A new device with only the phrase (typed back from its words).
        let typed = try Mnemonic(parsing: phrase.description)
        let files = try await ProviderBackups.download(key: .mnemonic(typed), from: relay.client, into: scratch.path("pulled"))
        #expect(files.count == 2, "the full backup and its incremental")
        let newPhone = try Store.open(at: scratch.path("new-phone"))
        _ = try newPhone.restore(from: files, options: RestoreOptions(key: .mnemonic(typed)))
        #expect(try newPhone.messages(in: chat, limit: 10).messages.map(\.text) == ["second", "first"])

        let stranger = try BackupKey.generateMnemonic()
        await #expect(throws: BackupError.noBackupForKey(provider: "127.0.0.1"), "a valid phrase with no backups") {
            try await ProviderBackups.download(key: .mnemonic(stranger), from: relay.client, into: scratch.path("none"))
        }
        var words = phrase.description.split(separator: " ").map(String.init)
        words[3] += "x"
        #expect(throws: MnemonicError.self, "a mistyped word is caught before the provider is asked") {
            try Mnemonic(parsing: words.joined(separator: " "))
        }
        await #expect(throws: BackupError.keyHasNoLocator) {
            try await ProviderBackups.download(key: .passphrase("secret"), from: relay.client, into: scratch.path("none"))
        }
    }
}

func conversationCreated(_ id: ConversationID) -> EventPayload {
    var c = ConversationCreated()
    c.conversationID = Data(id.bytes)
    c.kind = .direct
    c.title = "Notes"
    c.members = ["me"]
    c.createdBy = "me"
    return .conversationCreated(c)
}

func textMessage(in conversation: ConversationID, _ text: String) -> EventPayload {
    var m = MessageContent()
    m.messageID = Data(MessageID.generate().bytes)
    m.conversationID = Data(conversation.bytes)
    m.sender = "me"
    m.text = text
    m.sentAtMs = Date().millis
    return .messageSent(m)
}

import Foundation
import Testing
@testable import KeepsakeMessaging
@testable import KeepsakeStore
import KeepsakeCrypto
import KeepsakeRelayClient
import KeepsakeWire

/// XIP-31 end to end: a new installation asks, the old one approves, the history arrives once.
@Suite struct HistorySyncTests {
    let relay: RelayProcess
    let scratch = Scratch()
    let alice: AccountKey, bob: AccountKey
    let phone: Device, tablet: Device, bobPhone: Device
    let conversation: ConversationID

    init() async throws {
        relay = try RelayProcess()
        alice = try AccountKey.generate()
        bob = try AccountKey.generate()
        phone = try Device("alice-phone", in: scratch, relay: relay)
        tablet = try Device("alice-tablet", in: scratch, relay: relay)
        bobPhone = try Device("bob-phone", in: scratch, relay: relay)
        try await phone.messenger.join(alice, role: "phone")
        try await bobPhone.messenger.join(bob)
        let hello = try await phone.messenger.send("hello bob", toAccount: bob.id)
        _ = try await bobPhone.messenger.sync()
        _ = try await bobPhone.messenger.send("hi alice", to: hello.conversation)
        _ = try await phone.messenger.sync()
        var consent = ConsentChanged()
        consent.entity = bob.id.rawValue
        consent.state = .allowed
        var theme = PreferenceChanged()
        theme.key = "theme"
        theme.value = Data("dark".utf8)
        try phone.store.append(contentsOf: [EventDraft(.consentChanged(consent)), EventDraft(.preferenceChanged(theme))])
        conversation = hello.conversation
        try await tablet.messenger.join(alice, role: "tablet")
    }

    func known(_ device: Device, from observer: Device) async throws -> KnownInstallation {
        let id = try #require(try device.store.membership()).installation
        return try #require(try await observer.messenger.installations(of: alice.id).first { $0.id == id })
    }

    /// An answer to request `id` that looks right: a file on this relay, expiring in an hour (nothing is uploaded).
    func plausibleAnswer(to id: HistoryRequestID) -> HistoryResponse {
        HistoryResponse.with {
            $0.requestID = Data(id.bytes)
            $0.backupURL = relay.client.backupUploadURL.absoluteString + "/" + Hex.encode(Random.bytes(32))
            $0.backupKey = Data(Random.bytes(32))
            $0.backupFileHash = Data(Random.bytes(32))
            $0.expiresAtMs = Date().addingTimeInterval(3600).millis
        }
    }

    /// Sends a crafted history answer from the phone to the tablet.
    func answer(_ response: HistoryResponse) async throws {
        let target = try await known(tablet, from: phone)
        _ = try await phone.messenger.deliver(Content.with { $0.historyResponse = response }, in: nil, to: [target], logging: [])
    }

    /// Every file of a store, as bytes.
    func contents(of device: Device) throws -> [Data] {
        let files = FileManager.default.enumerator(at: device.store.directory, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        return files.compactMap { try? Data(contentsOf: $0) }
    }

    @Test func aNewInstallationGetsTheHistoryOnceAndTheKeysAreGone() async throws {
        let requests = try await tablet.messenger.requestHistory()
        #expect(requests.count == 1 && requests[0].status == .pending && requests[0].pin.count == 4)
        let report = try await phone.messenger.sync()
        #expect(report.historyRequests == [requests[0].id])
        let pending = try #require(try phone.store.historyRequests(role: .provider).first)
        #expect(pending.pin == requests[0].pin && pending.status == .pending, "both devices show the same PIN")
        try await phone.messenger.approveHistoryRequest(pending.id)
        #expect(try phone.store.historyRequest(pending.id)?.status == .answered)

        // Receive the answer by hand, so the test sees the one-time key the tablet is given.
        let inbox = Topic.message(installation: try #require(try tablet.store.membership()).installation.bytes)
        let envelopes = try await relay.client.items(on: inbox, after: 0, limit: 100).items
        let me = try #require(try tablet.store.membership())
        var refreshed: Set<String> = [], sender: KnownInstallation?
        guard case let .historyResponse(response, responder) = try await tablet.messenger.receive(
            try #require(envelopes.last).data, as: me, refreshed: &refreshed, sender: &sender) else {
            Issue.record("the last envelope is not the history answer")
            return
        }
        try await tablet.messenger.applyHistoryResponse(response, from: responder)
        #expect(try tablet.store.historyRequest(requests[0].id)?.status == .applied)

        #expect(try tablet.texts(in: conversation) == ["hello bob", "hi alice"])
        #expect(try tablet.store.consent(for: .account(bob.id)) == .allowed)
        #expect(try tablet.store.preference("theme") == Data("dark".utf8))
        #expect(try !tablet.store.isWritable(#require(try tablet.store.conversation(conversation))), "read-only until bob's installation reaches the tablet")
        let again = try await tablet.messenger.sync()
        #expect(again.historyApplied.isEmpty && again.received.isEmpty)
        #expect(try tablet.store.messages(in: conversation).messages.count == 2, "no duplicates")
        let fileKey = BackupKey.raw(try SecureBytes.random(count: 32))
        try FileManager.default.createDirectory(at: scratch.path("files"), withIntermediateDirectories: true)
        let file = try phone.store.backup(into: scratch.path("files"), options: BackupOptions(kind: .soft, key: fileKey)).file
        let restored = try tablet.store.restore(from: [file], options: RestoreOptions(key: fileKey))
        #expect(try tablet.store.messages(in: conversation).messages.count == 2, "a later file restore duplicates nothing either")
        _ = restored

        let key = Array(response.backupKey)
        #expect(key.count == 32)
        for device in [phone, tablet] {
            #expect(try contents(of: device).allSatisfy { $0.firstRange(of: Data(key)) == nil }, "no copy of the one-time key in \(device.store.directory.lastPathComponent)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: device.store.directory.path).allSatisfy { !$0.hasPrefix("history-") })
        }
        let url = try #require(URL(string: response.backupURL))
        await #expect(throws: RelayClient.Failure.self, "a delete-after-download file is served once") {
            try await relay.client.downloadBackup(from: url, to: scratch.path("second-download"))
        }

        // The same answer again (a replay in a new envelope): the request is no longer pending.
        try await answer(response)
        #expect(try await tablet.messenger.sync().historyFailures == [.notPending(requests[0].id, .applied)])
    }

    @Test func everyCheckOfTheAnswerHasItsFailure() async throws {
        let request = try #require(try await tablet.messenger.requestHistory().first)
        let valid = plausibleAnswer(to: request.id)
        var unknown = valid
        unknown.requestID = Data(Random.bytes(16))
        try await answer(unknown)
        #expect(try await tablet.messenger.sync().historyFailures == [.unknownRequest(HistoryRequestID(bytes: unknown.requestID)!)])

        var elsewhere = valid
        elsewhere.backupURL = "http://127.0.0.2:1/v1/backups/" + Hex.encode(Random.bytes(32))
        try await answer(elsewhere)
        let host = try #require(relay.url.host)
        #expect(try await tablet.messenger.sync().historyFailures == [.differentHost(expected: host, found: "127.0.0.2")])
        #expect(try tablet.store.historyRequest(request.id)?.status == .failed)

        try await answer(valid)
        #expect(try await tablet.messenger.sync().historyFailures == [.notPending(request.id, .failed)], "a request is answered once")

        /// A new request of the tablet's, and a valid-looking answer to it.
        func fresh() async throws -> (HistoryRequestID, HistoryResponse) {
            let request = try #require(try await tablet.messenger.requestHistory().first)
            var response = valid
            response.requestID = Data(request.id.bytes)
            return (request.id, response)
        }
        var (id, late) = try await fresh()
        late.expiresAtMs = Date().addingTimeInterval(-60).millis
        try await answer(late)
        #expect(try await tablet.messenger.sync().historyFailures == [.expired])

        var broken: HistoryResponse
        (id, broken) = try await fresh()
        broken.backupURL = relay.client.backupUploadURL.absoluteString + "/nope"
        try await answer(broken)
        let downloadFailure = try await tablet.messenger.sync().historyFailures
        #expect(downloadFailure.count == 1 && "\(downloadFailure)".contains("bad_id"), "\(downloadFailure)")
        if case .download(_)? = downloadFailure.first {} else { Issue.record("not a download failure: \(downloadFailure)") }

        // A file that downloads and matches its hash but is no backup.
        var notABackup: HistoryResponse
        (id, notABackup) = try await fresh()
        let junk = Random.bytes(2_000)
        try FileManager.default.createDirectory(at: scratch.url, withIntermediateDirectories: true)
        try Data(junk).write(to: scratch.path("junk"))
        let auth = try phone.store.authenticateRequest(method: "POST", path: "/v1/backups", contentDigest: Blake2b.hash(junk))
        let stored = try await relay.client.uploadBackup(scratch.path("junk"), to: relay.client.backupUploadURL, authentication: auth, options: .init())
        notABackup.backupURL = stored.url.absoluteString
        notABackup.backupFileHash = Data(Blake2b.hash(junk))
        try await answer(notABackup)
        let restoreFailure = try await tablet.messenger.sync().historyFailures
        if case .restore(_)? = restoreFailure.first {} else { Issue.record("not a restore failure: \(restoreFailure)") }
        #expect(try tablet.store.historyRequest(id)?.status == .failed)
    }

    @Test func anAnswerFromAnotherInstallationThanTheOneAskedIsRefused() async throws {
        let laptop = try Device("alice-laptop", in: scratch, relay: relay)
        try await laptop.messenger.join(alice, role: "laptop")
        let phoneID = try #require(try phone.store.membership()).installation
        let asked = try #require(try await tablet.messenger.requestHistory().first { $0.peer == phoneID })
        let response = plausibleAnswer(to: asked.id)
        let target = try await known(tablet, from: laptop)
        _ = try await laptop.messenger.deliver(Content.with { $0.historyResponse = response }, in: nil, to: [target], logging: [])
        #expect(try await tablet.messenger.sync().historyFailures == [.wrongResponder(asked.id)])
        #expect(try tablet.store.historyRequest(asked.id)?.status == .failed, "like every failed check (PROTOCOL.md §8)")
    }

    @Test func aTamperedFileAnExpiredFileAndForeignRequestersAreRefused() async throws {
        // Hash mismatch: the answer names another hash than the uploaded file's.
        let first = try #require(try await tablet.messenger.requestHistory().first)
        _ = try await phone.messenger.sync()
        try await phone.messenger.approveHistoryRequest(first.id)
        let inbox = Topic.message(installation: try #require(try tablet.store.membership()).installation.bytes)
        let items = try await relay.client.items(on: inbox, after: 0, limit: 100).items
        let me = try #require(try tablet.store.membership())
        var refreshed: Set<String> = [], sender: KnownInstallation?
        guard case .historyResponse(var response, let responder) = try await tablet.messenger.receive(
            try #require(items.last).data, as: me, refreshed: &refreshed, sender: &sender) else {
            Issue.record("no history answer")
            return
        }
        response.backupFileHash[0] ^= 1
        await #expect(throws: HistorySyncError.hashMismatch) { try await tablet.messenger.applyHistoryResponse(response, from: responder) }
        #expect(try tablet.texts(in: conversation).isEmpty, "nothing imported")

        // An expired file: the provider keeps it one second.
        var quick = Messenger.Options()
        quick.historyLifetime = .seconds(1)
        let hurried = Messenger(store: phone.store, relay: relay.client, options: quick)
        let second = try #require(try await tablet.messenger.requestHistory().first)
        _ = try await hurried.sync()
        try await hurried.approveHistoryRequest(second.id)
        try await Task.sleep(for: .milliseconds(1_500))
        #expect(try await tablet.messenger.sync().historyFailures == [.expired])
        #expect(try tablet.store.historyRequest(second.id)?.status == .expired)

        // Bob's installation is not Alice's: its request is refused at step 6.
        let phoneTarget = try await known(phone, from: bobPhone)
        let foreign = Content.with { $0.historyRequest = .with { $0.requestID = Data(Random.bytes(16)); $0.uploadURL = relay.client.backupUploadURL.absoluteString } }
        _ = try await bobPhone.messenger.deliver(foreign, in: nil, to: [phoneTarget], logging: [])
        let refused = try await phone.messenger.sync()
        #expect(refused.rejected.map(\.reason) == [.notThisAccount] && refused.historyRequests.isEmpty)

        // A revoked requester: its pending request is not answered.
        _ = try await tablet.messenger.requestHistory()
        _ = try await phone.messenger.sync()
        let pending = try #require(try phone.store.historyRequests(role: .provider).first { $0.status == .pending })
        try await phone.messenger.revoke(me.installation, with: alice)
        await #expect(throws: HistorySyncError.requesterNotTrusted(pending.id)) { try await phone.messenger.approveHistoryRequest(pending.id) }
        #expect(try phone.store.historyRequest(pending.id)?.status == .denied)
    }
}

import Foundation
import KeepsakeTransport
import Testing
@testable import KeepsakeMessaging
@testable import KeepsakeStore
import KeepsakeCrypto
import KeepsakeRelay
import KeepsakeWire

/// The in-memory relay's backup provider keeps the provider's rules: signed,
/// fresh, never replayed uploads; listing by locator; files served once or until they expire.
@Suite struct InMemoryRelayTests {
    let relay: InMemoryRelay
    let scratch = Scratch()
    let device: Device

    init() async throws {
        relay = try InMemoryRelay()
        device = try Device("uploader", in: scratch, relay: relay)
        try await device.messenger.join(AccountKey.generate())
        try FileManager.default.createDirectory(at: scratch.url, withIntermediateDirectories: true)
    }

    func file(_ name: String, _ contents: [UInt8]) throws -> URL {
        let url = scratch.path(name)
        try Data(contents).write(to: url)
        return url
    }

    func code(_ body: () async throws -> Void) async -> String? {
        do { try await body(); return nil } catch let error as RelayError { return error.code } catch { return "\(error)" }
    }

    @Test func uploadsFollowTheProvidersRules() async throws {
        let contents = Random.bytes(10_000), locator = Random.bytes(32)
        let source = try file("backup.ksbak", contents)
        let auth = try device.store.authenticateRequest(method: "POST", path: relay.backupUploadURL.path, contentDigest: Blake2b.hash(contents))
        let stored = try await relay.uploadBackup(source, to: relay.backupUploadURL, authentication: auth, options: .init(locator: locator))
        #expect(stored.size == contents.count && stored.digest == Blake2b.hash(contents))
        #expect(try await relay.listBackups(locator: locator).map(\.id) == [stored.id])
        #expect(try await relay.listBackups(locator: Random.bytes(32)).isEmpty)
        try await relay.downloadBackup(from: stored.url, to: scratch.path("copy"))
        #expect(try Data(contentsOf: scratch.path("copy")) == Data(contents))

        #expect(await code { _ = try await relay.uploadBackup(source, to: relay.backupUploadURL, authentication: auth, options: .init()) } == "replayed_request")
        let wrongDigest = try device.store.authenticateRequest(method: "POST", path: relay.backupUploadURL.path, contentDigest: Blake2b.hash([1]))
        #expect(await code { _ = try await relay.uploadBackup(source, to: relay.backupUploadURL, authentication: wrongDigest, options: .init()) } == "digest_mismatch")
        let stranger = try Store.open(at: scratch.path("stranger"))
        let unknown = try stranger.authenticateRequest(method: "POST", path: relay.backupUploadURL.path, contentDigest: Blake2b.hash(contents))
        #expect(await code { _ = try await relay.uploadBackup(source, to: relay.backupUploadURL, authentication: unknown, options: .init()) } == "unknown_installation")

        let once = try device.store.authenticateRequest(method: "POST", path: relay.backupUploadURL.path, contentDigest: Blake2b.hash(contents))
        let single = try await relay.uploadBackup(source, to: relay.backupUploadURL, authentication: once, options: .init(deleteAfterDownload: true))
        try await relay.downloadBackup(from: single.url, to: scratch.path("once"))
        #expect(await code { try await relay.downloadBackup(from: single.url, to: scratch.path("twice")) } == "no_backup")

        let brief = try device.store.authenticateRequest(method: "POST", path: relay.backupUploadURL.path, contentDigest: Blake2b.hash(contents))
        let short = try await relay.uploadBackup(source, to: relay.backupUploadURL, authentication: brief, options: .init(lifetime: .seconds(1)))
        try await Task.sleep(for: .milliseconds(1_200))
        #expect(await code { try await relay.downloadBackup(from: short.url, to: scratch.path("late")) } == "no_backup")
    }

    @Test func watchingATopicYieldsWhatIsThereThenWhatArrives() async throws {
        let me = try #require(try device.store.membership())
        var mine = relay.watch(.contact(account: me.account.rawValue), after: 0).makeAsyncIterator()
        #expect(try await mine.next()?.data == me.signedBundle, "the bundle published on join")
        let bobAccount = try AccountKey.generate()
        var bobs = relay.watch(.contact(account: bobAccount.id.rawValue), after: 0).makeAsyncIterator()
        let bob = try Device("bob", in: scratch, relay: relay)
        try await bob.messenger.join(bobAccount)
        #expect(try await bobs.next()?.data == (try #require(try bob.store.membership())).signedBundle, "published after the watch began")
        let inbox = KeepsakeWire.Topic.message(installation: me.installation.bytes)
        #expect(await code { _ = try await relay.publish([1, 2, 3], to: inbox) } == "malformed", "the relay's own checks")
    }
}

/// Concurrent publishes share transactions (group commit) and keep their own
/// outcomes: each valid one stored once, a duplicate answered with the first
/// cursor, a refused one refused alone.
@Suite struct GroupCommitTests {
    @Test func concurrentPublishesKeepTheirOwnOutcomes() async throws {
        let relay = try InMemoryRelay()
        let inbox = Topic.message(installation: Random.bytes(16))
        let now = UInt64(Date().timeIntervalSince1970 * 1e9)
        func envelope(_ n: Int, sentNs: UInt64? = nil) throws -> [UInt8] {
            try Envelope.with {
                $0.header = Data(try EnvelopeHeader.with { $0.sentNs = sentNs ?? now + UInt64(n) }.wireBytes())
                $0.ciphertext = Data([UInt8(n & 0xFF), UInt8(n >> 8)])
            }.wireBytes()
        }
        // 300 publishes at once: 0..<200 valid, 200..<250 repeat 0..<50, 250..<300 sent in milliseconds (refused).
        let outcomes = try await withThrowingTaskGroup(of: (Int, Result<Int64, RelayError>).self) { group in
            for index in 0..<300 {
                let body = index < 200 ? try envelope(index) : index < 250 ? try envelope(index - 200) : try envelope(index, sentNs: now / 1_000_000)
                group.addTask {
                    do { return (index, .success(try await relay.publish(body, to: inbox))) } catch let error as RelayError { return (index, .failure(error)) }
                }
            }
            var outcomes: [Int: Result<Int64, RelayError>] = [:]
            for try await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes
        }
        let cursors = (0..<200).compactMap { try? outcomes[$0]?.get() }
        #expect(cursors.count == 200 && Set(cursors).count == 200, "every valid publish stored, each with its own cursor")
        #expect((200..<250).allSatisfy { index in
            guard let repeated = try? outcomes[index]?.get() else { return false }
            return repeated == (try? outcomes[index - 200]?.get())
        }, "a repeat gets the first cursor")
        #expect((250..<300).allSatisfy { if case .failure(let error)? = outcomes[$0] { error.code == "sent_time_out_of_range" } else { false } })
        let stored = try await relay.items(on: inbox, after: 0, limit: 1_000).items
        #expect(stored.count == 200 && stored.map(\.cursor) == cursors.sorted(), "nothing refused or repeated was stored")
    }
}

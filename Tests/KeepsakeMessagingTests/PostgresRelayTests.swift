import Foundation
import Keepsake
import KeepsakeCrypto
import KeepsakeRelayClient
import KeepsakeTestServers
import KeepsakeWire
import Testing

/// Relays on PostgreSQL: several relay processes on one database act as one relay.
@Suite struct PostgresRelayTests {
    let scratch = Scratch()

    /// Two relays on a new database of the shared test server.
    func twoRelays(_ options: [String] = [], environment: [String: String] = [:]) throws -> (RelayProcess, RelayProcess) {
        let database = try PostgresServer.shared.get().makeDatabase()
        return (try RelayProcess(options + ["--database", database], environment: environment),
                try RelayProcess(options + ["--database", database], environment: environment))
    }

    /// Clients split between two relays message each other as on one relay.
    @Test func devicesOnTwoRelaysOfOneDatabaseMessageEachOther() async throws {
        let (a, b) = try twoRelays()
        let alice = try AccountKey.generate(), bob = try AccountKey.generate()
        let alicePhone = try Device("alice-phone", in: scratch, relay: a)
        let aliceLaptop = try Device("alice-laptop", in: scratch, relay: b)
        let bobPhone = try Device("bob-phone", in: scratch, relay: b)
        try await alicePhone.messenger.join(alice, role: "phone")
        try await aliceLaptop.messenger.join(alice, role: "laptop")
        try await bobPhone.messenger.join(bob, role: "phone")

        let hello = try await alicePhone.messenger.send("hi bob", toAccount: bob.id)
        #expect(hello.envelopes == 2, "bob's phone and alice's laptop, found through the other relay")
        #expect(try await bobPhone.messenger.sync().received == [hello.message])
        #expect(try await aliceLaptop.messenger.sync().received == [hello.message])
        let reply = try await bobPhone.messenger.send("hi alice", to: hello.conversation)
        #expect(try await alicePhone.messenger.sync().received == [reply.message])
        #expect(try alicePhone.texts(in: hello.conversation) == ["hi bob", "hi alice"])
        #expect(try aliceLaptop.texts(in: hello.conversation) == ["hi bob"])
    }

    /// A follower on one relay gets what the other relay stores through the
    /// database's wake-up (PostgreSQL LISTEN/NOTIFY): its keep-alive, which would
    /// also read the topic again, is set an hour away.
    @Test(.timeLimit(.minutes(2))) func aFollowerOnOneRelaySeesPublishesOnTheOther() async throws {
        let (a, b) = try twoRelays(["--keep-alive", "3600"])
        let topic = Topic.message(installation: Random.bytes(16))
        var items = b.client.watch(topic, after: 0).makeAsyncIterator()
        // The first item shows the follow is live (it may come from the first read)...
        let first = try await a.client.publish(try sampleEnvelope(1), to: topic)
        #expect(try await items.next()?.cursor == first)
        // ...the second can only come from a wake-up.
        let second = try await a.client.publish(try sampleEnvelope(2), to: topic)
        #expect(try await items.next()?.cursor == second)
    }

    /// Epoch claims, one-time prekeys and nonces taken through two relays at
    /// the same moment are taken once.
    @Test func claimsThroughTwoRelaysAtOnceAreExactlyOnce() async throws {
        let (a, b) = try twoRelays(["--prekey-claims-per-pair", "1000", "--one-time-prekeys-per-target", "1000"])
        let group = Random.bytes(32)
        let (clientA, clientB) = (a.client, b.client)
        for epoch in 1...10 {
            let claims = [EpochClaim(epoch: UInt64(epoch), commitDigest: Random.bytes(32)), EpochClaim(epoch: UInt64(epoch), commitDigest: Random.bytes(32))]
            async let first = clientA.claimEpoch(claims[0], group: group)
            async let second = clientB.claimEpoch(claims[1], group: group)
            let won = try await [first, second]
            #expect(won.filter { $0 }.count == 1, "epoch \(epoch): exactly one commit holds it: \(won)")
        }

        let account = try AccountKey.generate()
        var options = Messenger.Options()
        options.prekeyBatch = 20
        let target = try Device("target", in: scratch, relay: a, options: options)
        try await target.messenger.join(account, role: "target")
        let claimants = [try Device("claimant-a", in: scratch, relay: a), try Device("claimant-b", in: scratch, relay: b)]
        for claimant in claimants { try await claimant.messenger.join(account, role: claimant.store.directory.lastPathComponent) }
        let targetID = try #require(try target.store.membership()).installation.bytes
        let (storeA, storeB) = (claimants[0].store, claimants[1].store)
        var served: [ClaimedPrekey] = []
        for _ in 0..<15 {
            async let first = clientA.claimPrekey(of: targetID, as: storeA)
            async let second = clientB.claimPrekey(of: targetID, as: storeB)
            served += try await [first, second].compactMap { $0 }
        }
        let oneTime = served.filter { !$0.fallback }.map(\.data)
        #expect(oneTime.count == 20, "every one-time prekey was served: \(oneTime.count)")
        #expect(Set(oneTime).count == oneTime.count, "and none twice")

        let auth = try storeA.authenticateRequest(method: "POST", path: Topic.prekey(installation: targetID).path + "/claim",
                                                 contentDigest: RequestAuthentication.emptyBodyDigest)
        _ = try await clientA.claimPrekey(of: targetID, authentication: auth)
        await #expect(throws: RelayClient.Failure.refused(status: 401, code: "replayed_request", message: "this signed request was already used")) {
            _ = try await clientB.claimPrekey(of: targetID, authentication: auth)
        }
    }

    /// `keepsake bench relay` on two relays of one database: publishes go to both,
    /// the follow and the read-back to the first, and every envelope arrives once.
    @Test func theRelayLoadTestRunsOnTwoRelaysOfOneDatabase() throws {
        let database = try PostgresServer.shared.get().makeDatabase()
        let result = try keepsake(["bench", "relay", "--database", database, "--instances", "2",
                                   "--envelopes", "300", "--topics", "5", "--concurrency", "4", "--json"])
        #expect(result.status == 0, "\(result.error)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        #expect(report["relays"] as? Int == 2 && report["backend"] as? String == "PostgreSQL")
        #expect(report["published"] as? Int == 300)
        #expect(report["lost"] as? Int == 0 && report["duplicated"] as? Int == 0 && report["unexpected"] as? Int == 0)
        #expect(report["followDelivered"] as? Int == 60, "the follow on the first relay saw its topic's envelopes, the second's too")
    }

    /// One of two relays on one database and one bucket killed (SIGKILL) mid-load:
    /// every publish and upload either relay acknowledged is there through the
    /// other; the dead relay's clients send again to the survivor what it never
    /// acknowledged, and nothing is stored twice.
    @Test(.timeLimit(.minutes(4))) func aRelayKilledMidLoadLosesNothingAcknowledged() async throws {
        let seaweed = try SeaweedServer.shared.get()
        let bucket = try seaweed.client(bucket: try await seaweed.makeBucket())
        let (a, b) = try twoRelays(["--blobs", "s3://\(bucket.bucket)/backups"], environment: seaweed.environment)
        let device = try Device("uploader", in: scratch, relay: b)
        try await device.messenger.join(try AccountKey.generate())
        try FileManager.default.createDirectory(at: scratch.url, withIntermediateDirectories: true)
        let topic = Topic.message(installation: Random.bytes(16))
        let bodies = try (0..<2_000).map(sampleEnvelope)
        let (clientA, clientB, store, locator) = (a.client, b.client, device.store, Random.bytes(32))

        // Each relay's client publishes its half in order, and the dead relay's client stops at its first failure.
        @Sendable func publish(_ indices: [Int], through client: RelayClient) async -> [Int: Int64] {
            var acknowledged: [Int: Int64] = [:]
            for index in indices {
                guard let cursor = try? await client.publish(bodies[index], to: topic) else { break }
                acknowledged[index] = cursor
            }
            return acknowledged
        }
        let onA = Task { await publish(Array(stride(from: 0, to: bodies.count, by: 2)), through: clientA) }
        let onB = Task { await publish(Array(stride(from: 1, to: bodies.count, by: 2)), through: clientB) }
        let folder = scratch.url
        let uploads = Task {
            var acknowledged: [(backup: StoredBackup, contents: [UInt8])] = []
            for n in 0..<50 {
                let contents = Random.bytes(64 * 1024), source = folder.appendingPathComponent("upload-\(n)")
                try Data(contents).write(to: source)
                let auth = try store.authenticateRequest(method: "POST", path: "/v1/backups", contentDigest: Blake2b.hash(contents))
                guard let backup = try? await clientA.uploadBackup(source, to: clientA.backupUploadURL, authentication: auth,
                                                                   options: .init(locator: locator)) else { break }
                acknowledged.append((backup, contents))
            }
            return acknowledged
        }
        // Mid-load: some publishes and some uploads are through.
        func midLoad() async throws -> Bool {
            let (published, uploaded) = (try await clientB.items(on: topic, after: 0, limit: 100).items.count, try await clientB.listBackups(locator: locator).count)
            return published >= 60 && uploaded >= 2
        }
        while try await !midLoad() { try await Task.sleep(for: .milliseconds(20)) }
        a.kill()
        let (ackedA, ackedB, uploaded) = (await onA.value, await onB.value, try await uploads.value)
        #expect(ackedA.count < bodies.count / 2, "the kill came mid-load: \(ackedA.count) acknowledged on the killed relay")
        #expect(ackedB.count == bodies.count / 2, "the survivor took all of its half")

        for index in stride(from: 0, to: bodies.count, by: 2) where ackedA[index] == nil {
            _ = try await clientB.publish(bodies[index], to: topic)
        }
        var stored: [RelayItem] = []
        while case let page = try await clientB.items(on: topic, after: stored.last?.cursor ?? 0, limit: 1_000).items, !page.isEmpty {
            stored += page
        }
        #expect(stored.count == bodies.count, "each body once: \(stored.count)")
        #expect(Set(stored.map(\.data)) == Set(bodies))
        let byCursor = Dictionary(uniqueKeysWithValues: stored.map { ($0.cursor, $0.data) })
        for (index, cursor) in ackedA.merging(ackedB, uniquingKeysWith: { $1 }) {
            #expect(byCursor[cursor] == bodies[index], "body \(index) is where its acknowledgement said")
        }

        #expect(!uploaded.isEmpty)
        let listed = Set(try await clientB.listBackups(locator: locator).map(\.id))
        for (backup, contents) in uploaded {
            #expect(listed.contains(backup.id), "acknowledged upload \(backup.id) is listed by the survivor")
            let copy = scratch.path("copy-\(backup.id)")
            try await clientB.downloadBackup(from: b.url.appendingPathComponent("v1/backups/\(backup.id)"), to: copy)
            #expect(try Data(contentsOf: copy) == Data(contents))
        }
    }

    /// PostgreSQL killed mid-load: publishes fail with 503 `storage_unavailable`
    /// while it is down and succeed once it is back; every acknowledged publish
    /// is stored exactly once, and retries of unacknowledged ones are not duplicates.
    @Test func aDatabaseRestartMidLoadLosesAndDuplicatesNothing() async throws {
        let server = try PostgresServer()
        let relay = try RelayProcess(["--database", try server.makeDatabase()], keepingLog: true)
        let topic = Topic.message(installation: Random.bytes(16))
        let bodies = try (0..<30).map(sampleEnvelope)
        var acknowledged: [Int: Int64] = [:]
        var refusals: Set<String> = []
        for (index, body) in bodies.enumerated() {
            if index == 10 { server.kill() }
            if index == 15 { try server.restart() }
            while true {
                do {
                    acknowledged[index] = try await relay.client.publish(body, to: topic)
                    break
                } catch let RelayClient.Failure.refused(_, code, _) {
                    refusals.insert(code)
                    if index < 15 { break }
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
        }
        #expect(refusals == ["storage_unavailable"], "\(refusals)")
        #expect(try await relay.metrics()["keepsake_relay_storage_failures_total"] ?? 0 >= 5, "one for each publish refused while it was down")
        let log = try relay.log()
        #expect(log.contains("storage failed: POST \(topic.path): ") && log.contains("hb.request.id="), "the cause is logged with the request's ID")
        #expect(try await relay.readiness() == 200, "ready again once the database is back")
        server.kill()
        #expect(try await relay.readiness() == 503, "not ready while the database is down")
        try server.restart()
        let deadline = ContinuousClock.now + .seconds(30)
        while try await relay.readiness() != 200 {
            try #require(ContinuousClock.now < deadline, "ready again within 30 s of the restart")
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect((10..<15).allSatisfy { acknowledged[$0] == nil }, "nothing is acknowledged while the database is down")
        #expect((0..<10).allSatisfy { acknowledged[$0] != nil } && (15..<30).allSatisfy { acknowledged[$0] != nil })
        // Clients retry what was refused: stored once each, and what was acknowledged keeps its cursor.
        for index in 10..<15 { acknowledged[index] = try await relay.client.publish(bodies[index], to: topic) }
        for (index, cursor) in acknowledged where index < 10 || index >= 15 {
            #expect(try await relay.client.publish(bodies[index], to: topic) == cursor)
        }
        let stored = try await relay.client.items(on: topic, after: 0, limit: 1_000).items
        #expect(stored.count == 30)
        #expect(Set(stored.map(\.data)) == Set(bodies))
    }
}

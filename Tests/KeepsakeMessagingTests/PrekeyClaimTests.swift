import Foundation
import KeepsakeTransport
import Testing
@testable import KeepsakeMessaging
@testable import KeepsakeStore
import KeepsakeCrypto
import KeepsakeRelay
import KeepsakeWire

/// Prekeys cannot be drained: claims are signed by known installations and
/// limited per requester, per requester and target, and per target, where the
/// one-time prekeys served per hour are capped and later claimants get the fallback.
@Suite struct PrekeyClaimTests {
    let scratch = Scratch()

    func devices(_ count: Int, on relay: InMemoryRelay) async throws -> [Device] {
        var devices: [Device] = []
        for index in 0..<count {
            let device = try Device("device-\(index)", in: scratch, relay: relay)
            try await device.messenger.join(AccountKey.generate())
            devices.append(device)
        }
        return devices
    }

    func installation(_ device: Device) throws -> [UInt8] { try #require(try device.store.membership()).installation.bytes }

    /// What a claim ended as: a one-time prekey, the fallback, or the relay's limit (with its code).
    enum Outcome: Equatable { case oneTime, fallback, limited(String) }

    func claim(_ target: Device, by requester: Device, on relay: InMemoryRelay) async throws -> Outcome {
        do {
            let claimed = try #require(try await relay.claimPrekey(of: installation(target), as: requester.store))
            return claimed.fallback ? .fallback : .oneTime
        } catch let limited as PrekeyClaimLimited {
            return .limited(limited.code)
        }
    }

    @Test func manyClaimantsTogetherGetAtMostTheHourlyOneTimeBudgetThenTheFallback() async throws {
        var limits = Relay.Limits()
        limits.oneTimePrekeysPerTarget = 5
        limits.prekeyClaimsPerPair = 3
        limits.prekeyClaimsPerTarget = 20
        let relay = try InMemoryRelay(limits: limits)
        let all = try await devices(9, on: relay)
        let (target, sybils) = (all[0], Array(all.dropFirst()))
        var outcomes: [Outcome] = []
        for sybil in sybils {
            for _ in 0..<3 { outcomes.append(try await claim(target, by: sybil, on: relay)) }
        }
        #expect(outcomes.filter { $0 == .oneTime }.count == 5, "the hour's one-time budget, and no more")
        #expect(Array(outcomes.prefix(5)) == Array(repeating: .oneTime, count: 5))
        #expect(outcomes.filter { $0 == .fallback }.count == 15, "everyone after gets the fallback and can still start a session")
        #expect(outcomes.suffix(4) == Array(repeating: .limited("target_rate_limited"), count: 4), "20 claims of one installation per hour, then 429")

        let stock = try await relay.prekeyStock(of: target.store)
        #expect(stock == PrekeyStock(oneTimeRemaining: 45, oneTimeServedLastHour: 5, fallbackServedLastHour: 15),
                "45 of the 50 one-time prekeys are left, and the target sees the rush")
    }

    @Test func oneRequesterIsLimitedPerTargetAndInAll() async throws {
        var limits = Relay.Limits()
        limits.prekeyClaimsPerPair = 2
        limits.prekeyClaimsPerRequester = 5
        let relay = try InMemoryRelay(limits: limits)
        let all = try await devices(4, on: relay)
        let requester = all[0]
        var outcomes: [Outcome] = []
        for _ in 0..<4 { outcomes.append(try await claim(all[1], by: requester, on: relay)) }
        #expect(outcomes == [.oneTime, .oneTime, .limited("rate_limited"), .limited("rate_limited")], "two claims of one installation per hour")
        outcomes = []
        for target in all.dropFirst(2) {
            for _ in 0..<2 { outcomes.append(try await claim(target, by: requester, on: relay)) }
        }
        #expect(outcomes == [.oneTime, .oneTime, .oneTime, .limited("rate_limited")], "five served claims per hour in all")
        #expect(try await relay.prekeyStock(of: all[1].store).oneTimeRemaining == 48, "refused claims took nothing")
        #expect(try await claim(all[1], by: all[2], on: relay) == .oneTime, "other requesters are not held back")
    }

    @Test func claimsAndStockReadsNeedTheRightSignature() async throws {
        let relay = try InMemoryRelay()
        let all = try await devices(2, on: relay)
        let (target, requester) = (all[0], all[1])
        let targetID = try installation(target)
        let claimPath = Topic.prekey(installation: targetID).path + "/claim"
        func code(_ authentication: RequestAuthentication) async -> String? {
            do { _ = try await relay.claimPrekey(of: targetID, authentication: authentication); return nil } catch let error as RelayError {
                return error.code
            } catch { return "\(error)" }
        }
        let stranger = try Store.open(at: scratch.path("stranger"))
        let empty = RequestAuthentication.emptyBodyDigest
        #expect(await code(try stranger.authenticateRequest(method: "POST", path: claimPath, contentDigest: empty)) == "unknown_installation")
        #expect(await code(try requester.store.authenticateRequest(method: "POST", path: "/v1/backups", contentDigest: empty)) == "bad_signature")
        #expect(await code(try requester.store.authenticateRequest(method: "POST", path: claimPath, contentDigest: Blake2b.hash([1])))
                == "digest_mismatch")
        let (me, key) = try requester.store.signingKey()
        let stale = RequestAuthentication.sign(method: "POST", path: claimPath, installation: me.id.bytes, contentDigest: empty, with: key,
                                               at: Date().addingTimeInterval(-600))
        #expect(await code(stale) == "stale_request")
        let good = try requester.store.authenticateRequest(method: "POST", path: claimPath, contentDigest: empty)
        #expect(await code(good) == nil)
        #expect(await code(good) == "replayed_request", "a signed claim is accepted once")
        #expect(try await relay.prekeyStock(of: target.store).oneTimeRemaining == 49, "only the one good claim took a prekey")

        let othersStock = try requester.store.authenticateRequest(method: "GET", path: Topic.prekey(installation: targetID).path, contentDigest: empty)
        await #expect(throws: RelayError(.forbidden, code: "not_your_prekeys", "only the installation itself may read its prekey stock")) {
            _ = try await relay.prekeyStock(of: targetID, authentication: othersStock)
        }
    }

    @Test func aSendOverTheClaimLimitLeavesThatInstallationUnreachableAndTheRestDelivered() async throws {
        var limits = Relay.Limits()
        limits.prekeyClaimsPerTarget = 1
        let relay = try InMemoryRelay(limits: limits)
        let all = try await devices(3, on: relay)
        let (alice, bob, carol) = (all[0], all[1], all[2])
        let bobAccount = try #require(try bob.store.membership()).account
        _ = try await carol.messenger.send("carol takes bob's one claim of the hour", toAccount: bobAccount)
        let receipt = try await alice.messenger.send("hello", toAccount: bobAccount)
        #expect(receipt.envelopes == 0 && receipt.unreachable == 1, "the relay would not serve a prekey: counted, not thrown")
        #expect(try await bob.messenger.sync().received.count == 1, "carol's message arrived")
    }
}

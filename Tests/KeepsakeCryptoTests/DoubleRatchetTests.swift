import Testing
@testable import KeepsakeCrypto

@Suite struct DoubleRatchetTests {
    /// Alice starts (she knows Bob's ratchet key from his prekey bundle); both share `secret`.
    private func pair() throws -> (alice: DoubleRatchet, bob: DoubleRatchet) {
        let secret = try SecureBytes.random(count: 32)
        let bobRatchet = try KeyAgreementKey.generate()
        return (try .initiator(sharedSecret: secret, responderRatchetKey: bobRatchet.publicKey),
                try .responder(sharedSecret: secret, ratchet: bobRatchet))
    }

    @Test func messagesFlowBothWaysAndTheRatchetTurns() throws {
        var (alice, bob) = try pair()
        let ad = Array("alice|bob".utf8)
        var keys: Set<[UInt8]> = []
        for round in 0..<4 {
            let a = try alice.encrypt(Array("a\(round)".utf8), associatedData: ad)
            keys.insert(a.header.ratchetKey)
            #expect(try bob.decrypt(header: a.header, ciphertext: a.ciphertext, associatedData: ad) == Array("a\(round)".utf8))
            let b = try bob.encrypt(Array("b\(round)".utf8), associatedData: ad)
            keys.insert(b.header.ratchetKey)
            #expect(try alice.decrypt(header: b.header, ciphertext: b.ciphertext, associatedData: ad) == Array("b\(round)".utf8))
        }
        #expect(keys.count == 8, "each reply turns the DH ratchet: a new key per turn")
    }

    @Test func outOfOrderMessagesUseSkippedKeysOnce() throws {
        var (alice, bob) = try pair()
        let messages = try (0..<5).map { try alice.encrypt(Array("m\($0)".utf8), associatedData: []) }
        for index in [3, 0, 4, 1, 2] {
            #expect(try bob.decrypt(header: messages[index].header, ciphertext: messages[index].ciphertext, associatedData: []) == Array("m\(index)".utf8))
        }
        let before = bob
        #expect(throws: DoubleRatchet.Failure.replayed, "a message key is used once; the second delivery is a replay") {
            try bob.decrypt(header: messages[3].header, ciphertext: messages[3].ciphertext, associatedData: [])
        }
        let reply = try bob.encrypt([1], associatedData: [])
        var bobBefore = before
        #expect(try bobBefore.encrypt([1], associatedData: []).header.number == reply.header.number, "the failure changed nothing")
    }

    @Test func replaysAreToldApartAfterTheRatchetTurnsAndAcrossSerialization() throws {
        var (alice, bob) = try pair()
        let early = try alice.encrypt(Array("early".utf8), associatedData: [])
        _ = try bob.decrypt(header: early.header, ciphertext: early.ciphertext, associatedData: [])
        for round in 0..<3 {
            let b = try bob.encrypt([UInt8(round)], associatedData: [])
            _ = try alice.decrypt(header: b.header, ciphertext: b.ciphertext, associatedData: [])
            let a = try alice.encrypt([UInt8(round)], associatedData: [])
            _ = try bob.decrypt(header: a.header, ciphertext: a.ciphertext, associatedData: [])
        }
        var restored = try DoubleRatchet(serialized: bob.serialized())
        #expect(throws: DoubleRatchet.Failure.replayed, "a message of a finished chain") {
            try restored.decrypt(header: early.header, ciphertext: early.ciphertext, associatedData: [])
        }
        var forged = early.ciphertext
        forged[0] ^= 1
        let unknownKey = try KeyAgreementKey.generate().publicKey
        #expect(throws: DoubleRatchet.Failure.undecryptable, "a chain never seen is not a replay") {
            try restored.decrypt(
                header: .init(ratchetKey: unknownKey, previousChainLength: 0, number: 0), ciphertext: forged, associatedData: [])
        }
    }

    @Test func failuresLeaveTheSessionAsItWas() throws {
        var (alice, bob) = try pair()
        let first = try alice.encrypt(Array("hello".utf8), associatedData: [])
        var tampered = first.ciphertext
        tampered[0] ^= 1
        #expect(throws: DoubleRatchet.Failure.undecryptable) {
            try bob.decrypt(header: first.header, ciphertext: tampered, associatedData: [])
        }
        #expect(throws: DoubleRatchet.Failure.undecryptable, "the header is authenticated too") {
            try bob.decrypt(header: first.header, ciphertext: first.ciphertext, associatedData: [9])
        }
        #expect(try bob.decrypt(header: first.header, ciphertext: first.ciphertext, associatedData: []) == Array("hello".utf8))

        let far = DoubleRatchet.Header(
            ratchetKey: first.header.ratchetKey, previousChainLength: 0, number: UInt32(DoubleRatchet.maxSkip + 10))
        #expect(throws: DoubleRatchet.Failure.tooManySkipped(DoubleRatchet.maxSkip + 9)) {
            try bob.decrypt(header: far, ciphertext: first.ciphertext, associatedData: [])
        }
        let second = try alice.encrypt(Array("still here".utf8), associatedData: [])
        #expect(try bob.decrypt(header: second.header, ciphertext: second.ciphertext, associatedData: []) == Array("still here".utf8))
    }
}

@Suite struct DoubleRatchetStateTests {
    @Test func aSessionSurvivesSerializationWithItsSkippedKeys() throws {
        let secret = try SecureBytes.random(count: 32)
        let bobRatchet = try KeyAgreementKey.generate()
        var alice = try DoubleRatchet.initiator(sharedSecret: secret, responderRatchetKey: bobRatchet.publicKey)
        var bob = try DoubleRatchet.responder(sharedSecret: secret, ratchet: bobRatchet)
        let messages = try (0..<3).map { try alice.encrypt([UInt8($0)], associatedData: []) }
        _ = try bob.decrypt(header: messages[2].header, ciphertext: messages[2].ciphertext, associatedData: [])

        var restored = try DoubleRatchet(serialized: bob.serialized())
        #expect(try restored.decrypt(header: messages[0].header, ciphertext: messages[0].ciphertext, associatedData: []) == [0])
        let reply = try restored.encrypt([42], associatedData: [])
        #expect(try alice.decrypt(header: reply.header, ciphertext: reply.ciphertext, associatedData: []) == [42])
        var aliceAgain = try DoubleRatchet(serialized: alice.serialized())
        let next = try aliceAgain.encrypt([7], associatedData: [])
        #expect(try restored.decrypt(header: next.header, ciphertext: next.ciphertext, associatedData: []) == [7])
    }

    @Test func corruptStateIsRefused() throws {
        let session = try DoubleRatchet.responder(sharedSecret: SecureBytes.random(count: 32), ratchet: KeyAgreementKey.generate())
        let bytes = try session.serialized().withUnsafeBytes { Array($0) }
        for bad in [Array(bytes.dropLast()), [3] + bytes.dropFirst(), bytes + [0]] {
            let state = try SecureBytes(count: bad.count)
            state.withUnsafeMutableBytes { $0.copyBytes(from: bad) }
            #expect(throws: DoubleRatchet.Failure.corruptState) { try DoubleRatchet(serialized: state) }
        }
    }
}

@Suite struct X3DHTests {
    @Test(arguments: [true, false]) func bothSidesAgreeAndTheSessionStarts(withOneTimePrekey: Bool) throws {
        let alice = try KeyAgreementKey.generate(), bob = try KeyAgreementKey.generate()
        let signedPrekey = try KeyAgreementKey.generate(), oneTime = try KeyAgreementKey.generate()
        let (aliceSecret, ephemeral) = try X3DH.initiate(
            identity: alice, responderIdentity: bob.publicKey, signedPrekey: signedPrekey.publicKey,
            oneTimePrekey: withOneTimePrekey ? oneTime.publicKey : nil)
        let bobSecret = try X3DH.respond(
            identity: bob, signedPrekey: signedPrekey, oneTimePrekey: withOneTimePrekey ? oneTime : nil,
            initiatorIdentity: alice.publicKey, ephemeralKey: ephemeral)
        #expect(aliceSecret.withUnsafeBytes { Array($0) } == bobSecret.withUnsafeBytes { Array($0) })

        var a = try DoubleRatchet.initiator(sharedSecret: aliceSecret, responderRatchetKey: signedPrekey.publicKey)
        var b = try DoubleRatchet.responder(sharedSecret: bobSecret, ratchet: signedPrekey)
        let hello = try a.encrypt(Array("hi bob".utf8), associatedData: alice.publicKey + bob.publicKey)
        #expect(try b.decrypt(header: hello.header, ciphertext: hello.ciphertext, associatedData: alice.publicKey + bob.publicKey) == Array("hi bob".utf8))
    }

    @Test func aDifferentOneTimePrekeyGivesAnotherSecret() throws {
        let alice = try KeyAgreementKey.generate(), bob = try KeyAgreementKey.generate()
        let signedPrekey = try KeyAgreementKey.generate(), oneTime = try KeyAgreementKey.generate()
        let (secret, ephemeral) = try X3DH.initiate(
            identity: alice, responderIdentity: bob.publicKey, signedPrekey: signedPrekey.publicKey, oneTimePrekey: oneTime.publicKey)
        let wrong = try X3DH.respond(
            identity: bob, signedPrekey: signedPrekey, oneTimePrekey: try KeyAgreementKey.generate(),
            initiatorIdentity: alice.publicKey, ephemeralKey: ephemeral)
        #expect(secret.withUnsafeBytes { Array($0) } != wrong.withUnsafeBytes { Array($0) })
        #expect(throws: CryptoError.invalidParameters("the peer's X25519 public key has low order")) {
            try X3DH.initiate(identity: alice, responderIdentity: [UInt8](repeating: 0, count: 32), signedPrekey: signedPrekey.publicKey, oneTimePrekey: nil)
        }
    }
}

import Foundation
import Testing
@testable import KeepsakeCrypto
import KeepsakeWire

/// The test vectors of docs/PROTOCOL.md §4 (an X3DH agreement and the first
/// Double Ratchet message): KeepsakeCrypto computes every value the document
/// lists, and scripts/protocol-vectors.py, written with Python's `cryptography`
/// alone, prints the same block.
@Suite struct ProtocolVectorTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `name = hex` lines of the document's test vector block.
    static func documentedVector() throws -> [String: [UInt8]] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/PROTOCOL.md"), encoding: .utf8)
        let section = try #require(text.range(of: "### Test vectors")).upperBound
        let block = try #require(text[section...].range(of: "```text\n")).upperBound
        let end = try #require(text[block...].range(of: "```")).lowerBound
        var values: [String: [UInt8]] = [:]
        for line in text[block..<end].split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let value = Hex.decode(parts[1]) else {
                Issue.record("\(line) is not hex")
                continue
            }
            values[parts[0]] = value
        }
        return values
    }

    @Test func keepsakeCryptoComputesEveryDocumentedValue() throws {
        let v = try Self.documentedVector()
        func key(_ name: String) throws -> KeyAgreementKey {
            let key = try KeyAgreementKey(secret: SecureBytes(copying: Data(try #require(v[name + " secret"]))))
            #expect(key.publicKey == v[name + " public"], "\(name)'s public key")
            return key
        }
        func bytes(_ secret: SecureBytes) -> [UInt8] { secret.withUnsafeBytes { Array($0) } }
        let (ikA, ekA, ikB, pkB, rkA) = (try key("IK_A"), try key("EK_A"), try key("IK_B"), try key("PK_B"), try key("RK_A"))

        #expect(bytes(try ikA.sharedSecret(with: pkB.publicKey)) == v["DH1"])
        #expect(bytes(try ekA.sharedSecret(with: ikB.publicKey)) == v["DH2"])
        #expect(bytes(try ekA.sharedSecret(with: pkB.publicKey)) == v["DH3"])
        let (secret, baseKey) = try X3DH.initiate(identity: ikA, responderIdentity: ikB.publicKey, signedPrekey: pkB.publicKey,
                                                  oneTimePrekey: nil, ephemeral: ekA)
        #expect(bytes(secret) == v["SK"] && baseKey == v["EK_A public"])
        let responderSecret = try X3DH.respond(identity: ikB, signedPrekey: pkB, oneTimePrekey: nil,
                                               initiatorIdentity: ikA.publicKey, ephemeralKey: ekA.publicKey)
        #expect(bytes(responderSecret) == v["SK"], "the responder agrees")

        let dhR = try rkA.sharedSecret(with: pkB.publicKey)
        #expect(bytes(dhR) == v["DH_R"])
        let (rootKey, chainKey) = try DoubleRatchet.rootStep(secret, dhR)
        #expect(bytes(rootKey) == v["root key"] && bytes(chainKey) == v["chain key"])
        let (nextChain, messageKey) = try DoubleRatchet.chainStep(chainKey)
        #expect(bytes(messageKey) == v["message key"] && bytes(nextChain) == v["next chain key"])

        let header = try EnvelopeHeader.with { $0.sentNs = 1_764_460_800_000_000_000 }.wireBytes()
        #expect(header == v["H"], "H is EnvelopeHeader {sent_ns = 1764460800000000000}")
        let associated = try #require(v["associated data"])
        #expect(associated == header + ikA.publicKey + ikB.publicKey)
        let plaintext = try #require(v["plaintext"])
        var initiator = try DoubleRatchet.initiator(sharedSecret: secret, responderRatchetKey: pkB.publicKey, ratchet: rkA)
        let (ratchetHeader, ciphertext) = try initiator.encrypt(plaintext, associatedData: associated)
        #expect(ratchetHeader.bytes == v["ratchet header"] && ciphertext == v["ciphertext"])

        var responder = try DoubleRatchet.responder(sharedSecret: responderSecret, ratchet: pkB)
        #expect(try responder.decrypt(header: ratchetHeader, ciphertext: ciphertext, associatedData: associated) == plaintext)
    }

    @Test func anIndependentImplementationPrintsTheSameBlock() throws {
        let script = Self.root.appendingPathComponent("scripts/protocol-vectors.py").path
        let result = try runProcess(URL(fileURLWithPath: "/usr/bin/env"),
                                    ["python3", script, "--check", Self.root.appendingPathComponent("docs/PROTOCOL.md").path])
        #expect(result.status == 0, "\(result.error)")
    }
}

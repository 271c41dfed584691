import Testing
@testable import KeepsakeCrypto

/// X25519, sealed boxes, HMAC-SHA-256 and HKDF-SHA-256 against their published vectors.
@Suite struct KeyAgreementTests {
    /// RFC 7748 section 6.1.
    @Test func x25519MatchesRFC7748() throws {
        let alice = try KeyAgreementKey(secret: secure("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
        let bob = try KeyAgreementKey(secret: secure("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
        #expect(hex(alice.publicKey) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        #expect(hex(bob.publicKey) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        #expect(try alice.sharedSecret(with: bob.publicKey).withUnsafeBytes { hex(Array($0)) } == shared)
        #expect(try bob.sharedSecret(with: alice.publicKey).withUnsafeBytes { hex(Array($0)) } == shared)
        #expect(throws: CryptoError.invalidParameters("the peer's X25519 public key has low order")) {
            try alice.sharedSecret(with: [UInt8](repeating: 0, count: 32))
        }
    }

    @Test func sealedBoxesOpenOnlyForTheirRecipient() throws {
        let recipient = try KeyAgreementKey.generate(), other = try KeyAgreementKey.generate()
        let sealed = try SealedBox.seal(Array("sender: alice".utf8), to: recipient.publicKey)
        #expect(sealed.count == 13 + SealedBox.overhead)
        #expect(try SealedBox.open(sealed, as: recipient) == Array("sender: alice".utf8))
        #expect(throws: CryptoError.authenticationFailed) { try SealedBox.open(sealed, as: other) }
        var altered = sealed
        altered[altered.count - 1] ^= 1
        #expect(throws: CryptoError.authenticationFailed) { try SealedBox.open(altered, as: recipient) }
    }

    /// RFC 4231 test case 2.
    @Test func hmacMatchesRFC4231() {
        var out = [UInt8](repeating: 0, count: 32)
        Array("Jefe".utf8).withUnsafeBytes { key in
            Array("what do ya want ".utf8).withUnsafeBytes { a in
                Array("for nothing?".utf8).withUnsafeBytes { b in out.withUnsafeMutableBytes { HMACSHA256.mac(key: key, a, b, into: $0) } }
            }
        }
        #expect(hex(out) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    /// RFC 5869 test cases 1 and 3.
    @Test func hkdfMatchesRFC5869() throws {
        let one = try HKDF.derive(
            secret: secure(String(repeating: "0b", count: 22)), salt: bytes("000102030405060708090a0b0c"),
            info: bytes("f0f1f2f3f4f5f6f7f8f9"), length: 42)
        #expect(one.withUnsafeBytes { hex(Array($0)) }
            == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
        let three = try HKDF.derive(secret: secure(String(repeating: "0b", count: 22)), salt: [], info: [], length: 42)
        #expect(three.withUnsafeBytes { hex(Array($0)) }
            == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
        #expect(throws: CryptoError.invalidParameters("HKDF output length 0 is outside 1...8160")) {
            try HKDF.derive(secret: secure("00"), salt: [], info: [], length: 0)
        }
    }

    private func bytes(_ hex: String) -> [UInt8] {
        stride(from: 0, to: hex.count, by: 2).map { i in
            UInt8(hex[hex.index(hex.startIndex, offsetBy: i)..<hex.index(hex.startIndex, offsetBy: i + 2)], radix: 16)!
        }
    }

    private func secure(_ hex: String) throws -> SecureBytes {
        let raw = bytes(hex)
        let secret = try SecureBytes(count: raw.count)
        secret.withUnsafeMutableBytes { $0.copyBytes(from: raw) }
        return secret
    }

    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

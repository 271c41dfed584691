import Testing
@testable import KeepsakeCrypto

/// The primitives backups are built from: hashes, signatures, nonce-based AEAD,
/// passphrase keys and BIP-39 mnemonics, checked against published vectors where they exist.
@Suite struct BackupCryptoTests {
    @Test func blake2bMatchesTheReferenceVector() {
        #expect(hex(Blake2b.hash([])) == "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8")
    }

    @Test func signaturesVerifyOnlyForTheSignedBytesAndKey() throws {
        let key = try SigningKey.generate()
        let message = Array("header bytes".utf8)
        let signature = key.sign(message)
        #expect(SigningKey.verify(signature: signature, of: message, publicKey: key.publicKey))
        #expect(!SigningKey.verify(signature: signature, of: message + [0], publicKey: key.publicKey))
        #expect(!SigningKey.verify(signature: signature, of: message, publicKey: try SigningKey.generate().publicKey))
        let again = try SigningKey(seed: key.seed())
        #expect(again.publicKey == key.publicKey)
    }

    @Test(arguments: [NoncedAEAD.Cipher.aes256GCM, .xChaCha20Poly1305].filter(\.isAvailable))
    func noncedAEADNeedsTheSameNonceAndAssociatedData(cipher: NoncedAEAD.Cipher) throws {
        let key = try SecureBytes.random(count: 32)
        let nonce = [UInt8](repeating: 7, count: cipher.nonceBytes)
        var sealed: [UInt8] = []
        try Array("chunk".utf8).withUnsafeBytes { try NoncedAEAD.seal($0, nonce: nonce, associatedData: [1], key: key, cipher: cipher, into: &sealed) }
        let opened = try sealed.withUnsafeBytes { try NoncedAEAD.open($0, nonce: nonce, associatedData: [1], key: key, cipher: cipher) }
        #expect(opened == Array("chunk".utf8))
        var otherNonce = nonce
        otherNonce[0] ^= 1
        #expect(throws: CryptoError.authenticationFailed) {
            try sealed.withUnsafeBytes { try NoncedAEAD.open($0, nonce: otherNonce, associatedData: [1], key: key, cipher: cipher) }
        }
        #expect(throws: CryptoError.authenticationFailed) {
            try sealed.withUnsafeBytes { try NoncedAEAD.open($0, nonce: nonce, associatedData: [2], key: key, cipher: cipher) }
        }
    }

    @Test func passphraseKeysAreDeterministicPerSaltAndBounded() throws {
        let salt = [UInt8](repeating: 1, count: PasswordKey.saltBytes)
        func derive(_ passphrase: String, _ salt: [UInt8]) throws -> [UInt8] {
            try PasswordKey.derive(passphrase: passphrase, salt: salt, opsLimit: 1, memLimit: 8 << 10).withUnsafeBytes { Array($0) }
        }
        #expect(try derive("correct horse", salt) == derive("correct horse", salt))
        #expect(try derive("correct horse", salt) != derive("correct horse!", salt))
        #expect(try derive("correct horse", salt) != derive("correct horse", [UInt8](repeating: 2, count: PasswordKey.saltBytes)))
        #expect(throws: CryptoError.invalidParameters("Argon2id limits ops 1, memory 68719476736 bytes are outside the accepted range")) {
            try PasswordKey.derive(passphrase: "x", salt: salt, opsLimit: 1, memLimit: 1 << 36)
        }
    }

    @Test func theWordlistIsBIP39English() {
        let text = Mnemonic.englishWords.joined(separator: "\n") + "\n"
        #expect(Mnemonic.englishWords.count == 2048)
        #expect(hex(Array(text.utf8).withUnsafeBytes { SHA256.hash($0) })
            == "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda")
    }

    /// The 256-bit vectors published with BIP-39 (entropy → words).
    @Test(arguments: [
        ("00", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art"),
        ("7f", "legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title"),
        ("ff", "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote"),
    ])
    func mnemonicsMatchTheBIP39Vectors(byte: String, phrase: String) throws {
        let key = try SecureBytes(count: 32)
        key.withUnsafeMutableBytes { for i in $0.indices { $0[i] = UInt8(byte, radix: 16)! } }
        let mnemonic = try Mnemonic(key: key)
        #expect(mnemonic.description == phrase)
        let parsed = try Mnemonic(parsing: phrase.uppercased().split(separator: " ").joined(separator: "  \n"))
        #expect(try parsed.key().withUnsafeBytes { Array($0) } == key.withUnsafeBytes { Array($0) })
    }

    @Test func typingMistakesInAMnemonicAreToldApart() throws {
        let words = try Mnemonic(key: SecureBytes(count: 32)).words
        #expect(throws: MnemonicError.wrongWordCount(23)) { try Mnemonic(parsing: words.dropLast().joined(separator: " ")) }
        var misspelled = words
        misspelled[4] = "zzzz"
        #expect(throws: MnemonicError.unknownWord(position: 5, word: "zzzz")) { try Mnemonic(parsing: misspelled.joined(separator: " ")) }
        var swapped = words
        swapped[0] = "ability"
        #expect(throws: MnemonicError.checksumMismatch) { try Mnemonic(parsing: swapped.joined(separator: " ")) }
    }
}

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

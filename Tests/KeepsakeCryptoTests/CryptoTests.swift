import Foundation
import Testing
@testable import KeepsakeCrypto

@Suite struct CryptoTests {
    static let ciphers = [SingleUseAEAD.Cipher.aes256GCM, .chaCha20Poly1305].filter(\.isAvailable)

    @Test(arguments: ciphers) func sealedDataOpensWithTheSameKeyAndAssociatedData(cipher: SingleUseAEAD.Cipher) throws {
        let key = try SecureBytes.random(count: SingleUseAEAD.keyBytes)
        var sealed: [UInt8] = []
        try key.withUnsafeBytes { k in
            try Array("hello".utf8).withUnsafeBytes { p in
                try Array("ad".utf8).withUnsafeBytes { ad in try SingleUseAEAD.seal(p, associatedData: ad, key: k, cipher: cipher, into: &sealed) }
            }
        }
        #expect(sealed.count == 5 + SingleUseAEAD.tagBytes)
        let opened = try key.withUnsafeBytes { k in
            try sealed.withUnsafeBytes { s in try Array("ad".utf8).withUnsafeBytes { ad in try SingleUseAEAD.open(s, associatedData: ad, key: k, cipher: cipher) } }
        }
        #expect(opened == Array("hello".utf8))
    }

    @Test(arguments: ciphers) func anyAlterationFailsAuthentication(cipher: SingleUseAEAD.Cipher) throws {
        let key = try SecureBytes.random(count: SingleUseAEAD.keyBytes)
        var sealed: [UInt8] = []
        try key.withUnsafeBytes { k in
            try Array("payload".utf8).withUnsafeBytes { p in
                try [UInt8]().withUnsafeBytes { ad in try SingleUseAEAD.seal(p, associatedData: ad, key: k, cipher: cipher, into: &sealed) }
            }
        }
        for index in sealed.indices {
            var tampered = sealed
            tampered[index] ^= 0x01
            #expect(throws: CryptoError.authenticationFailed) {
                try key.withUnsafeBytes { k in
                    try tampered.withUnsafeBytes { s in try [UInt8]().withUnsafeBytes { ad in try SingleUseAEAD.open(s, associatedData: ad, key: k, cipher: cipher) } }
                }
            }
        }
        #expect(throws: CryptoError.authenticationFailed) {
            try key.withUnsafeBytes { k in
                try sealed.withUnsafeBytes { s in try [1].withUnsafeBytes { ad in try SingleUseAEAD.open(s, associatedData: ad, key: k, cipher: cipher) } }
            }
        }
    }

    @Test func wrongKeyLengthsAreRefused() {
        #expect(throws: CryptoError.invalidLength(what: "key", expected: 32, actual: 3)) {
            var out: [UInt8] = []
            try [UInt8]([1, 2, 3]).withUnsafeBytes { k in try SingleUseAEAD.seal(k, associatedData: k, key: k, cipher: .chaCha20Poly1305, into: &out) }
        }
    }

    @Test func theTwoCiphersAreNotInterchangeable() throws {
        guard SingleUseAEAD.Cipher.aes256GCM.isAvailable else { return }
        let key = try SecureBytes.random(count: SingleUseAEAD.keyBytes)
        var sealed: [UInt8] = []
        try key.withUnsafeBytes { k in
            try Array("x".utf8).withUnsafeBytes { p in
                try [UInt8]().withUnsafeBytes { ad in try SingleUseAEAD.seal(p, associatedData: ad, key: k, cipher: .aes256GCM, into: &sealed) }
            }
        }
        #expect(throws: CryptoError.authenticationFailed) {
            try key.withUnsafeBytes { k in
                try sealed.withUnsafeBytes { s in
                    try [UInt8]().withUnsafeBytes { ad in try SingleUseAEAD.open(s, associatedData: ad, key: k, cipher: .chaCha20Poly1305) }
                }
            }
        }
    }

    @Test func secureBytesStartZeroedAndRandomDiffers() throws {
        let zero = try SecureBytes(count: 32)
        #expect(zero.withUnsafeBytes { Array($0) } == [UInt8](repeating: 0, count: 32))
        let a = try SecureBytes.random(count: 32), b = try SecureBytes.random(count: 32)
        #expect(a.withUnsafeBytes { Array($0) } != b.withUnsafeBytes { Array($0) })
    }
}

@Suite struct FileHashTests {
    /// A file is hashed a mebibyte at a time, to the same digest as its bytes in one piece.
    @Test func aFileHashesAsItsBytesDo() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-hash-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        for size in [0, 1, (1 << 20) - 1, 3 * (1 << 20) + 17] {
            let bytes = Random.bytes(size)
            try Data(bytes).write(to: file)
            #expect(try Blake2b.hash(contentsOf: file) == Blake2b.hash(bytes), "\(size) bytes")
        }
        #expect(throws: (any Error).self) { try Blake2b.hash(contentsOf: file.appendingPathExtension("missing")) }
    }
}

import CSodium

/// ChaCha20-Poly1305 (IETF variant, RFC 8439) authenticated encryption.
///
/// Used where every key encrypts exactly one message, so the nonce is fixed at
/// zero: `seal` takes no nonce on purpose. Never call it twice with the same key.
public enum SingleUseAEAD {
    public static let keyBytes = Int(crypto_aead_chacha20poly1305_ietf_KEYBYTES)
    public static let tagBytes = Int(crypto_aead_chacha20poly1305_ietf_ABYTES)
    private static let zeroNonce = [UInt8](repeating: 0, count: Int(crypto_aead_chacha20poly1305_ietf_NPUBBYTES))

    /// Encrypts `plaintext` under a single-use `key`, authenticating `associatedData`.
    /// The result is the ciphertext followed by a 16-byte tag.
    public static func seal(
        _ plaintext: UnsafeRawBufferPointer,
        associatedData: UnsafeRawBufferPointer,
        key: UnsafeRawBufferPointer,
        into output: inout [UInt8]
    ) throws {
        Sodium.ensureInitialized()
        guard key.count == keyBytes else { throw CryptoError.invalidLength(what: "key", expected: keyBytes, actual: key.count) }
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: plaintext.count + tagBytes))
        var written: UInt64 = 0
        output.withUnsafeMutableBufferPointer { out in
            _ = crypto_aead_chacha20poly1305_ietf_encrypt(
                out.baseAddress! + start, &written,
                plaintext.bindMemory(to: UInt8.self).baseAddress, UInt64(plaintext.count),
                associatedData.bindMemory(to: UInt8.self).baseAddress, UInt64(associatedData.count),
                nil, zeroNonce, key.bindMemory(to: UInt8.self).baseAddress!)
        }
    }

    /// Decrypts and authenticates; throws `authenticationFailed` if anything was altered.
    public static func open(
        _ sealed: UnsafeRawBufferPointer,
        associatedData: UnsafeRawBufferPointer,
        key: UnsafeRawBufferPointer
    ) throws -> [UInt8] {
        Sodium.ensureInitialized()
        guard key.count == keyBytes else { throw CryptoError.invalidLength(what: "key", expected: keyBytes, actual: key.count) }
        guard sealed.count >= tagBytes else { throw CryptoError.authenticationFailed }
        var plaintext = [UInt8](repeating: 0, count: sealed.count - tagBytes)
        var written: UInt64 = 0
        let status = plaintext.withUnsafeMutableBufferPointer { out in
            crypto_aead_chacha20poly1305_ietf_decrypt(
                out.baseAddress, &written, nil,
                sealed.bindMemory(to: UInt8.self).baseAddress!, UInt64(sealed.count),
                associatedData.bindMemory(to: UInt8.self).baseAddress, UInt64(associatedData.count),
                zeroNonce, key.bindMemory(to: UInt8.self).baseAddress!)
        }
        guard status == 0 else { throw CryptoError.authenticationFailed }
        return plaintext
    }
}

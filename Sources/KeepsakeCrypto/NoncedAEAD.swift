import CSodium

/// Authenticated encryption with caller-chosen nonces, for keys that seal many
/// messages (backup chunks). Callers must never repeat a nonce under one key.
public enum NoncedAEAD {
    /// The constructions available; the raw values are the ones files record.
    public enum Cipher: UInt8, Sendable, CustomStringConvertible {
        /// AES-256-GCM, 12-byte nonces: needs AES-NI and CLMUL in libsodium.
        case aes256GCM = 1
        /// XChaCha20-Poly1305 (IETF), 24-byte nonces: fast in software everywhere.
        case xChaCha20Poly1305 = 2

        /// The cipher's nonce size.
        public var nonceBytes: Int { self == .aes256GCM ? 12 : 24 }

        /// Whether this CPU can run it (AES-256-GCM needs AES-NI).
        public var isAvailable: Bool {
            self == .aes256GCM ? SingleUseAEAD.Cipher.aes256GCM.isAvailable : true
        }

        /// AES-256-GCM where the CPU accelerates it, XChaCha20-Poly1305 otherwise.
        public static var preferred: Cipher { Cipher.aes256GCM.isAvailable ? .aes256GCM : .xChaCha20Poly1305 }

        /// The cipher's name.
        public var description: String { self == .aes256GCM ? "AES-256-GCM" : "XChaCha20-Poly1305" }
    }

    /// Key size.
    public static let keyBytes = 32
    /// Authentication tag size.
    public static let tagBytes = 16

    /// Appends the ciphertext of `plaintext` and its 16-byte tag to `output`.
    public static func seal(
        _ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], associatedData: [UInt8], key: SecureBytes, cipher: Cipher,
        into output: inout [UInt8]
    ) throws {
        try check(nonce: nonce, key: key, cipher: cipher)
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: plaintext.count + tagBytes))
        var written: UInt64 = 0
        key.withUnsafeBytes { k in
            output.withUnsafeMutableBufferPointer { out in
                let c = out.baseAddress! + start, kp = k.bindMemory(to: UInt8.self).baseAddress!
                let m = plaintext.bindMemory(to: UInt8.self).baseAddress, mlen = UInt64(plaintext.count)
                switch cipher {
                case .aes256GCM:
                    _ = crypto_aead_aes256gcm_encrypt(c, &written, m, mlen, associatedData, UInt64(associatedData.count), nil, nonce, kp)
                case .xChaCha20Poly1305:
                    _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                        c, &written, m, mlen, associatedData, UInt64(associatedData.count), nil, nonce, kp)
                }
            }
        }
    }

    /// Decrypts and authenticates `sealed` (ciphertext and tag); throws `authenticationFailed` on any alteration.
    public static func open(
        _ sealed: UnsafeRawBufferPointer, nonce: [UInt8], associatedData: [UInt8], key: SecureBytes, cipher: Cipher
    ) throws -> [UInt8] {
        try check(nonce: nonce, key: key, cipher: cipher)
        guard sealed.count >= tagBytes else { throw CryptoError.authenticationFailed }
        var plaintext = [UInt8](repeating: 0, count: sealed.count - tagBytes)
        var written: UInt64 = 0
        let status = key.withUnsafeBytes { k in
            plaintext.withUnsafeMutableBufferPointer { out in
                let c = sealed.bindMemory(to: UInt8.self).baseAddress!, clen = UInt64(sealed.count)
                let kp = k.bindMemory(to: UInt8.self).baseAddress!
                switch cipher {
                case .aes256GCM:
                    return crypto_aead_aes256gcm_decrypt(
                        out.baseAddress, &written, nil, c, clen, associatedData, UInt64(associatedData.count), nonce, kp)
                case .xChaCha20Poly1305:
                    return crypto_aead_xchacha20poly1305_ietf_decrypt(
                        out.baseAddress, &written, nil, c, clen, associatedData, UInt64(associatedData.count), nonce, kp)
                }
            }
        }
        guard status == 0 else { throw CryptoError.authenticationFailed }
        return plaintext
    }

    private static func check(nonce: [UInt8], key: SecureBytes, cipher: Cipher) throws {
        Sodium.ensureInitialized()
        guard key.count == keyBytes else { throw CryptoError.invalidLength(what: "key", expected: keyBytes, actual: key.count) }
        guard nonce.count == cipher.nonceBytes else {
            throw CryptoError.invalidLength(what: "nonce", expected: cipher.nonceBytes, actual: nonce.count)
        }
        guard cipher.isAvailable else { throw CryptoError.cipherUnavailable(cipher.description) }
    }
}

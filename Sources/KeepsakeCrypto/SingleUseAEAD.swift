import CSodium

/// Authenticated encryption where every key encrypts exactly one message.
///
/// Because a key is never reused, the nonce is fixed at zero: `seal` takes no
/// nonce on purpose. Never call it twice with the same key.
public enum SingleUseAEAD {
    /// The AEAD constructions a single-use key can seal with. Both take 32-byte
    /// keys and add 16-byte tags, so records sealed with either have one layout.
    public enum Cipher: Sendable, Equatable, CustomStringConvertible {
        /// AES-256-GCM: the fastest choice where the CPU has AES-NI and CLMUL.
        case aes256GCM
        /// ChaCha20-Poly1305 (IETF, RFC 8439): fast everywhere in software.
        case chaCha20Poly1305

        /// Whether this machine can use the cipher (AES-256-GCM needs hardware support in libsodium).
        public var isAvailable: Bool {
            switch self {
            case .aes256GCM: Sodium.ensureInitialized(); return crypto_aead_aes256gcm_is_available() != 0
            case .chaCha20Poly1305: return true
            }
        }

        /// AES-256-GCM when the CPU accelerates it, ChaCha20-Poly1305 otherwise.
        public static var preferred: Cipher { Cipher.aes256GCM.isAvailable ? .aes256GCM : .chaCha20Poly1305 }

        /// The cipher's name.
        public var description: String {
            switch self {
            case .aes256GCM: "AES-256-GCM"
            case .chaCha20Poly1305: "ChaCha20-Poly1305"
            }
        }
    }

    /// Key size.
    public static let keyBytes = 32
    /// Authentication tag size.
    public static let tagBytes = 16
    private static let zeroNonce = [UInt8](repeating: 0, count: 12)

    /// Encrypts `plaintext` under a single-use `key`, authenticating `associatedData`,
    /// and appends the ciphertext followed by a 16-byte tag to `output`.
    public static func seal(
        _ plaintext: UnsafeRawBufferPointer,
        associatedData: UnsafeRawBufferPointer,
        key: UnsafeRawBufferPointer,
        cipher: Cipher,
        into output: inout [UInt8]
    ) throws {
        try check(key: key, cipher: cipher)
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: plaintext.count + tagBytes))
        try output.withUnsafeMutableBytes { out in
            try seal(plaintext, associatedData: associatedData, key: key, cipher: cipher,
                     into: UnsafeMutableRawBufferPointer(rebasing: out[start...]))
        }
    }

    /// Encrypts `plaintext` under a single-use `key`, authenticating `associatedData`,
    /// into `output`, which must hold exactly the ciphertext and its tag
    /// (`plaintext.count + tagBytes`): records are sealed in place this way.
    public static func seal(
        _ plaintext: UnsafeRawBufferPointer,
        associatedData: UnsafeRawBufferPointer,
        key: UnsafeRawBufferPointer,
        cipher: Cipher,
        into output: UnsafeMutableRawBufferPointer
    ) throws {
        try check(key: key, cipher: cipher)
        guard output.count == plaintext.count + tagBytes else {
            throw CryptoError.invalidLength(what: "sealed output", expected: plaintext.count + tagBytes, actual: output.count)
        }
        var written: UInt64 = 0
        let c = output.bindMemory(to: UInt8.self).baseAddress!
        let m = plaintext.bindMemory(to: UInt8.self).baseAddress, mlen = UInt64(plaintext.count)
        let ad = associatedData.bindMemory(to: UInt8.self).baseAddress, adlen = UInt64(associatedData.count)
        let k = key.bindMemory(to: UInt8.self).baseAddress!
        switch cipher {
        case .aes256GCM:
            _ = crypto_aead_aes256gcm_encrypt(c, &written, m, mlen, ad, adlen, nil, zeroNonce, k)
        case .chaCha20Poly1305:
            _ = crypto_aead_chacha20poly1305_ietf_encrypt(c, &written, m, mlen, ad, adlen, nil, zeroNonce, k)
        }
    }

    /// Decrypts and authenticates; throws `authenticationFailed` if anything was altered.
    public static func open(
        _ sealed: UnsafeRawBufferPointer,
        associatedData: UnsafeRawBufferPointer,
        key: UnsafeRawBufferPointer,
        cipher: Cipher
    ) throws -> [UInt8] {
        try check(key: key, cipher: cipher)
        guard sealed.count >= tagBytes else { throw CryptoError.authenticationFailed }
        var plaintext = [UInt8](repeating: 0, count: sealed.count - tagBytes)
        var written: UInt64 = 0
        let status = plaintext.withUnsafeMutableBufferPointer { out in
            let c = sealed.bindMemory(to: UInt8.self).baseAddress!, clen = UInt64(sealed.count)
            let ad = associatedData.bindMemory(to: UInt8.self).baseAddress, adlen = UInt64(associatedData.count)
            let k = key.bindMemory(to: UInt8.self).baseAddress!
            switch cipher {
            case .aes256GCM:
                return crypto_aead_aes256gcm_decrypt(out.baseAddress, &written, nil, c, clen, ad, adlen, zeroNonce, k)
            case .chaCha20Poly1305:
                return crypto_aead_chacha20poly1305_ietf_decrypt(out.baseAddress, &written, nil, c, clen, ad, adlen, zeroNonce, k)
            }
        }
        guard status == 0 else { throw CryptoError.authenticationFailed }
        return plaintext
    }

    private static func check(key: UnsafeRawBufferPointer, cipher: Cipher) throws {
        Sodium.ensureInitialized()
        guard key.count == keyBytes else { throw CryptoError.invalidLength(what: "key", expected: keyBytes, actual: key.count) }
        guard cipher.isAvailable else { throw CryptoError.cipherUnavailable(cipher.description) }
    }
}

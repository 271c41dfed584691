import CSodium

/// An X25519 key pair for Diffie-Hellman agreement (RFC 7748); the secret half
/// lives in secure memory.
public final class KeyAgreementKey: Sendable {
    /// X25519 public key size.
    public static let publicKeyBytes = Int(crypto_scalarmult_BYTES)
    /// X25519 secret key size.
    public static let secretKeyBytes = Int(crypto_scalarmult_SCALARBYTES)

    fileprivate let secret: SecureBytes
    /// The public key.
    public let publicKey: [UInt8]

    /// Derives the key pair from a 32-byte secret scalar (how keys are stored).
    public init(secret: SecureBytes) throws {
        guard secret.count == Self.secretKeyBytes else {
            throw CryptoError.invalidLength(what: "X25519 secret key", expected: Self.secretKeyBytes, actual: secret.count)
        }
        Sodium.ensureInitialized()
        var publicKey = [UInt8](repeating: 0, count: Self.publicKeyBytes)
        secret.withUnsafeBytes { s in _ = crypto_scalarmult_base(&publicKey, s.bindMemory(to: UInt8.self).baseAddress!) }
        self.secret = try secret.copy()
        self.publicKey = publicKey
    }

    /// A new random key pair.
    public static func generate() throws -> KeyAgreementKey {
        try KeyAgreementKey(secret: SecureBytes.random(count: secretKeyBytes))
    }

    /// A copy of the 32-byte secret scalar, to store the key (sealed).
    public func secretKey() throws -> SecureBytes {
        try secret.copy()
    }

    /// The X25519 shared secret with `peer`. Throws `invalidParameters` for a
    /// low-order peer key (the result would be all zeros, known to anyone).
    public func sharedSecret(with peer: [UInt8]) throws -> SecureBytes {
        guard peer.count == Self.publicKeyBytes else {
            throw CryptoError.invalidLength(what: "X25519 public key", expected: Self.publicKeyBytes, actual: peer.count)
        }
        let shared = try SecureBytes(count: Int(crypto_scalarmult_BYTES))
        let status = secret.withUnsafeBytes { s in
            shared.withUnsafeMutableBytes { out in
                crypto_scalarmult(out.bindMemory(to: UInt8.self).baseAddress!, s.bindMemory(to: UInt8.self).baseAddress!, peer)
            }
        }
        guard status == 0 else { throw CryptoError.invalidParameters("the peer's X25519 public key has low order") }
        return shared
    }
}

/// Anonymous public-key encryption to a recipient's X25519 key (libsodium's
/// sealed box: an ephemeral key, X25519 and XSalsa20-Poly1305). Only the
/// recipient can open it, and nothing in it says who sent it.
public enum SealedBox {
    /// Bytes a sealed box adds to its message.
    public static let overhead = Int(crypto_box_sealbytes())

    /// Seals a message to a recipient's X25519 public key (anonymous sender).
    public static func seal(_ message: [UInt8], to recipient: [UInt8]) throws -> [UInt8] {
        guard recipient.count == Int(crypto_box_PUBLICKEYBYTES) else {
            throw CryptoError.invalidLength(what: "recipient public key", expected: Int(crypto_box_PUBLICKEYBYTES), actual: recipient.count)
        }
        Sodium.ensureInitialized()
        var sealed = [UInt8](repeating: 0, count: message.count + overhead)
        guard crypto_box_seal(&sealed, message, UInt64(message.count), recipient) == 0 else {
            throw CryptoError.invalidParameters("the recipient public key is not usable")
        }
        return sealed
    }

    /// Opens a sealed box addressed to `recipient`; `authenticationFailed` when it was not, or was altered.
    public static func open(_ sealed: [UInt8], as recipient: KeyAgreementKey) throws -> [UInt8] {
        guard sealed.count >= overhead else { throw CryptoError.authenticationFailed }
        var message = [UInt8](repeating: 0, count: sealed.count - overhead)
        let status = recipient.secret.withUnsafeBytes { s in
            crypto_box_seal_open(&message, sealed, UInt64(sealed.count), recipient.publicKey, s.bindMemory(to: UInt8.self).baseAddress!)
        }
        guard status == 0 else { throw CryptoError.authenticationFailed }
        return message
    }
}

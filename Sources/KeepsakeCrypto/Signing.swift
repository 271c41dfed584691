import CSodium

/// An Ed25519 signing key pair; the secret half lives in secure memory.
public final class SigningKey: Sendable {
    /// Ed25519 public key size.
    public static let publicKeyBytes = Int(crypto_sign_PUBLICKEYBYTES)
    /// Ed25519 seed size.
    public static let seedBytes = Int(crypto_sign_SEEDBYTES)
    /// Ed25519 signature size.
    public static let signatureBytes = Int(crypto_sign_BYTES)

    private let secret: SecureBytes
    /// The public key.
    public let publicKey: [UInt8]

    /// Derives the key pair from a 32-byte secret seed (how keys are stored).
    public init(seed: SecureBytes) throws {
        guard seed.count == Self.seedBytes else {
            throw CryptoError.invalidLength(what: "signing seed", expected: Self.seedBytes, actual: seed.count)
        }
        Sodium.ensureInitialized()
        let secret = try SecureBytes(count: Int(crypto_sign_SECRETKEYBYTES))
        var publicKey = [UInt8](repeating: 0, count: Self.publicKeyBytes)
        seed.withUnsafeBytes { s in
            secret.withUnsafeMutableBytes { sk in
                _ = crypto_sign_seed_keypair(&publicKey, sk.bindMemory(to: UInt8.self).baseAddress!, s.bindMemory(to: UInt8.self).baseAddress!)
            }
        }
        self.secret = secret
        self.publicKey = publicKey
    }

    /// A new random key pair.
    public static func generate() throws -> SigningKey {
        try SigningKey(seed: SecureBytes.random(count: seedBytes))
    }

    /// The 32-byte seed, to store the key (sealed) and re-derive it later.
    public func seed() throws -> SecureBytes {
        let seed = try SecureBytes(count: Self.seedBytes)
        secret.withUnsafeBytes { sk in
            seed.withUnsafeMutableBytes { s in
                _ = crypto_sign_ed25519_sk_to_seed(s.bindMemory(to: UInt8.self).baseAddress!, sk.bindMemory(to: UInt8.self).baseAddress!)
            }
        }
        return seed
    }

    /// A detached 64-byte signature of `message`.
    public func sign(_ message: [UInt8]) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: Self.signatureBytes)
        secret.withUnsafeBytes { sk in
            _ = crypto_sign_detached(&signature, nil, message, UInt64(message.count), sk.bindMemory(to: UInt8.self).baseAddress!)
        }
        return signature
    }

    /// Whether `signature` is a valid signature of `message` by `publicKey`.
    public static func verify(signature: [UInt8], of message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == signatureBytes, publicKey.count == publicKeyBytes else { return false }
        Sodium.ensureInitialized()
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }
}

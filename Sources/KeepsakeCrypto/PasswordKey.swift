import CSodium

/// Keys derived from passphrases with Argon2id (libsodium's crypto_pwhash, v1.3).
public enum PasswordKey {
    /// Argon2id salt size.
    public static let saltBytes = Int(crypto_pwhash_SALTBYTES)
    /// libsodium's "moderate" limits: about 0.5 s and 256 MiB here; the defaults for new files.
    public static let defaultOpsLimit = UInt64(crypto_pwhash_OPSLIMIT_MODERATE)
    /// Argon2id's default memory limit (libsodium's moderate).
    public static let defaultMemLimit = UInt64(crypto_pwhash_MEMLIMIT_MODERATE)
    /// The most a file may ask for: more is refused before any work (a hostile header must not exhaust the machine).
    public static let maxOpsLimit = UInt64(crypto_pwhash_OPSLIMIT_SENSITIVE) * 2
    /// The largest memory limit a file may ask for (1 GiB).
    public static let maxMemLimit = UInt64(1) << 30
    /// The operations limits `derive` accepts: libsodium's minimum (1) to `maxOpsLimit`.
    public static let opsLimits = UInt64(crypto_pwhash_OPSLIMIT_MIN)...maxOpsLimit
    /// The memory limits `derive` accepts: libsodium's minimum (8 KiB) to `maxMemLimit`.
    public static let memLimits = UInt64(crypto_pwhash_MEMLIMIT_MIN)...maxMemLimit

    /// Derives a 32-byte key. Throws `invalidParameters` for limits outside libsodium's or our bounds.
    public static func derive(passphrase: String, salt: [UInt8], opsLimit: UInt64, memLimit: UInt64) throws -> SecureBytes {
        Sodium.ensureInitialized()
        guard salt.count == saltBytes else { throw CryptoError.invalidLength(what: "salt", expected: saltBytes, actual: salt.count) }
        guard opsLimits.contains(opsLimit), memLimits.contains(memLimit) else {
            throw CryptoError.invalidParameters("Argon2id limits ops \(opsLimit), memory \(memLimit) bytes are outside the accepted range")
        }
        let key = try SecureBytes(count: 32)
        var password = Array(passphrase.utf8) + [0]
        defer { password.withUnsafeMutableBytes { secureZero($0) } }
        let status = key.withUnsafeMutableBytes { k in
            password.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { pc in
                    crypto_pwhash(
                        k.bindMemory(to: UInt8.self).baseAddress!, 32, pc.baseAddress!, UInt64(pc.count - 1), salt,
                        opsLimit, Int(memLimit), crypto_pwhash_ALG_ARGON2ID13)
                }
            }
        }
        guard status == 0 else { throw CryptoError.secureAllocationFailed(bytes: Int(memLimit)) }
        return key
    }
}

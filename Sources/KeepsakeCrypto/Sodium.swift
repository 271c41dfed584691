import CSodium

/// One-time libsodium initialisation. Every entry point of this module calls
/// `Sodium.ensureInitialized()` first; calling it again is cheap and safe.
public enum Sodium {
    private static let initialized: Bool = sodium_init() >= 0

    /// Initialises libsodium once per process; traps if the library cannot start,
    /// because no cryptographic operation would be safe afterwards.
    public static func ensureInitialized() {
        precondition(initialized, "libsodium failed to initialise (sodium_init() < 0)")
    }
}

/// Errors from cryptographic operations. Messages never include key material.
///
/// Not frozen: later releases may add cases, so a `switch` over it needs a
/// `default` branch. `description` always says what happened and what to do.
public enum CryptoError: Error, Equatable, CustomStringConvertible {
    /// Authenticated decryption failed: the ciphertext, its associated data or the key is wrong.
    case authenticationFailed
    /// A key or nonce had the wrong length.
    case invalidLength(what: String, expected: Int, actual: Int)
    /// libsodium could not allocate locked memory.
    case secureAllocationFailed(bytes: Int)
    /// The cipher needs hardware this CPU lacks (libsodium's AES-256-GCM needs AES-NI and CLMUL).
    case cipherUnavailable(String)
    /// Parameters (e.g. key derivation limits) outside what is accepted.
    case invalidParameters(String)

    /// What failed (never key material).
    public var description: String {
        switch self {
        case .authenticationFailed:
            return "authenticated decryption failed: the data was modified or the key is wrong"
        case let .invalidLength(what, expected, actual):
            return "\(what) must be \(expected) bytes, got \(actual)"
        case let .secureAllocationFailed(bytes):
            return "could not allocate \(bytes) bytes of locked memory; raise the memlock limit (ulimit -l)"
        case let .invalidParameters(reason):
            return reason
        case let .cipherUnavailable(name):
            return "\(name) is not available on this CPU (it needs AES-NI and CLMUL); open this data on a machine that has them"
        }
    }
}

import CSodium

/// A buffer in libsodium secure memory: locked in RAM, guarded by no-access pages,
/// and wiped when released. Holds keys and other secrets for as long as they are needed.
///
/// The buffer is owned by this object; `withUnsafeBytes` lends it out and the
/// pointer must not escape the closure.
public final class SecureBytes: @unchecked Sendable {
    // Invariant: `pointer` is written only through `withUnsafeMutableBytes`, which
    // callers use before sharing the value; afterwards the contents are read-only.
    private let pointer: UnsafeMutableRawPointer
    /// The number of bytes.
    public let count: Int

    /// Allocates `count` zeroed bytes of secure memory.
    public init(count: Int) throws {
        Sodium.ensureInitialized()
        guard let raw = sodium_malloc(max(count, 1)) else {
            throw CryptoError.secureAllocationFailed(bytes: count)
        }
        sodium_memzero(raw, max(count, 1))
        self.pointer = raw
        self.count = count
    }

    /// Secure memory holding a copy of `bytes` (a secret read from elsewhere; the caller wipes its own copy).
    public convenience init(copying bytes: some Collection<UInt8>) throws {
        try self.init(count: bytes.count)
        withUnsafeMutableBytes { $0.copyBytes(from: bytes) }
    }

    /// Allocates secure memory filled with cryptographically random bytes.
    ///
    /// More than a seed's worth is drawn as a ChaCha20 keystream under a fresh
    /// random seed, which is wiped at once: the system's generator costs about
    /// 0.2 µs per 32 bytes here, the keystream a tenth of that, and a batch of
    /// appends needs one key per event.
    public static func random(count: Int) throws -> SecureBytes {
        let bytes = try SecureBytes(count: count)
        guard count > Int(randombytes_SEEDBYTES) else {
            bytes.withUnsafeMutableBytes { Random.fill($0) }
            return bytes
        }
        let seed = try SecureBytes.random(count: Int(randombytes_SEEDBYTES))
        seed.withUnsafeBytes { seed in
            bytes.withUnsafeMutableBytes { out in
                randombytes_buf_deterministic(out.baseAddress!, out.count, seed.bindMemory(to: UInt8.self).baseAddress!)
            }
        }
        return bytes
    }

    deinit {
        sodium_free(pointer)
    }

    /// A copy in fresh secure memory, owned by the caller.
    public func copy() throws -> SecureBytes {
        let copy = try SecureBytes(count: count)
        withUnsafeBytes { source in copy.withUnsafeMutableBytes { $0.copyMemory(from: source) } }
        return copy
    }

    /// Reads the bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// Writes the bytes.
    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(start: pointer, count: count))
    }
}

/// Overwrites memory with zeros in a way the compiler cannot optimise away.
public func secureZero(_ buffer: UnsafeMutableRawBufferPointer) {
    guard let base = buffer.baseAddress, buffer.count > 0 else { return }
    sodium_memzero(base, buffer.count)
}

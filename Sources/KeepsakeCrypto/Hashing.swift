import CSodium
import Foundation

/// BLAKE2b (libsodium's generic hash), streaming, with an optional key.
/// Feed it with `update`, then call `finalize` once.
public final class Blake2b {
    /// BLAKE2b-256.
    public static let defaultLength = 32
    /// libsodium's state is a 64-byte-aligned C struct Swift cannot import, so it lives in raw memory.
    private let state: UnsafeMutableRawPointer
    private let length: Int

    /// Starts a hash of `length` bytes (16 to 64), keyed when `key` is given (16 to 64 bytes).
    public init(length: Int = defaultLength, key: UnsafeRawBufferPointer? = nil) {
        Sodium.ensureInitialized()
        precondition(length >= 16 && length <= 64, "BLAKE2b output must be 16 to 64 bytes")
        self.length = length
        state = UnsafeMutableRawPointer.allocate(byteCount: crypto_generichash_statebytes(), alignment: 64)
        _ = crypto_generichash_init(
            OpaquePointer(state), key?.bindMemory(to: UInt8.self).baseAddress, key?.count ?? 0, length)
    }

    /// Adds bytes to the hash.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        _ = crypto_generichash_update(OpaquePointer(state), bytes.bindMemory(to: UInt8.self).baseAddress, UInt64(bytes.count))
    }

    /// Adds bytes to the hash.
    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    deinit {
        sodium_memzero(state, crypto_generichash_statebytes())
        state.deallocate()
    }

    /// The digest of everything added.
    public func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        _ = crypto_generichash_final(OpaquePointer(state), &out, length)
        return out
    }

    /// The hash of `bytes` in one call.
    public static func hash(_ bytes: [UInt8], length: Int = defaultLength) -> [UInt8] {
        let h = Blake2b(length: length)
        h.update(bytes)
        return h.finalize()
    }

    /// The hash of a file's contents, read 1 MiB at a time (a file of any size takes no more memory).
    public static func hash(contentsOf file: URL, length: Int = defaultLength) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        let h = Blake2b(length: length)
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { h.update($0) }
        }
        return h.finalize()
    }
}

/// SHA-256, where a standard demands it (BIP-39 checksums, AWS signatures).
public enum SHA256 {
    /// SHA-256 of `bytes`.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        _ = crypto_hash_sha256(&out, bytes.bindMemory(to: UInt8.self).baseAddress, UInt64(bytes.count))
        return out
    }
}

/// Derives a 32-byte subkey from `key` for one purpose: keyed BLAKE2b-256 of
/// `label` followed by `context`. Different labels give independent keys.
public func deriveKey(from key: SecureBytes, label: String, context: [UInt8] = []) throws -> SecureBytes {
    let derived = try SecureBytes(count: 32)
    key.withUnsafeBytes { k in
        let h = Blake2b(length: 32, key: k)
        h.update(Array(label.utf8))
        h.update(context)
        var out = h.finalize()
        derived.withUnsafeMutableBytes { d in d.copyBytes(from: out) }
        out.withUnsafeMutableBytes { secureZero($0) }
    }
    return derived
}

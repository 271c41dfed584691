import CSodium

/// HMAC-SHA-256 (RFC 2104), the building block of HKDF.
public enum HMACSHA256 {
    /// HMAC-SHA-256 output size.
    public static let outputBytes = Int(crypto_auth_hmacsha256_BYTES)

    /// Writes the MAC of the concatenated `parts` under `key` (any length) into `output` (32 bytes).
    public static func mac(key: UnsafeRawBufferPointer, _ parts: UnsafeRawBufferPointer..., into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count == outputBytes, "HMAC-SHA-256 writes 32 bytes")
        Sodium.ensureInitialized()
        let state = UnsafeMutablePointer<crypto_auth_hmacsha256_state>.allocate(capacity: 1)
        defer {
            sodium_memzero(state, MemoryLayout<crypto_auth_hmacsha256_state>.size)
            state.deallocate()
        }
        // An empty key still needs a valid pointer.
        _ = [UInt8(0)].withUnsafeBufferPointer { none in
            crypto_auth_hmacsha256_init(state, key.bindMemory(to: UInt8.self).baseAddress ?? none.baseAddress!, key.count)
        }
        for part in parts where part.count > 0 {
            _ = crypto_auth_hmacsha256_update(state, part.bindMemory(to: UInt8.self).baseAddress!, UInt64(part.count))
        }
        _ = crypto_auth_hmacsha256_final(state, output.bindMemory(to: UInt8.self).baseAddress!)
    }
}

/// HKDF-SHA-256 (RFC 5869), the KDF X3DH and the Double Ratchet use in Signal's
/// specifications. Secrets and outputs stay in secure memory.
public enum HKDF {
    /// `length` bytes (1 to 255 × 32) derived from `secret` with `salt` (empty:
    /// 32 zero bytes, as the RFC says) and `info`.
    public static func derive(secret: SecureBytes, salt: [UInt8], info: [UInt8], length: Int) throws -> SecureBytes {
        let saltKey = salt.isEmpty ? [UInt8](repeating: 0, count: HMACSHA256.outputBytes) : salt
        return try saltKey.withUnsafeBytes { try derive(secret: secret, salt: $0, info: info, length: length) }
    }

    /// The same, with a salt that is itself secret (a ratchet's root key) and stays in the caller's memory.
    public static func derive(secret: SecureBytes, salt: UnsafeRawBufferPointer, info: [UInt8], length: Int) throws -> SecureBytes {
        let block = HMACSHA256.outputBytes
        guard length > 0, length <= 255 * block else {
            throw CryptoError.invalidParameters("HKDF output length \(length) is outside 1...\(255 * block)")
        }
        let prk = try SecureBytes(count: block)
        secret.withUnsafeBytes { ikm in prk.withUnsafeMutableBytes { HMACSHA256.mac(key: salt, ikm, into: $0) } }
        let output = try SecureBytes(count: length)
        var previous = try SecureBytes(count: block), current = try SecureBytes(count: block)
        for counter in 1...UInt8((length + block - 1) / block) {
            let previousLength = counter == 1 ? 0 : block
            prk.withUnsafeBytes { key in
                previous.withUnsafeBytes { prev in
                    info.withUnsafeBytes { info in
                        withUnsafeBytes(of: counter) { c in
                            current.withUnsafeMutableBytes {
                                HMACSHA256.mac(key: key, UnsafeRawBufferPointer(rebasing: prev[0..<previousLength]), info, c, into: $0)
                            }
                        }
                    }
                }
            }
            let start = Int(counter - 1) * block, count = min(block, length - start)
            current.withUnsafeBytes { t in
                output.withUnsafeMutableBytes { out in
                    UnsafeMutableRawBufferPointer(rebasing: out[start..<start + count]).copyMemory(from: UnsafeRawBufferPointer(rebasing: t[0..<count]))
                }
            }
            swap(&previous, &current)
        }
        return output
    }
}

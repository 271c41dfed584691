import CSodium

/// BLAKE2b (libsodium's generic hash).
public enum Hash {
    public static func blake2b(_ data: UnsafeRawBufferPointer, outputBytes: Int = 32) -> [UInt8] {
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: outputBytes)
        _ = crypto_generichash(&out, outputBytes, data.bindMemory(to: UInt8.self).baseAddress, UInt64(data.count), nil, 0)
        return out
    }

    public static func blake2b(_ bytes: [UInt8], outputBytes: Int = 32) -> [UInt8] {
        bytes.withUnsafeBytes { blake2b($0, outputBytes: outputBytes) }
    }
}

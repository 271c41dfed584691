import Foundation
import KeepsakeCrypto
import KeepsakeLog

/// The secret a backup is encrypted with. Keys stay in secure memory; a
/// passphrase becomes a key through Argon2id with the salt and limits the
/// file records.
public enum BackupKey: Sendable {
    /// 32 random bytes (e.g. from a key file).
    case raw(SecureBytes)
    /// A passphrase a person chose.
    case passphrase(String)
    /// A generated key written as 24 words (see `BackupKey.generateMnemonic()`).
    case mnemonic(Mnemonic)

    /// A new random key, to show once as a recovery phrase and keep offline.
    public static func generateMnemonic() throws -> Mnemonic {
        try Mnemonic(key: SecureBytes.random(count: 32))
    }

    /// Reads a key file: 32 raw bytes, or 64 hexadecimal digits (whitespace ignored).
    public static func fromFile(_ url: URL) throws(BackupError) -> BackupKey {
        let descriptor = SystemCalls.open(url.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io(operation: "open key file", path: url.path, errno: errno) }
        defer { SystemCalls.close(descriptor) }
        var data = [UInt8](repeating: 0, count: 4096)
        let count = data.withUnsafeMutableBytes { SystemCalls.read(descriptor, $0.baseAddress, $0.count) }
        guard count >= 0 else { throw .io(operation: "read key file", path: url.path, errno: errno) }
        data.removeLast(data.count - count)
        defer { data.withUnsafeMutableBytes { secureZero($0) } }
        var digits = data.filter { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }
        defer { digits.withUnsafeMutableBytes { secureZero($0) } }
        let bytes: [UInt8]
        if data.count == 32 {
            bytes = data
        } else if digits.count == 64, let decoded = Hex.decode(String(decoding: digits, as: UTF8.self)) {
            bytes = decoded
        } else {
            throw .badKeyFile(path: url.path, bytes: data.count)
        }
        do {
            return .raw(try SecureBytes(copying: bytes))
        } catch {
            throw BackupError(error)
        }
    }

    /// What a backup provider lists this key's uploads under: keyed BLAKE2b-256
    /// of a label, so the provider learns nothing of the key and only its holder
    /// can name the list (a new device restores from the recovery phrase alone).
    /// Nil for a passphrase, whose key depends on each file's salt.
    public func locator() throws -> [UInt8]? {
        let key: SecureBytes
        switch self {
        case let .raw(raw): key = raw
        case let .mnemonic(words): key = try words.key()
        case .passphrase: return nil
        }
        return key.withUnsafeBytes { secret in
            let hash = Blake2b(length: 32, key: secret)
            hash.update(Array("keepsake/backup-locator/v1".utf8))
            return hash.finalize()
        }
    }

    var source: BackupKeySource {
        switch self {
        case .raw: .rawKey
        case .passphrase: .passphrase
        case .mnemonic: .mnemonic
        }
    }

    /// The 32-byte key for a new file (a passphrase gets a fresh salt and the default limits),
    /// with the header fields that record how it was made.
    func keyForWriting() throws -> (key: SecureBytes, salt: [UInt8], ops: UInt64, mem: UInt64) {
        switch self {
        case let .raw(key):
            guard key.count == 32 else { throw CryptoError.invalidLength(what: "backup key", expected: 32, actual: key.count) }
            return (key, [UInt8](repeating: 0, count: 16), 0, 0)
        case let .mnemonic(words):
            return (try words.key(), [UInt8](repeating: 0, count: 16), 0, 0)
        case let .passphrase(text):
            guard !text.isEmpty else { throw BackupError.emptyPassphrase }
            let salt = Random.bytes(PasswordKey.saltBytes)
            let key = try PasswordKey.derive(
                passphrase: Self.normalized(text, version: BackupHeader.formatVersion), salt: salt, opsLimit: PasswordKey.defaultOpsLimit, memLimit: PasswordKey.defaultMemLimit)
            return (key, salt, PasswordKey.defaultOpsLimit, PasswordKey.defaultMemLimit)
        }
    }

    /// A passphrase as a file of `version` derives its key from: NFKD from
    /// version 2 on (so every spelling of the same text gives the same key),
    /// the text as given in version 1.
    static func normalized(_ passphrase: String, version: UInt16) -> String {
        version >= 2 ? passphrase.decomposedStringWithCompatibilityMapping : passphrase
    }

    /// The 32-byte key for an existing file, checked against the header's key check.
    func key(for header: BackupHeader) throws(BackupError) -> SecureBytes {
        guard source == header.keySource else { throw .keySourceMismatch(needs: header.keySource, given: source) }
        let key: SecureBytes
        do {
            switch self {
            case let .raw(raw): key = raw
            case let .mnemonic(words): key = try words.key()
            case let .passphrase(text):
                key = try PasswordKey.derive(
                    passphrase: Self.normalized(text, version: header.version), salt: header.passphraseSalt, opsLimit: header.opsLimit, memLimit: header.memLimit)
            }
        } catch let error as CryptoError {
            if case let .invalidParameters(reason) = error { throw .corruptHeader(reason) }
            throw .store(.crypto(error.description))
        } catch {
            throw .store(.crypto("\(error)"))
        }
        guard key.count == 32, BackupFile.keyCheck(key) == header.keyCheck else { throw .wrongKey(header.keySource) }
        return key
    }
}

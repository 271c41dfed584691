import Foundation
import KeepsakeCrypto
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

/// An account's key: it grants installations messaging access (signs their
/// contact bundles) and revokes them. It stands in for the wallet of the XMTP
/// design and lives outside any store: in a key file the user keeps, like a
/// backup key. The account ID is the public key in lowercase hex.
public final class AccountKey: Sendable {
    let key: SigningKey

    /// The account ID: 64 lowercase hex digits.
    public var id: AccountID { AccountID(AccountIdentity.of(publicKey: key.publicKey)) }
    /// The account's Ed25519 public key; its ID is this key in lowercase hex.
    public var publicKey: [UInt8] { key.publicKey }

    init(key: SigningKey) { self.key = key }

    /// A new random account key.
    public static func generate() throws(KeepsakeError) -> AccountKey {
        do { return AccountKey(key: try SigningKey.generate()) } catch { throw .crypto("\(error)") }
    }

    /// Reads an account key file: exactly the 32-byte Ed25519 seed.
    public static func read(from file: URL) throws(MessagingError) -> AccountKey {
        guard let data = FileManager.default.contents(atPath: file.path) else { throw .badAccountKeyFile(file.path, "it cannot be read") }
        guard data.count == SigningKey.seedBytes else {
            throw .badAccountKeyFile(file.path, "it holds \(data.count) bytes, an account key file holds \(SigningKey.seedBytes)")
        }
        do {
            return AccountKey(key: try SigningKey(seed: SecureBytes(copying: data)))
        } catch {
            throw .badAccountKeyFile(file.path, "\(error)")
        }
    }

    /// Writes the key to a new file readable by its owner only; refuses to overwrite.
    public func write(to file: URL) throws(MessagingError) {
        do {
            let seed = try key.seed()
            let bytes = seed.withUnsafeBytes { Data($0) }
            guard FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]),
                  let handle = try? FileHandle(forWritingTo: file) else {
                throw MessagingError.badAccountKeyFile(file.path, "it cannot be created")
            }
            defer { try? handle.close() }
            try handle.write(contentsOf: bytes)
        } catch let error as MessagingError {
            throw error
        } catch {
            throw .badAccountKeyFile(file.path, "\(error)")
        }
    }
}

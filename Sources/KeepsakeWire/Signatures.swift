import KeepsakeCrypto

/// What a signature is for. Every signature covers its label's UTF-8 bytes,
/// a zero byte and then the signed bytes, so a signature made for one purpose
/// never verifies for another.
public enum SignaturePurpose: String, Sendable, CaseIterable {
    case contactBundle = "keepsake/contact-bundle/v1"
    case revocation = "keepsake/revocation/v1"
    case prekey = "keepsake/prekey/v1"
    case envelopeHeader = "keepsake/envelope-header/v1"
    case commit = "keepsake/commit/v1"
    case request = "keepsake/request/v1"
    case installationNotice = "keepsake/installation-notice/v1"

    func message(_ bytes: [UInt8]) -> [UInt8] { Array(rawValue.utf8) + [0] + bytes }

    /// Signs `bytes` for this purpose (the purpose's label is signed with them).
    public func sign(_ bytes: [UInt8], with key: SigningKey) -> [UInt8] { key.sign(message(bytes)) }

    /// Whether `signature` signs `bytes` for this purpose under `publicKey`.
    public func verify(_ signature: [UInt8], of bytes: [UInt8], publicKey: [UInt8]) -> Bool {
        SigningKey.verify(signature: signature, of: message(bytes), publicKey: publicKey)
    }
}

/// An account: an Ed25519 key that grants and revokes its installations'
/// messaging access. Its ID, used in conversations and topic names, is the
/// public key in lowercase hex, so anyone can check an account's signatures
/// from its ID alone.
package enum AccountIdentity {
    package static func of(publicKey: [UInt8]) -> String { Hex.encode(publicKey) }

    /// The public key an account ID names, or nil when it is not 64 lowercase hex digits.
    package static func publicKey(of account: some StringProtocol) -> [UInt8]? {
        guard account.utf8.count == 2 * SigningKey.publicKeyBytes, let key = Hex.decode(account),
              Hex.encode(key) == account else { return nil }
        return key
    }
}

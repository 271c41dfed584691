import Foundation
import KeepsakeCrypto

/// An account's statement that an installation's signing key is one of its
/// own: the installation's contact bundle, signed by the account key, as the
/// relay's directory publishes it (docs/PROTOCOL.md, "Identities"). A backup
/// header carries it so a reader knows which account's installation wrote the file.
///
/// Creating one checks the account's signature and the sizes of the keys and
/// IDs it names; a credential that exists is one the account signed.
public struct AccountCredential: Sendable, Hashable {
    /// The signature label of contact bundles (docs/PROTOCOL.md, "Signatures").
    static let label = "keepsake/contact-bundle/v1"
    static let signatureSize = 64

    /// The contact bundle's bytes, exactly as the account signed them.
    public let bundle: [UInt8]
    /// The account's Ed25519 signature over `label ‖ 0x00 ‖ bundle`.
    public let signature: [UInt8]
    /// The account's Ed25519 public key.
    public let accountKey: [UInt8]
    /// The account: its key in lowercase hex.
    public let account: AccountID
    /// The installation the account vouches for.
    public let installation: InstallationID
    /// That installation's Ed25519 signing key.
    public let signingKey: [UInt8]

    /// Reads a signed contact bundle; throws `invalidCredential` unless the
    /// account's signature verifies and the keys and ID have their sizes.
    public init(bundle: [UInt8], signature: [UInt8]) throws(BackupError) {
        let fields: InstallationCredential
        do { fields = try InstallationCredential(serializedBytes: bundle) } catch {
            throw .invalidCredential("its contact bundle does not parse")
        }
        guard fields.accountKey.count == 32, fields.signingKey.count == 32, let installation = InstallationID(bytes: fields.installationID) else {
            throw .invalidCredential("its contact bundle names keys or an installation ID of the wrong size")
        }
        guard signature.count == Self.signatureSize,
              SigningKey.verify(signature: signature, of: Array(Self.label.utf8) + [0] + bundle, publicKey: Array(fields.accountKey)) else {
            throw .invalidCredential("the account's signature over the contact bundle does not verify")
        }
        self.bundle = bundle
        self.signature = signature
        accountKey = Array(fields.accountKey)
        account = AccountID(Hex.encode(accountKey))
        self.installation = installation
        signingKey = Array(fields.signingKey)
    }
}

package typealias InstallationCredential = Keepsake_V1_InstallationCredential

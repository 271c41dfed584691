import Foundation
import KeepsakeCrypto
import SwiftProtobuf

/// The wire formats' entry points for the fuzz targets (`Fuzz/`): the first
/// byte picks what the rest is read as, then it is parsed and verified as a
/// receiver would. Package access: not part of the public API.
package enum WireFuzzEntryPoints {
    /// The recipient's identity key the envelope target opens sealed metadata with (a fixed secret).
    static let recipient = try! KeyAgreementKey(secret: SecureBytes(copying: [UInt8](repeating: 0x31, count: 32)))
    /// The signing key the commit and notice targets verify with (a fixed seed).
    static let installationKey = try! SigningKey(seed: SecureBytes(copying: [UInt8](repeating: 0x32, count: 32)))

    package static func run(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        switch selector % 6 {
        case 0: envelope(body)
        case 1: _ = try? parse(SignedContactBundle.self, body, as: "bundle").verified()
        case 2: _ = try? parse(SignedRevocation.self, body, as: "revocation").verified()
        case 3: _ = try? parse(PrekeyUpload.self, body, as: "prekeys").verified(for: [UInt8](repeating: 7, count: Topic.installationIDBytes))
        case 4: _ = try? parse(Commit.self, body, as: "commit").verified(signingKey: installationKey.publicKey)
        default: _ = try? parse(SignedInstallationNotice.self, body, as: "notice").verified(signingKey: installationKey.publicKey)
        }
    }

    /// An envelope as an inbox delivers it: the envelope, its header, the sealed
    /// metadata opened with `recipient`, then the session message and its payload.
    private static func envelope(_ bytes: [UInt8]) {
        guard let envelope = try? parse(Envelope.self, bytes, as: "envelope"),
              let header = try? parse(EnvelopeHeader.self, envelope.header, as: "header") else { return }
        if let opened = try? SealedBox.open(Array(header.sealedMetadata), as: recipient) {
            _ = try? parse(SealedMetadata.self, opened, as: "metadata")
        }
        if let message = try? parse(SessionMessage.self, envelope.ciphertext, as: "session message") {
            _ = try? parse(Payload.self, message.ciphertext, as: "payload")
        }
    }

    /// Well-formed, correctly signed and sealed inputs for each selector.
    package static func seeds() throws -> [[UInt8]] {
        let account = try SigningKey.generate()
        let identity = try KeyAgreementKey.generate()
        let installation = [UInt8](repeating: 7, count: Topic.installationIDBytes)
        let bundle = try SignedContactBundle.signing(.with {
            $0.accountKey = Data(account.publicKey)
            $0.installationID = Data(installation)
            $0.signingKey = Data(installationKey.publicKey)
            $0.identityKey = Data(identity.publicKey)
            $0.role = "phone"
        }, with: account)
        let metadata = try SealedMetadata.with {
            $0.senderAccount = AccountIdentity.of(publicKey: account.publicKey)
            $0.senderInstallation = Data(installation)
            $0.isPrekeyMessage = true
        }.wireBytes()
        let envelope = try Envelope.with {
            $0.header = Data(try EnvelopeHeader.with {
                $0.sentNs = 1_700_000_000_000_000_000
                $0.sealedMetadata = Data(try SealedBox.seal(metadata, to: recipient.publicKey))
            }.wireBytes())
            $0.ciphertext = Data(try SessionMessage.with { $0.ciphertext = Data(try Payload.with { $0.version = 1 }.wireBytes()) }.wireBytes())
        }.wireBytes()
        let revocation = try SignedRevocation.signing(.with {
            $0.accountKey = Data(account.publicKey)
            $0.installationID = Data(installation)
            $0.revokedAtMs = 1
        }, with: account)
        let prekeys = try PrekeyUpload.with {
            $0.contact = bundle
            $0.prekeys = [try SignedPrekey.signing(.with {
                $0.installationID = Data(installation)
                $0.prekeyID = 1
                $0.publicKey = Data(identity.publicKey)
            }, with: installationKey)]
        }.wireBytes()
        let commit = try Commit.signing(.with { $0.epoch = 1; $0.added = ["a"] }, with: installationKey)
        let notice = try SignedInstallationNotice.signing(.with { $0.installationID = Data(installation); $0.generation = 2 }, with: installationKey)
        return [[0] + envelope, [1] + (try bundle.wireBytes()), [2] + (try revocation.wireBytes()), [3] + prekeys,
                [4] + (try commit.wireBytes()), [5] + (try notice.wireBytes())]
    }
}

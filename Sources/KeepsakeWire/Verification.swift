import Foundation
import KeepsakeCrypto
import SwiftProtobuf

extension SignedContactBundle {
    /// Signs `bundle` with the account key it names.
    public static func signing(_ bundle: ContactBundle, with accountKey: SigningKey) throws -> SignedContactBundle {
        let bytes: [UInt8] = try bundle.serializedBytes()
        return .with {
            $0.bundle = Data(bytes)
            $0.signature = Data(SignaturePurpose.contactBundle.sign(bytes, with: accountKey))
        }
    }

    /// The bundle, after checking its signature by the account key it names and its key sizes.
    public func verified() throws(WireError) -> ContactBundle {
        let parsed: ContactBundle
        do { parsed = try ContactBundle(serializedBytes: bundle) } catch { throw .malformed("contact bundle") }
        guard parsed.accountKey.count == SigningKey.publicKeyBytes, parsed.signingKey.count == SigningKey.publicKeyBytes,
              parsed.identityKey.count == KeyAgreementKey.publicKeyBytes,
              parsed.installationID.count == Topic.installationIDBytes else { throw .malformed("contact bundle") }
        guard SignaturePurpose.contactBundle.verify(Array(signature), of: Array(bundle), publicKey: Array(parsed.accountKey)) else {
            throw .badSignature("contact bundle")
        }
        return parsed
    }
}

extension ContactBundle {
    /// The account ID of the account that granted the bundle.
    public var account: String { AccountIdentity.of(publicKey: Array(accountKey)) }
}

extension SignedRevocation {
    /// Signs the message with the key its purpose names.
    public static func signing(_ revocation: Revocation, with accountKey: SigningKey) throws -> SignedRevocation {
        let bytes: [UInt8] = try revocation.serializedBytes()
        return .with {
            $0.revocation = Data(bytes)
            $0.signature = Data(SignaturePurpose.revocation.sign(bytes, with: accountKey))
        }
    }

    /// The revocation, after checking its signature by the account key it names.
    public func verified() throws(WireError) -> Revocation {
        let parsed: Revocation
        do { parsed = try Revocation(serializedBytes: revocation) } catch { throw .malformed("revocation") }
        guard parsed.accountKey.count == SigningKey.publicKeyBytes, parsed.installationID.count == Topic.installationIDBytes else {
            throw .malformed("revocation")
        }
        guard SignaturePurpose.revocation.verify(Array(signature), of: Array(revocation), publicKey: Array(parsed.accountKey)) else {
            throw .badSignature("revocation")
        }
        return parsed
    }
}

extension SignedPrekey {
    /// Signs the message with the key its purpose names.
    public static func signing(_ prekey: Prekey, with installationKey: SigningKey) throws -> SignedPrekey {
        let bytes: [UInt8] = try prekey.serializedBytes()
        return .with {
            $0.prekey = Data(bytes)
            $0.signature = Data(SignaturePurpose.prekey.sign(bytes, with: installationKey))
        }
    }

    /// The prekey, after checking that `bundle`'s installation signed it and that it is that installation's.
    public func verified(by bundle: ContactBundle) throws(WireError) -> Prekey {
        let parsed: Prekey
        do { parsed = try Prekey(serializedBytes: prekey) } catch { throw .malformed("prekey") }
        guard parsed.publicKey.count == KeyAgreementKey.publicKeyBytes else { throw .malformed("prekey") }
        guard parsed.installationID == bundle.installationID else {
            throw .mismatch("the prekey belongs to another installation than its bundle")
        }
        guard SignaturePurpose.prekey.verify(Array(signature), of: Array(prekey), publicKey: Array(bundle.signingKey)) else {
            throw .badSignature("prekey")
        }
        return parsed
    }
}

extension PrekeyUpload {
    /// The bundle and prekeys, all verified, for the installation `installation`.
    public func verified(for installation: [UInt8]) throws(WireError) -> (bundle: ContactBundle, prekeys: [(Prekey, SignedPrekey)]) {
        let bundle = try contact.verified()
        guard Array(bundle.installationID) == installation else {
            throw .mismatch("the upload's bundle is for another installation than its topic")
        }
        var verified: [(Prekey, SignedPrekey)] = []
        for signed in prekeys { verified.append((try signed.verified(by: bundle), signed)) }
        return (bundle, verified)
    }
}

extension Commit {
    /// Signs the message with the key its purpose names.
    public static func signing(_ body: CommitBody, with installationKey: SigningKey) throws -> Commit {
        let bytes: [UInt8] = try body.serializedBytes()
        return .with {
            $0.commit = Data(bytes)
            $0.signature = Data(SignaturePurpose.commit.sign(bytes, with: installationKey))
        }
    }

    /// BLAKE2b-256 of the signed commit body: what an epoch claim names.
    public var digest: [UInt8] { Blake2b.hash(Array(commit)) }

    /// The commit body, after checking it was signed by the installation key `signingKey`.
    public func verified(signingKey: [UInt8]) throws(WireError) -> CommitBody {
        let body: CommitBody
        do { body = try CommitBody(serializedBytes: commit) } catch { throw .malformed("commit") }
        guard SignaturePurpose.commit.verify(Array(signature), of: Array(commit), publicKey: signingKey) else {
            throw .badSignature("commit")
        }
        return body
    }
}

extension SignedInstallationNotice {
    /// Signs the message with the key its purpose names.
    public static func signing(_ notice: InstallationNotice, with installationKey: SigningKey) throws -> SignedInstallationNotice {
        let bytes: [UInt8] = try notice.serializedBytes()
        return .with {
            $0.notice = Data(bytes)
            $0.signature = Data(SignaturePurpose.installationNotice.sign(bytes, with: installationKey))
        }
    }

    /// The notice, after checking the installation whose signing key is `signingKey` signed it.
    public func verified(signingKey: [UInt8]) throws(WireError) -> InstallationNotice {
        let parsed = try parse(InstallationNotice.self, notice, as: "installation notice")
        guard parsed.installationID.count == Topic.installationIDBytes, parsed.restoredByLog.count == 16, parsed.backupID.count == 16 else {
            throw .malformed("installation notice")
        }
        guard SignaturePurpose.installationNotice.verify(Array(signature), of: Array(notice), publicKey: signingKey) else {
            throw .badSignature("installation notice")
        }
        return parsed
    }
}

/// Parses a wire message, naming it in the error.
public func parse<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: some Collection<UInt8>, as what: String) throws(WireError) -> M {
    do { return try M(serializedBytes: Array(bytes)) } catch { throw .malformed(what) }
}

extension SwiftProtobuf.Message {
    /// The message's wire bytes.
    public func wireBytes() throws -> [UInt8] { try serializedBytes() }
}

import Foundation
import GRDB
import KeepsakeCrypto
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

/// This store's place in an account: which account its installation joined,
/// with the installation's public identity.
public struct Membership: Sendable, Equatable {
    /// The account ID.
    public let account: AccountID
    /// This store's installation.
    public let installation: InstallationID
    /// The installation's X25519 identity public key.
    public let identityKey: [UInt8]
    /// The contact bundle the account signed, as published.
    public let signedBundle: [UInt8]
    let sequence: UInt64
}

extension Store {
    /// The account membership of the installation this store runs, or nil before it joined one.
    public func membership() throws(KeepsakeError) -> Membership? {
        guard let installation = try installation() else { return nil }
        return try readMessaging { db in
            try Row.fetchOne(db, sql: """
                SELECT account, identity_key, signed_bundle, sequence FROM account_memberships WHERE installation_id = ?
                """, arguments: [Data(installation.id.bytes)]).map {
                Membership(account: $0["account"], installation: installation.id, identityKey: Array($0["identity_key"] as Data),
                           signedBundle: Array($0["signed_bundle"] as Data), sequence: UInt64($0["sequence"] as Int64))
            }
        }
    }

    /// The installation's X25519 identity key pair, read from its sealed event.
    func identityKey(of membership: Membership) throws(KeepsakeError) -> KeyAgreementKey {
        guard let event = try event(at: membership.sequence), case var .accountJoined(joined)? = MessagingEvent(event.payload) else {
            throw .installationKeysErased(membership.installation)
        }
        defer { joined.identitySecret.resetBytes(in: 0..<joined.identitySecret.count) }
        return try Self.keyAgreementKey(joined.identitySecret)
    }

    /// A prekey's secret, or nil when it was used (erased) or never made.
    func prekeySecret(installation: InstallationID, id: UInt32) throws(KeepsakeError) -> (key: KeyAgreementKey, fallback: Bool)? {
        let row = try readMessaging { db in
            try Row.fetchOne(db, sql: "SELECT sequence, used FROM prekeys WHERE installation_id = ? AND prekey_id = ?",
                             arguments: [Data(installation.bytes), Int64(id)])
        }
        guard let row, !(row["used"] as Bool), let event = try event(at: UInt64(row["sequence"] as Int64)),
              case var .prekeyCreated(prekey)? = MessagingEvent(event.payload) else { return nil }
        defer { prekey.secret.resetBytes(in: 0..<prekey.secret.count) }
        return (try Self.keyAgreementKey(prekey.secret), prekey.fallback)
    }

    static func keyAgreementKey(_ secret: Data) throws(KeepsakeError) -> KeyAgreementKey {
        do {
            return try KeyAgreementKey(secret: SecureBytes(copying: secret))
        } catch {
            throw .crypto("\(error)")
        }
    }
}

extension Store {
    /// Signs an HTTP request to the relay's backup provider as this store's installation.
    public func authenticateRequest(method: String, path: String, contentDigest: [UInt8]) throws(KeepsakeError) -> RequestAuthentication {
        let (installation, key) = try signingKey()
        return RequestAuthentication.sign(method: method, path: path, installation: installation.id.bytes, contentDigest: contentDigest, with: key)
    }
}

extension Store {
    /// Reads messaging's tables, installing the messaging extension first when this store does not keep it yet.
    func readMessaging<T>(_ body: (Database) throws -> T) throws(KeepsakeError) -> T {
        try install(MessagingExtension())
        return try read(body)
    }

    /// Whether this store may send in a conversation: it created it, or it holds
    /// a session with at least one of its other members (its own account's
    /// installations do not count). Soft-restored conversations have neither and
    /// are read-only until a member's installation starts a session with this one.
    public func isWritable(_ conversation: ConversationSummary) throws(KeepsakeError) -> Bool {
        if conversation.createdHere { return true }
        let members = try members(of: conversation.id)
        return try readMessaging { db in
            let own = try AccountID.fetchSet(db, sql: "SELECT account FROM account_memberships")
            let reachable = try AccountID.fetchSet(db, sql: "SELECT DISTINCT peer_account FROM sessions")
            return members.contains { !own.contains($0) && reachable.contains($0) }
        }
    }
}

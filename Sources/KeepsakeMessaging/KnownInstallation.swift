import Foundation
import GRDB
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

/// Another installation this store learned of from its account's contact and
/// revocation topics, after checking the account's signatures.
public struct KnownInstallation: Sendable, Equatable {
    /// The installation's ID.
    public let id: InstallationID
    /// The account that granted it access.
    public let account: AccountID
    /// Ed25519: verifies its envelope headers, prekeys and commits.
    public let signingKey: [UInt8]
    /// X25519: what sealed metadata and sessions are made with.
    public let identityKey: [UInt8]
    /// When its bundle was made, by its clock.
    public let createdAt: Date
    /// A label the account gave it ("phone", "laptop"), or empty.
    public let role: String
    /// When its account revoked it; messages sent from then on are refused.
    public let revokedAt: Date?

    /// Whether a message sent at `time` by this installation is acceptable.
    func mayHaveSent(at time: Date) -> Bool { revokedAt.map { time < $0 } ?? true }
}

extension Store {
    /// The installations of `account` this store knows, oldest first (see `Messenger.installations(of:)` to refresh).
    public func knownInstallations(of account: AccountID) throws(KeepsakeError) -> [KnownInstallation] {
        try readMessaging { db in
            try Row.fetchAll(db, sql: "SELECT * FROM peer_installations WHERE account = ? ORDER BY created_at, installation_id",
                             arguments: [account]).compactMap(Self.knownInstallation)
        }
    }

    func knownInstallation(_ id: InstallationID) throws(KeepsakeError) -> KnownInstallation? {
        try readMessaging { db in
            try Row.fetchOne(db, sql: "SELECT * FROM peer_installations WHERE installation_id = ?", arguments: [Data(id.bytes)])
                .flatMap(Self.knownInstallation)
        }
    }

    private static func knownInstallation(_ row: Row) -> KnownInstallation? {
        guard let id = InstallationID(bytes: row["installation_id"] as Data) else { return nil }
        return KnownInstallation(
            id: id, account: row["account"], signingKey: Array(row["signing_key"] as Data),
            identityKey: Array(row["identity_key"] as Data),
            createdAt: Date(timeIntervalSince1970: Double(row["created_at"] as Int64) / 1000), role: row["role"],
            revokedAt: (row["revoked_at"] as Int64?).map { Date(timeIntervalSince1970: Double($0) / 1000) })
    }
}

extension PeerInstallation {
    init(_ bundle: ContactBundle, revokedAt: Int64 = 0) {
        self.init()
        installationID = bundle.installationID
        account = bundle.account
        signingKey = bundle.signingKey
        identityKey = bundle.identityKey
        createdAtMs = bundle.createdAtMs
        role = bundle.role
        revokedAtMs = revokedAt
    }
}

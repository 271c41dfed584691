import Foundation
import GRDB
import KeepsakeCrypto
import KeepsakeLog

/// Tags `Identifier` as an installation ID.
public enum InstallationTag {}
/// Identifies an installation: one app install on one device, with its own keys.
public typealias InstallationID = Identifier<InstallationTag>

/// The installation a store runs: the identity that signs its backups.
///
/// Its keys live sealed in the log (an `InstallationKeys` event), so a hard
/// backup carries them and a soft one does not. A hard restore makes another
/// log claim the next generation; the log with the highest (generation, log ID)
/// claim holds the installation, and any other store holding the keys is
/// superseded: it must stop sending and go offline.
public struct Installation: Sendable, Equatable {
    /// The installation's ID.
    public let id: InstallationID
    /// Ed25519 public key that verifies the installation's signatures.
    public let publicKey: [UInt8]
    /// The generation this store claims (1 for the store that created the keys).
    public let generation: UInt64
    /// The generation and log that currently hold the installation.
    public let holder: (generation: UInt64, log: LogID)

    /// True when another store holds a newer generation of this installation.
    public var isSuperseded: Bool { holder.generation > generation }

    /// Equal when every field is.
    public static func == (a: Self, b: Self) -> Bool {
        a.id == b.id && a.publicKey == b.publicKey && a.generation == b.generation && a.holder == b.holder
    }
}

extension Store {
    /// The installation this store runs, or nil when it has none yet (see `createInstallation`).
    ///
    /// With several (a forced hard restore onto a store that had one), it is the
    /// one this store claimed most recently.
    public func installation() throws(KeepsakeError) -> Installation? {
        try read { db in try Self.installation(db, log: self.logID) }
    }

    /// The account this store's installation belongs to, as the account signed it:
    /// the first credential an installed extension holds for the installation's
    /// signing key (messaging's, once the installation joined an account). Nil
    /// for a store without an installation or an account.
    public func accountCredential() throws(KeepsakeError) -> AccountCredential? {
        guard let installation = try installation() else { return nil }
        for ext in extensions {
            if let credential = try ext.accountCredential(in: self), credential.signingKey == installation.publicKey {
                return credential
            }
        }
        return nil
    }

    /// The installation this store runs, created (new random keys, in the log) when it has none.
    @discardableResult
    public func createInstallation() throws(KeepsakeError) -> Installation {
        if let existing = try installation() { return existing }
        let key: SigningKey
        var keys = InstallationKeys()
        do {
            key = try SigningKey.generate()
            keys.signingSeed = try key.seed().withUnsafeBytes { Data($0) }
        } catch {
            throw .crypto("\(error)")
        }
        keys.installationID = Data(InstallationID.random().bytes)
        keys.signingPublicKey = Data(key.publicKey)
        try append(.installationKeys(keys))
        keys.signingSeed.resetBytes(in: 0..<keys.signingSeed.count)
        guard let created = try installation() else { throw .database("the new installation was not projected") }
        return created
    }

    /// The signing key of this store's installation, read from its sealed event.
    /// Refused when another store holds a newer generation.
    package func signingKey() throws(KeepsakeError) -> (Installation, SigningKey) {
        let installation = try createInstallation()
        guard !installation.isSuperseded else { throw .installationSuperseded(installation) }
        let sequence = try read { db in
            try Int64.fetchOne(db, sql: "SELECT keys_sequence FROM installations WHERE id = ?", arguments: [Data(installation.id.bytes)])
        }
        guard let sequence, let event = try event(at: UInt64(sequence)), case var .installationKeys(keys) = event.payload else {
            throw .installationKeysErased(installation.id)
        }
        defer { keys.signingSeed.resetBytes(in: 0..<keys.signingSeed.count) }
        do {
            return (installation, try SigningKey(seed: SecureBytes(copying: keys.signingSeed)))
        } catch {
            throw .crypto("\(error)")
        }
    }

    static func installation(_ db: Database, log: LogID) throws -> Installation? {
        // This store's newest claim picks the installation it runs.
        guard let mine = try Row.fetchOne(db, sql: """
            SELECT i.id, i.public_key, c.generation FROM installation_claims c JOIN installations i ON i.id = c.installation_id
            WHERE c.log_id = ? ORDER BY c.sequence DESC LIMIT 1
            """, arguments: [Data(log.bytes)]) else { return nil }
        let id: Data = mine["id"]
        guard let holder = try Row.fetchOne(db, sql: """
            SELECT generation, log_id FROM installation_claims WHERE installation_id = ?
            ORDER BY generation DESC, log_id DESC LIMIT 1
            """, arguments: [id]), let holderLog = LogID(bytes: (holder["log_id"] as Data)) else { return nil }
        return Installation(
            id: InstallationID(bytes: id)!, publicKey: Array(mine["public_key"] as Data),
            generation: UInt64(mine["generation"] as Int64),
            holder: (UInt64(holder["generation"] as Int64), holderLog))
    }

    /// The hard backup this store's claim on `installation` came from, if it was restored.
    package func restoredFrom(_ installation: Installation) throws(KeepsakeError) -> Data? {
        guard let sequence = try read({ db in
            try Int64.fetchOne(db, sql: """
                SELECT sequence FROM installation_claims WHERE installation_id = ? AND log_id = ? AND generation = ?
                """, arguments: [Data(installation.id.bytes), Data(logID.bytes), Int64(installation.generation)])
        }), let event = try event(at: UInt64(sequence)), case let .installationRestored(restored) = event.payload else { return nil }
        return restored.backupID
    }
}

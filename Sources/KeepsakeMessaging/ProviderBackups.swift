import Foundation
import KeepsakeCrypto
import KeepsakeStore
import KeepsakeTransport

/// Backup files kept on the relay's backup provider: uploaded by an
/// installation, listed under their key's locator, fetched back with the key
/// alone (the Identity Box flow: a new device with only the recovery phrase).
public enum ProviderBackups {
    /// Uploads a backup file, listed under `key`'s locator, signed as `store`'s installation.
    public static func upload(
        _ file: URL, key: BackupKey, store: Store, provider: any BackupProviderTransport, lifetime: Duration? = nil
    ) async throws -> StoredBackup {
        guard let locator = try key.locator() else { throw BackupError.keyHasNoLocator }
        let digest = try Blake2b.hash(contentsOf: file)
        let uploadURL = provider.backupUploadURL
        let authentication = try store.authenticateRequest(method: "POST", path: uploadURL.path, contentDigest: digest)
        return try await provider.uploadBackup(
            file, to: uploadURL, authentication: authentication, options: BackupUploadOptions(lifetime: lifetime, locator: locator))
    }

    /// Downloads every unexpired backup made with `key` into `folder`, oldest
    /// first, each checked against its digest; throws `noBackupForKey` when there is none.
    public static func download(key: BackupKey, from provider: any BackupProviderTransport, into folder: URL) async throws -> [URL] {
        guard let locator = try key.locator() else { throw BackupError.keyHasNoLocator }
        let listed = try await provider.listBackups(locator: locator)
        guard !listed.isEmpty else { throw BackupError.noBackupForKey(provider: provider.backupUploadURL.host ?? "the provider") }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var files: [URL] = []
        for backup in listed {
            let file = folder.appendingPathComponent("keepsake-\(backup.id.prefix(16)).ksbak")
            if !FileManager.default.fileExists(atPath: file.path) {
                let partial = file.appendingPathExtension("partial")
                try? FileManager.default.removeItem(at: partial)
                try await provider.downloadBackup(from: backup.url, to: partial)
                guard try Blake2b.hash(contentsOf: partial) == backup.digest else {
                    try? FileManager.default.removeItem(at: partial)
                    throw BackupError.corruptHeader("the provider's copy of \(backup.id) does not match its digest")
                }
                try FileManager.default.moveItem(at: partial, to: file)
            }
            files.append(file)
        }
        return files
    }

    /// Sends automatic backups (`AutomaticBackupPolicy.destination`) to a
    /// provider, listed under their key's locator (a key file or recovery
    /// phrase, not a passphrase), kept there `lifetime`.
    public struct Destination: BackupDestination {
        /// The provider files go to.
        public let provider: any BackupProviderTransport
        /// How long the provider keeps each file (its default when nil).
        public let lifetime: Duration?

        /// Sends files to `provider`, kept `lifetime`.
        public init(provider: any BackupProviderTransport, lifetime: Duration? = nil) {
            self.provider = provider
            self.lifetime = lifetime
        }

        /// Uploads the file signed as the store's installation; returns its download URL.
        public func send(_ file: URL, from store: Store, key: BackupKey) async throws -> String {
            try await ProviderBackups.upload(file, key: key, store: store, provider: provider, lifetime: lifetime).url.absoluteString
        }
    }
}

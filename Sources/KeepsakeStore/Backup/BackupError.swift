import Foundation
import KeepsakeLog

/// Why a backup could not be written, verified or restored. Each case says what
/// happened and what to do; when one is thrown by a restore, the store is as it was
/// (or, for failures after the file was verified, resumable by running the restore again).
///
/// Not frozen: later releases may add cases, so a `switch` over it needs a
/// `default` branch. `description` always says what happened and what to do.
public enum BackupError: Error, Equatable, CustomStringConvertible {
    /// The file does not start with the backup magic.
    case notABackup
    /// The file's format version is one this Keepsake cannot read (it reads 1 to `supported`).
    case unsupportedVersion(found: UInt16, supported: UInt16)
    /// The file ends inside its header.
    case truncatedHeader
    /// A header field is out of range.
    case corruptHeader(String)
    /// The file is larger than the limit the caller set.
    case tooLarge(bytes: Int, limit: Int)
    /// The header's signature does not verify: the file was altered or not written by its claimed installation.
    case badSignature
    /// The header verifies but is signed by an installation the caller does not trust.
    case untrustedSigner(publicKey: String)
    /// The header's account credential is not one the account signed for the header's signer.
    case invalidCredential(String)
    /// The file was written by an installation of another account than `expected`
    /// (`found` nil: by an installation that had joined no account).
    case otherAccount(expected: AccountID, found: AccountID?)
    /// An authenticated chunk breaks a rule of the format (an event its header
    /// does not allow, a repeated event, a misplaced frame): the writer did not
    /// follow docs/BACKUP-FORMAT.md.
    case invalidContent(chunk: Int, reason: String)
    /// The file holds the same event (by ID) twice: its writer broke the format.
    case repeatedEvent(EventID)
    /// An incremental backup must be sealed with the same kind of key as its base.
    case chainKeySource(base: BackupKeySource, given: BackupKeySource)
    /// The file was encrypted with another kind of key than the one given.
    case keySourceMismatch(needs: BackupKeySource, given: BackupKeySource)
    /// The key is well formed but is not the one this backup was made with.
    case wrongKey(BackupKeySource)
    /// Chunk `index` does not authenticate or decode: altered, reordered, or from another file.
    case corruptChunk(index: Int, reason: String)
    /// The file stops after chunk `afterChunk` (-1: before any chunk); the rest is missing.
    case truncated(afterChunk: Int)
    /// An incremental backup needs `missing`, which is neither among the files given nor restored here before.
    case missingBase(backup: BackupID, missing: BackupID)
    /// An incremental backup's recorded base does not match the file given as its base.
    case baseMismatch(backup: BackupID, reason: String)
    /// An incremental backup was asked for, but this store has made no backup of that selection to extend.
    case noBaseForIncremental
    /// Another backup or restore is running on this store.
    case busy(path: String)
    /// The restore was cancelled. What it applied stays (whole chunks, with
    /// their projections); restoring the same files again resumes from there.
    case cancelled
    /// A hard restore onto a store that already runs an installation, without `force`.
    case storeHasInstallation(InstallationID)
    /// A key file holds neither 32 bytes nor 64 hex digits.
    case badKeyFile(path: String, bytes: Int)
    /// A new backup was asked for with an empty passphrase.
    case emptyPassphrase
    /// `BackupOptions.chunkSize` is outside 1 KiB to 16 MiB.
    case invalidChunkSize(Int)
    /// A single event is larger than a backup frame may be.
    case eventTooLarge(EventID, bytes: Int)
    /// The cipher the file names needs hardware this CPU lacks.
    case cipherUnavailable(String)
    case diskFull(path: String)
    case io(operation: String, path: String, errno: Int32)
    /// The store failed while reading or applying events.
    case store(KeepsakeError)
    /// The backup provider lists no backup for this key (the key itself is well formed).
    case noBackupForKey(provider: String)
    /// A passphrase key has no locator (each file has its own salt): list backups by key file or recovery phrase.
    case keyHasNoLocator

    /// Classifies an error raised by the store, the log or the crypto layer during a backup or restore.
    init(_ error: any Error) {
        switch error {
        case let error as BackupError: self = error
        case let error as KeepsakeError: self = .store(error)
        case let error as LogError: self = .store(.log(error))
        case let error as CryptoError: self = .store(.crypto(error.description))
        default: self = .store(KeepsakeError(database: error, path: "the projection database"))
        }
    }

    /// The error for a file operation that just failed, from `errno` (a full disk is told apart).
    static func failed(_ operation: String, _ path: String) -> BackupError {
        errno == ENOSPC || errno == EDQUOT ? .diskFull(path: path) : .io(operation: operation, path: path, errno: errno)
    }

    /// The case's name (`wrongKey`), stable across releases: for scripts, logs
    /// and the conformance corpus's manifest, where the message may change.
    public var code: String {
        switch self {
        case .notABackup: "notABackup"
        case .unsupportedVersion: "unsupportedVersion"
        case .truncatedHeader: "truncatedHeader"
        case .corruptHeader: "corruptHeader"
        case .tooLarge: "tooLarge"
        case .badSignature: "badSignature"
        case .untrustedSigner: "untrustedSigner"
        case .invalidCredential: "invalidCredential"
        case .otherAccount: "otherAccount"
        case .invalidContent: "invalidContent"
        case .repeatedEvent: "repeatedEvent"
        case .chainKeySource: "chainKeySource"
        case .keySourceMismatch: "keySourceMismatch"
        case .wrongKey: "wrongKey"
        case .corruptChunk: "corruptChunk"
        case .truncated: "truncated"
        case .missingBase: "missingBase"
        case .baseMismatch: "baseMismatch"
        case .noBaseForIncremental: "noBaseForIncremental"
        case .busy: "busy"
        case .cancelled: "cancelled"
        case .storeHasInstallation: "storeHasInstallation"
        case .badKeyFile: "badKeyFile"
        case .emptyPassphrase: "emptyPassphrase"
        case .invalidChunkSize: "invalidChunkSize"
        case .eventTooLarge: "eventTooLarge"
        case .cipherUnavailable: "cipherUnavailable"
        case .diskFull: "diskFull"
        case .io: "io"
        case .store: "store"
        case .noBackupForKey: "noBackupForKey"
        case .keyHasNoLocator: "keyHasNoLocator"
        }
    }

    /// What happened, and what to do.
    public var description: String {
        switch self {
        case .notABackup:
            return "this is not a Keepsake backup file (wrong magic bytes); check the file name"
        case let .unsupportedVersion(found, supported):
            return "this backup has format version \(found); this Keepsake reads versions 1 to \(supported). Upgrade Keepsake to restore it"
        case .truncatedHeader:
            return "the backup file ends inside its header: it is truncated. Copy it again from where it was stored"
        case let .corruptHeader(reason):
            return "the backup header is corrupt: \(reason). Copy the file again from where it was stored"
        case let .tooLarge(bytes, limit):
            return "the backup file is \(bytes) bytes, over the limit of \(limit); raise the limit if you trust the file"
        case .badSignature:
            return "the backup header's signature does not verify: the file was altered. Nothing was decrypted; use another copy"
        case let .untrustedSigner(key):
            return "the backup is signed by installation key \(key), which is not one this store trusts; nothing was decrypted"
        case let .invalidCredential(reason):
            return "the backup's account credential is invalid: \(reason). Whoever signed the file cannot show it belongs to an account; nothing was decrypted"
        case let .otherAccount(expected, found):
            let writer = found.map { "an installation of account \($0)" } ?? "an installation that belongs to no account"
            return "the backup was written by \(writer), not by account \(expected); nothing was restored. Restore it into a store of that account, or force it if you trust the file"
        case let .invalidContent(chunk, reason):
            return "chunk \(chunk) of the backup breaks the backup format's rules (\(reason)): it was written by a faulty or hostile writer. Nothing was restored"
        case let .repeatedEvent(id):
            return "the backup holds event \(id) twice, which the backup format does not allow: it was written by a faulty or hostile writer. Nothing was restored"
        case let .chainKeySource(base, given):
            return "the backup this one would extend is sealed with \(base), but \(given) was given; seal incremental backups with the same kind of key as their base, or make a full backup"
        case let .keySourceMismatch(needs, given):
            return "this backup was encrypted with \(needs), but \(given) was given; provide \(needs)"
        case let .wrongKey(source):
            switch source {
            case .mnemonic:
                return "the recovery phrase is valid, but this backup was not made with it: no backup for this phrase. Check you have the right phrase for this file"
            case .passphrase:
                return "wrong passphrase for this backup (nothing was decrypted); check it and try again"
            case .rawKey:
                return "wrong key for this backup (nothing was decrypted); use the key file the backup was made with"
            }
        case let .corruptChunk(index, reason):
            return "chunk \(index) of the backup is corrupt (\(reason)): the file was altered, reordered or mixed with another. Nothing from it was restored; use another copy"
        case let .truncated(afterChunk):
            return afterChunk < 0
                ? "the backup file holds no chunks after its header: it is truncated. Copy it again"
                : "the backup file stops after chunk \(afterChunk); the rest is missing. Copy it again from where it was stored"
        case let .missingBase(backup, missing):
            return "incremental backup \(backup) extends backup \(missing), which is not among the files given and was never restored here; add that file (and any it extends)"
        case let .baseMismatch(backup, reason):
            return "incremental backup \(backup) does not extend the file given before it: \(reason). Give the chain in order, from the full backup"
        case .noBaseForIncremental:
            return "this store has made no backup of this selection yet, so there is nothing to extend; make a full backup first"
        case let .busy(path):
            return "another backup or restore is running on the store at \(path); wait for it to finish"
        case .cancelled:
            return "the restore was cancelled; the chunks applied so far are kept, and restoring the same files again resumes after them"
        case let .storeHasInstallation(id):
            return "this store already runs installation \(id); a hard restore would replace it. Restore into a new store, or force it if this device should become the backed-up installation"
        case .emptyPassphrase:
            return "the passphrase is empty; a backup needs a passphrase (or a key file, or a recovery phrase). Nothing was written"
        case let .invalidChunkSize(size):
            return "a backup's chunk size must be 1024 to \(BackupFile.maxChunkPlaintext) bytes, not \(size); nothing was written"
        case let .badKeyFile(path, bytes):
            return "the key file \(path) holds \(bytes) bytes; a key file holds 32 bytes or 64 hex digits (make one with: head -c 32 /dev/urandom > backup.key)"
        case let .eventTooLarge(id, bytes):
            return "event \(id) is \(bytes) bytes, more than a backup frame holds (\(BackupFile.maxFrame)); it cannot be backed up"
        case let .cipherUnavailable(name):
            return "the backup is encrypted with \(name), which this CPU cannot run (no AES-NI); restore it on a machine that has it"
        case let .diskFull(path):
            return "the disk holding \(path) is full; nothing was kept of the backup. Free space and try again"
        case let .io(operation, path, code):
            return "\(operation) failed for \(path): \(String(cString: strerror(code)))"
        case let .store(error):
            return error.description
        case let .noBackupForKey(provider):
            return "\(provider) holds no backup made with this key; the key is well formed, so check it is the one used for the backups (or that they have not expired)"
        case .keyHasNoLocator:
            return "a passphrase cannot list backups on a provider; use the backups' key file or recovery phrase"
        }
    }
}

import Foundation
import KeepsakeCrypto

/// Errors of the event log. Each says what happened and what to do about it.
///
/// Not frozen: later releases may add cases, so a `switch` over it needs a
/// `default` branch. `description` always says what happened and what to do.
public enum LogError: Error, Equatable, CustomStringConvertible {
    /// The directory exists but does not hold a Keepsake log.
    case notALog(path: String, reason: String)
    /// The log's files are damaged (a truncated or overwritten page, missing key
    /// slots); nothing was changed.
    case damaged(path: String, reason: String)
    /// A store's log is missing or empty: opening it would start a new log and
    /// lose every event.
    case missing(path: String, reason: String)
    /// The log was written by a newer Keepsake with a format this one cannot read.
    case newerFormat(path: String, found: UInt32, supported: UInt32)
    /// A stored record cannot be decoded.
    case corruptRecord(sequence: UInt64, reason: String)
    /// A record is sealed with a cipher this CPU cannot run (AES-256-GCM without AES-NI).
    case cipherUnavailable(sequence: UInt64, cipher: String)
    /// An appended event claims to come from this log but this log never wrote it.
    case eventClaimsThisLog(EventID)
    /// A draft has an effect but no subject for it to act on.
    case effectWithoutSubject(kind: UInt32)
    /// The disk (or quota) is full; nothing of the failed write was kept.
    case diskFull(path: String)
    /// A file operation failed.
    case io(operation: String, path: String, errno: Int32)
    /// LMDB failed in a way not covered above.
    case lmdb(LMDBError)
    /// A cryptographic operation failed (e.g. no locked memory).
    case crypto(CryptoError)
    /// Another writer holds the log for appends it may yet take back (a restore
    /// into the empty store, verifying its files); nothing was appended.
    case provisionallyClaimed(path: String)
    /// Only an empty log can be claimed provisionally, and this one holds events.
    case notEmpty(path: String)

    /// What happened, and what to do.
    public var description: String {
        switch self {
        case let .notALog(path, reason):
            return "\(path) is not a Keepsake log (\(reason)); point Keepsake at a store directory or an empty one"
        case let .damaged(path, reason):
            return "the log at \(path) is damaged: \(reason). Nothing was changed. Restore the store from a backup into a new folder; a check of the log lists the damage"
        case let .missing(path, reason):
            return "the log at \(path) is missing: \(reason). Its events cannot be read, and a new log would lose them; nothing was changed. Put the log folder back from a copy, or restore the store from a backup into a new folder"
        case let .newerFormat(path, found, supported):
            return "the log at \(path) has format \(found), newer than this Keepsake supports (\(supported)); upgrade Keepsake"
        case let .corruptRecord(sequence, reason):
            return "log record \(sequence) is corrupt: \(reason); restore the store from a backup"
        case let .cipherUnavailable(sequence, cipher):
            return "log record \(sequence) is sealed with \(cipher), which this CPU cannot run (no AES-NI); "
                + "open the store on the machine that wrote it, back it up there, and restore the backup here"
        case let .eventClaimsThisLog(id):
            return "event \(id) claims to come from this log, which never wrote it; the source is confused or hostile, nothing was appended"
        case let .effectWithoutSubject(kind):
            return "an event of kind \(kind) has an effect but no subject; this is a bug in the caller, nothing was appended"
        case let .diskFull(path):
            return "the disk holding \(path) is full; nothing was written. Free space and try again"
        case let .io(operation, path, code):
            return "\(operation) failed for \(path): \(String(cString: strerror(code)))"
        case let .lmdb(error):
            return error.description
        case let .crypto(error):
            return error.description
        case let .provisionallyClaimed(path):
            return "the log at \(path) is held by a restore into the empty store that is still verifying its files; nothing was appended. "
                + "Append again once the restore has verified them (it then keeps or takes back what it showed)"
        case let .notEmpty(path):
            return "the log at \(path) already holds events; only a restore into an empty store may show events before its files are verified"
        }
    }

    /// Classifies any error raised under `path` as a `LogError`.
    init(_ error: any Error, path: String) {
        switch error {
        case let error as LogError: self = error
        case let error as LMDBError where error.isDiskFull: self = .diskFull(path: path)
        case let error as LMDBError where error.isCorruption: self = .damaged(path: path, reason: error.description)
        case let error as LMDBError: self = .lmdb(error)
        case let error as CryptoError: self = .crypto(error)
        default: self = .io(operation: "\(error)", path: path, errno: EIO)
        }
    }
}

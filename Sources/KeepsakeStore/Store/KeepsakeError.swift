import Foundation
import KeepsakeLog

/// Errors of the Keepsake engine. Each says what happened and what to do.
///
/// Not frozen: later releases may add cases, so a `switch` over it needs a
/// `default` branch. `description` always says what happened and what to do.
public enum KeepsakeError: Error, Equatable, CustomStringConvertible {
    /// The directory exists, holds files, and is not a Keepsake store.
    case notAStore(path: String)
    /// A file or folder of the store cannot be read or written (`reason` says why, e.g. permission denied).
    case cannotAccess(path: String, reason: String)
    /// The store's log folder holds a different log than the one the store was created with.
    case logReplaced(path: String, expected: LogID, found: LogID)
    /// The store was created by a newer Keepsake.
    case newerStoreFormat(path: String, found: Int, supported: Int)
    /// The projection database is damaged (not a database, corrupt pages, a
    /// directory in its place); the log, the truth, is not affected.
    case projectionsDamaged(path: String, reason: String)
    /// The projection database has migrations this Keepsake does not know.
    case projectionsFromNewerSchema(path: String, applied: [String], known: [String])
    /// A cursor names a position in a different log than this store's.
    case cursorFromAnotherLog(cursor: Cursor, storeLog: LogID)
    /// A cursor names a position past the end of this store's log.
    case cursorBeyondHead(cursor: Cursor, head: UInt64)
    /// An event's payload does not decode as its kind says.
    case corruptEventPayload(id: EventID?, kind: UInt32)
    /// A payload that cannot be appended as a new event (e.g. `.erased`).
    case notAppendable(kindName: String)
    /// A new event of a kind neither the store nor an installed extension defines.
    case undeclaredKind(UInt32)
    /// An extension declares an event kind the store or another extension already defines, or declares it badly.
    case invalidEventKind(kind: UInt32, extension: String, reason: String)
    case unknownConversation(ConversationID)
    /// The events are stored in the log up to `stored`, but the projections
    /// could not follow (`reason`). They catch up on the next append or open;
    /// do not append the same events again.
    case projectionsBehind(stored: Cursor, reason: String)
    /// The disk holding the projections is full.
    case diskFull(path: String)
    /// Another store restored this installation's hard backup and now holds a
    /// newer generation: this store must stop sending.
    case installationSuperseded(Installation)
    /// The installation's keys were erased from this store's log.
    case installationKeysErased(InstallationID)
    /// An extension's name is empty, contains a dot, is `store`, or is taken by another extension.
    case invalidExtension(name: String)
    /// A cryptographic operation failed (e.g. no locked memory).
    case crypto(String)
    /// The event log failed.
    case log(LogError)
    /// The projection database failed.
    case database(String)

    /// What happened, and what to do.
    public var description: String {
        switch self {
        case let .notAStore(path):
            return "\(path) is not a Keepsake store (no STORE file) and is not empty; choose an empty or new directory, or the directory of an existing store"
        case let .cannotAccess(path, reason):
            return "cannot use \(path): \(reason). Check the path, and that this user may read and write it"
        case let .logReplaced(path, expected, found):
            return "the log in \(path) is log \(found.hex), but this store was created with log \(expected.hex): the log folder was swapped or replaced. Nothing was changed. Put the store's own log back, or restore the store from a backup into a new folder"
        case let .newerStoreFormat(path, found, supported):
            return "the store at \(path) has format \(found); this Keepsake reads up to \(supported). Upgrade Keepsake"
        case let .projectionsDamaged(path, reason):
            return "the projection database \(path) is damaged (\(reason)); the log is intact. Rebuild the projections from it: opening the store with StoreOptions.damagedProjections = .setAside keeps the damaged file aside under a new name and rebuilds"
        case let .projectionsFromNewerSchema(path, applied, known):
            let extra = applied.filter { !known.contains($0) }
            return "the projection database \(path) has migrations this Keepsake does not know (\(extra.joined(separator: ", "))): it was opened by a newer version. Upgrade Keepsake, or delete the file to rebuild it from the log"
        case let .cursorFromAnotherLog(cursor, storeLog):
            return "cursor \(cursor) belongs to log \(cursor.log.hex), not to this store's log \(storeLog.hex); use a cursor this store gave (Store.cursor())"
        case let .cursorBeyondHead(cursor, head):
            return "cursor \(cursor) is past the end of this log (sequence \(head)); use a cursor printed by this store"
        case let .corruptEventPayload(id, kind):
            let which = id.map { "event \($0)" } ?? "an event"
            return "\(which) of kind \(EventPayload.name(ofKind: kind)) has a payload that does not decode; nothing was appended. The source is corrupt"
        case let .notAppendable(kindName):
            return "an event of kind \(kindName) cannot be appended; append the original event instead"
        case let .undeclaredKind(kind):
            return "an event of kind \(kind) cannot be appended: no installed extension declares that kind; install the extension that defines it"
        case let .invalidEventKind(kind, ext, reason):
            return "the store extension '\(ext)' cannot declare event kind \(kind): \(reason)"
        case let .unknownConversation(id):
            return "conversation \(id) is not in this store"
        case let .projectionsBehind(stored, reason):
            return "the events were stored (log position \(stored)) but the projections could not be updated: \(reason). They will catch up on the next append or when the store is opened again; do not append these events again"
        case let .diskFull(path):
            return "the disk holding \(path) is full; free space and try again"
        case let .installationSuperseded(installation):
            return "installation \(installation.id) was restored from a hard backup on another device (log \(installation.holder.log.hex), generation \(installation.holder.generation)); this store runs generation \(installation.generation) and must go offline. Keep reading its history, or make this device a new installation"
        case let .installationKeysErased(id):
            return "the keys of installation \(id) were erased from this store; restore a hard backup to get them back"
        case let .invalidExtension(name):
            return "the store extension name '\(name)' cannot be used: it must be non-empty, without dots, not 'store', and unique among the store's extensions"
        case let .crypto(message):
            return "cryptography failed: \(message)"
        case let .log(error):
            return error.description
        case let .database(message):
            return "projection database error: \(message). The log is the truth: rebuilding the projections from it (Store.rebuildProjections) replaces them"
        }
    }
}

import CLMDB
import CLMDBGuard
import Foundation

/// An error returned by LMDB, with the operation that failed.
public struct LMDBError: Error, Equatable, CustomStringConvertible {
    /// LMDB's return code (negative for LMDB's own codes, positive for errno values).
    public let code: Int32
    /// What Keepsake was doing, e.g. "open environment" or "commit".
    public let operation: String

    /// For a caught LMDB assertion: its text (LMDB would have aborted the process).
    public let assertion: String?

    /// An error of `operation` with LMDB's `code`.
    public init(code: Int32, operation: String, assertion: String? = nil) {
        self.code = code
        self.operation = operation
        self.assertion = assertion
    }

    /// The map is full: grow it and retry.
    public var isMapFull: Bool { code == MDB_MAP_FULL }
    /// Another process grew the map: adopt it and retry.
    public var isMapResized: Bool { code == MDB_MAP_RESIZED }
    /// The disk or quota is full.
    public var isDiskFull: Bool { code == ENOSPC || code == EDQUOT }
    /// The file's pages contradict each other: it was damaged on disk.
    public var isCorruption: Bool { code == MDB_CORRUPTED || code == MDB_PAGE_NOTFOUND }

    /// The operation, LMDB's code and message.
    public var description: String {
        let reason = String(cString: mdb_strerror(code))
        let detail = assertion.map { "; LMDB's internal check failed: \($0)" } ?? ""
        return "LMDB \(operation) failed: \(reason) (code \(code))\(detail)"
    }

    /// Throws unless `code` is MDB_SUCCESS.
    @inline(__always)
    static func check(_ code: Int32, _ operation: @autoclosure () -> String) throws {
        guard code != MDB_SUCCESS else { return }
        let caught = code == MDB_CORRUPTED ? String(cString: keepsake_mdb_last_assertion()) : ""
        throw LMDBError(code: code, operation: operation(), assertion: caught.isEmpty ? nil : caught)
    }
}

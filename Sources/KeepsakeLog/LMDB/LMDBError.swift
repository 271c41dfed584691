import CLMDB
import Glibc

/// An error returned by LMDB, with the operation that failed.
public struct LMDBError: Error, Equatable, CustomStringConvertible {
    /// LMDB's return code (negative for LMDB's own codes, positive for errno values).
    public let code: Int32
    /// What Keepsake was doing, e.g. "open environment" or "commit".
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    public var isMapFull: Bool { code == MDB_MAP_FULL }
    public var isMapResized: Bool { code == MDB_MAP_RESIZED }
    public var isDiskFull: Bool { code == ENOSPC || code == EDQUOT }
    /// The file is not an LMDB environment, or one of an incompatible LMDB version.
    public var isNotLMDBFile: Bool { code == MDB_INVALID || code == MDB_VERSION_MISMATCH }

    public var description: String {
        let reason = String(cString: mdb_strerror(code))
        return "LMDB \(operation) failed: \(reason) (code \(code))"
    }

    /// Throws unless `code` is MDB_SUCCESS.
    @inline(__always)
    static func check(_ code: Int32, _ operation: @autoclosure () -> String) throws {
        if code != MDB_SUCCESS { throw LMDBError(code: code, operation: operation()) }
    }
}

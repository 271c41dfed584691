import CLMDB
import CLMDBGuard

/// A named database inside an environment (an LMDB `MDB_dbi`). Valid for the
/// environment's lifetime once the transaction that opened it has committed.
public struct LMDBDatabase: Sendable, Hashable {
    let dbi: MDB_dbi
}

/// A live LMDB transaction, lent to a closure by `LMDBEnvironment.read` or
/// `.write`. It must not be used after that closure returns.
public struct LMDBTransaction {
    let handle: OpaquePointer

    /// Opens a named database, creating it with `create`.
    public func openDatabase(_ name: String, create: Bool) throws -> LMDBDatabase {
        var dbi: MDB_dbi = 0
        try LMDBError.check(keepsake_mdb_dbi_open(handle, name, create ? UInt32(MDB_CREATE) : 0, &dbi), "open database '\(name)'")
        return LMDBDatabase(dbi: dbi)
    }

    /// Calls `body` with the value stored under `key`, or returns nil when absent.
    /// The buffer points into the memory map and is valid only inside `body`.
    public func withValue<R>(
        _ key: UnsafeRawBufferPointer, in db: LMDBDatabase,
        _ body: (UnsafeRawBufferPointer) throws -> R
    ) throws -> R? {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val()
        let status = keepsake_mdb_get(handle, db.dbi, &k, &v)
        if status == MDB_NOTFOUND { return nil }
        try LMDBError.check(status, "get")
        return try body(UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
    }

    /// Copies out the value stored under `key`.
    public func value(_ key: UnsafeRawBufferPointer, in db: LMDBDatabase) throws -> [UInt8]? {
        try withValue(key, in: db) { Array($0) }
    }

    /// Stores `value` under `key`. With `append`, the key must sort after every
    /// existing key (MDB_APPEND), which makes sequential loads much faster.
    public func put(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, in db: LMDBDatabase, append: Bool = false) throws {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        try LMDBError.check(keepsake_mdb_put(handle, db.dbi, &k, &v, append ? UInt32(MDB_APPEND) : 0), "put")
    }

    /// Reserves `count` bytes under `key` and lets `body` write the value in
    /// place (MDB_RESERVE), saving a copy; `append` as for `put`. When `body`
    /// throws, the value holds whatever it wrote: the transaction must not commit.
    public func put(
        _ key: UnsafeRawBufferPointer, reserving count: Int, in db: LMDBDatabase, append: Bool = false,
        _ body: (UnsafeMutableRawBufferPointer) throws -> Void
    ) throws {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: count, mv_data: nil)
        let flags = UInt32(MDB_RESERVE) | (append ? UInt32(MDB_APPEND) : 0)
        try LMDBError.check(keepsake_mdb_put(handle, db.dbi, &k, &v, flags), "put")
        try body(UnsafeMutableRawBufferPointer(start: v.mv_data, count: count))
    }

    /// Removes `key`; returns false when it was absent.
    @discardableResult
    public func delete(_ key: UnsafeRawBufferPointer, in db: LMDBDatabase) throws -> Bool {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        let status = keepsake_mdb_del(handle, db.dbi, &k, nil)
        if status == MDB_NOTFOUND { return false }
        try LMDBError.check(status, "delete")
        return true
    }

    /// Removes every entry of `db`, keeping the database itself.
    public func clear(_ db: LMDBDatabase) throws {
        try LMDBError.check(keepsake_mdb_drop(handle, db.dbi, 0), "clear database")
    }

    /// Visits entries in key order starting at the first key >= `from` (or the
    /// first key when nil) until `body` returns false. Buffers are valid only during the call.
    public func scan(
        _ db: LMDBDatabase, from start: UnsafeRawBufferPointer? = nil,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        var cursor: OpaquePointer?
        try LMDBError.check(keepsake_mdb_cursor_open(handle, db.dbi, &cursor), "open cursor")
        defer { mdb_cursor_close(cursor) }
        var k = MDB_val()
        var v = MDB_val()
        var op = MDB_FIRST
        if let start {
            k = MDB_val(mv_size: start.count, mv_data: UnsafeMutableRawPointer(mutating: start.baseAddress))
            op = MDB_SET_RANGE
        }
        var status = keepsake_mdb_cursor_get(cursor, &k, &v, op)
        while status == MDB_SUCCESS {
            let more = try body(UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size),
                                UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
            if !more { return }
            status = keepsake_mdb_cursor_get(cursor, &k, &v, MDB_NEXT)
        }
        if status != MDB_NOTFOUND { try LMDBError.check(status, "cursor next") }
    }

    /// Calls `body` with the last entry of `db`, or returns nil when it is empty.
    public func withLast<R>(
        _ db: LMDBDatabase,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> R
    ) throws -> R? {
        var cursor: OpaquePointer?
        try LMDBError.check(keepsake_mdb_cursor_open(handle, db.dbi, &cursor), "open cursor")
        defer { mdb_cursor_close(cursor) }
        var k = MDB_val()
        var v = MDB_val()
        let status = keepsake_mdb_cursor_get(cursor, &k, &v, MDB_LAST)
        if status == MDB_NOTFOUND { return nil }
        try LMDBError.check(status, "cursor last")
        return try body(UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size),
                        UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
    }

    /// The number of entries in `db`.
    public func count(_ db: LMDBDatabase) throws -> Int {
        var stat = MDB_stat()
        try LMDBError.check(keepsake_mdb_stat(handle, db.dbi, &stat), "stat")
        return stat.ms_entries
    }
}

import CLMDB
import CLMDBGuard
import Foundation

/// An open LMDB environment: one memory-mapped file holding named databases.
///
/// Read transactions may run on any thread at once; write transactions are
/// serialised by LMDB itself, across threads and processes. When a write runs
/// out of map space (MDB_MAP_FULL), the environment doubles the map and runs the
/// write again, so callers never see that error. Write bodies must therefore be
/// safe to run more than once: they see a fresh transaction each time.
public final class LMDBEnvironment: @unchecked Sendable {
    // Invariant: `handle` is valid from init to deinit. Resizing the map requires
    // that no transaction of this process is open, which `gate` enforces: every
    // transaction holds it shared, a resize holds it exclusively.
    private let handle: OpaquePointer
    private let gate = ReadWriteLock()
    private let writer = Lock()
    /// The environment's folder.
    public let path: String

    /// Opens the environment in directory `path`, creating its files if missing.
    /// With `durable` false, commits are not synced (MDB_NOSYNC).
    public init(path: String, mapSize: Int, maxDatabases: Int, durable: Bool = true) throws {
        var env: OpaquePointer?
        try LMDBError.check(mdb_env_create(&env), "create environment")
        guard let env else { throw LMDBError(code: ENOMEM, operation: "create environment") }
        do {
            try LMDBError.check(keepsake_mdb_guard(env), "install the assertion guard")
            try LMDBError.check(mdb_env_set_maxdbs(env, MDB_dbi(maxDatabases)), "set max databases")
            try LMDBError.check(mdb_env_set_maxreaders(env, 512), "set max readers")
            try LMDBError.check(mdb_env_set_mapsize(env, mapSize), "set map size")
            var flags = UInt32(MDB_NOTLS | MDB_NORDAHEAD)
            if !durable { flags |= UInt32(MDB_NOSYNC) }
            try LMDBError.check(mdb_env_open(env, path, flags, 0o644), "open environment at \(path)")
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.handle = env
        self.path = path
    }

    deinit {
        mdb_env_close(handle)
    }

    /// The current size of the memory map in bytes.
    public var mapSize: Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return info.me_mapsize
    }

    /// Gives back the map's pages this process has touched. They are pages of
    /// the file (LMDB maps it shared and read-only), read again from the page
    /// cache on the next access, so nothing changes but resident memory: a long
    /// import that looks up most of the log would otherwise keep it all resident.
    ///
    /// LMDB does not tell where it mapped the file (`me_mapaddr` is set only for
    /// fixed maps), so the mappings of `data.mdb` are found in `/proc/self/maps`
    /// by the file's inode; where that file does not exist, nothing happens.
    public func releaseMappedPages() {
        gate.lockShared()
        defer { gate.unlockShared() }
        var file = stat()
        guard stat(path + "/data.mdb", &file) == 0 else { return }
        for range in Self.mappings(ofInode: UInt64(file.st_ino)) {
            _ = madvise(UnsafeMutableRawPointer(bitPattern: range.lowerBound), range.count, MADV_DONTNEED)
        }
    }

    /// The address ranges where this process maps the file with inode `inode`, from `/proc/self/maps`.
    static func mappings(ofInode inode: UInt64) -> [Range<UInt>] {
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/maps"),
              let data = try? handle.readToEnd() else { return [] }
        try? handle.close()
        var ranges: [Range<UInt>] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            // start-end perms offset device inode path
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, UInt64(fields[4]) == inode else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), start < end else { continue }
            ranges.append(start..<end)
        }
        return ranges
    }

    /// Opens a named database, creating it if missing.
    public func openDatabase(_ name: String) throws -> LMDBDatabase {
        try write { txn in try txn.openDatabase(name, create: true) }
    }

    /// Runs `body` in a read-only snapshot transaction.
    public func read<R>(_ body: (LMDBTransaction) throws -> R) throws -> R {
        while true {
            gate.lockShared()
            defer { gate.unlockShared() }
            var txn: OpaquePointer?
            let status = keepsake_mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn)
            if status == MDB_MAP_RESIZED {
                adoptResizedMap()
                continue
            }
            try LMDBError.check(status, "begin read transaction")
            let transaction = LMDBTransaction(handle: txn!)
            defer { mdb_txn_abort(txn) }
            return try body(transaction)
        }
    }

    /// Runs `body` in a write transaction and commits it. On MDB_MAP_FULL the map
    /// is doubled and `body` runs again in a new transaction. Any other error
    /// aborts the transaction: nothing of it is written.
    public func write<R>(_ body: (LMDBTransaction) throws -> R) throws -> R {
        try writer.withLock {
            while true {
                do {
                    return try writeOnce(body)
                } catch let error as LMDBError where error.isMapFull {
                    try grow()
                } catch let error as LMDBError where error.isMapResized {
                    adoptResizedMap()
                }
            }
        }
    }

    /// Flushes the environment to disk (needed after writes in non-durable mode).
    public func sync() throws {
        try LMDBError.check(mdb_env_sync(handle, 1), "sync")
    }

    private func writeOnce<R>(_ body: (LMDBTransaction) throws -> R) throws -> R {
        gate.lockShared()
        defer { gate.unlockShared() }
        var txn: OpaquePointer?
        try LMDBError.check(keepsake_mdb_txn_begin(handle, nil, 0, &txn), "begin write transaction")
        let result: R
        do {
            result = try body(LMDBTransaction(handle: txn!))
        } catch {
            mdb_txn_abort(txn)
            throw error
        }
        try LMDBError.check(keepsake_mdb_txn_commit(txn), "commit")
        return result
    }

    private func grow() throws {
        gate.lockExclusive()
        defer { gate.unlockExclusive() }
        let doubled = mapSize * 2
        try LMDBError.check(mdb_env_set_mapsize(handle, doubled), "grow map to \(doubled) bytes")
    }

    private func adoptResizedMap() {
        gate.lockExclusive()
        defer { gate.unlockExclusive() }
        // Size 0 adopts the size another process has set.
        mdb_env_set_mapsize(handle, 0)
    }
}

/// A process-local mutex over pthread_mutex_t.
final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A process-local reader-writer lock over pthread_rwlock_t.
final class ReadWriteLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func lockShared() { pthread_rwlock_rdlock(lock) }
    func unlockShared() { pthread_rwlock_unlock(lock) }
    func lockExclusive() { pthread_rwlock_wrlock(lock) }
    func unlockExclusive() { pthread_rwlock_unlock(lock) }
}

import Foundation
import Synchronization
import KeepsakeLog

/// The per-store lock that lets one backup or restore run at a time.
///
/// Within a process, a registry of held store paths; across processes, a POSIX
/// record lock on `<store>/backup.lock` (released when the holder closes the file
/// or dies). Record locks, unlike `flock`, are not shared with child processes
/// forked while the lock is held, so a process that spawns others never leaves
/// the store looking busy after it unlocked.
final class BackupLock {
    private static let held = Mutex<Set<String>>([])
    private let path: String
    private let descriptor: Int32

    init(store: URL) throws(BackupError) {
        let path = store.standardizedFileURL.appendingPathComponent("backup.lock").path
        guard Self.held.withLock({ $0.insert(path).inserted }) else { throw .busy(path: store.path) }
        let descriptor = SystemCalls.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let error = BackupError.failed("open", path)
            Self.held.withLock { _ = $0.remove(path) }
            throw error
        }
        guard SystemCalls.tryLockForWriting(descriptor) else {
            SystemCalls.close(descriptor)
            Self.held.withLock { _ = $0.remove(path) }
            throw .busy(path: store.path)
        }
        // Only now is the object whole (and its deinit the one owner of the lock).
        self.path = path
        self.descriptor = descriptor
    }

    deinit {
        SystemCalls.close(descriptor)
        Self.held.withLock { _ = $0.remove(path) }
    }
}

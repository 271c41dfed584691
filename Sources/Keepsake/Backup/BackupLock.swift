import Foundation
import Glibc

/// The per-store lock that lets one backup or restore run at a time, across
/// processes (an advisory `flock` on `<store>/backup.lock`, released on close
/// or process death).
final class BackupLock {
    private let descriptor: Int32

    init(store: URL) throws(BackupError) {
        let path = store.appendingPathComponent("backup.lock").path
        descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw BackupWriter.ioError("open", path) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(descriptor)
            throw .busy(path: store.path)
        }
    }

    deinit { Glibc.close(descriptor) }
}

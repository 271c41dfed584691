#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#else
#error("Keepsake needs a POSIX C library (Glibc or Darwin)")
#endif

/// The C library's file calls, for the package's file formats (key slots,
/// backups, locks). This is the one place in the storage layers that names the
/// platform: elsewhere `import Foundation` brings the POSIX constants and
/// `errno`, and these names keep calls apart from methods called `open` or `close`.
package enum SystemCalls {
    package static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 {
        #if canImport(Glibc)
        Glibc.open(path, flags, mode)
        #else
        Darwin.open(path, flags, mode)
        #endif
    }

    @discardableResult
    package static func close(_ descriptor: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.close(descriptor)
        #else
        Darwin.close(descriptor)
        #endif
    }

    package static func read(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.read(descriptor, buffer, count)
        #else
        Darwin.read(descriptor, buffer, count)
        #endif
    }

    package static func write(_ descriptor: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(descriptor, buffer, count)
        #else
        Darwin.write(descriptor, buffer, count)
        #endif
    }

    /// Makes a file's contents durable: `fdatasync` on Linux; on Apple
    /// platforms `F_FULLFSYNC`, since their `fsync` may leave data in the drive's cache.
    package static func syncData(_ descriptor: Int32) -> Int32 {
        #if canImport(Glibc)
        fdatasync(descriptor)
        #else
        fcntl(descriptor, F_FULLFSYNC)
        #endif
    }

    /// Takes a POSIX write lock on the whole file without waiting; false when
    /// another process holds it. Released when the descriptor closes.
    package static func tryLockForWriting(_ descriptor: Int32) -> Bool {
        #if canImport(Glibc)
        var lock = Glibc.flock()
        #else
        var lock = Darwin.flock()
        #endif
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        return fcntl(descriptor, F_SETLK, &lock) == 0
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#else
#error("Keepsake needs a POSIX C library (Glibc or Darwin)")
#endif

/// The socket calls whose names or constants differ between Linux and Apple
/// platforms: the fuzz harness's raw loopback connections, the connection cap.
enum Sockets {
    /// The process's soft limit on open descriptors, or nil when unknown.
    static func descriptorLimit() -> Int? {
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = Int32(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0 else { return nil }
        return limit.rlim_cur > UInt64(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// A new TCP socket that never raises SIGPIPE, or -1.
    static func tcp() -> Int32 {
        #if canImport(Glibc)
        Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let socket = Darwin.socket(AF_INET, SOCK_STREAM, 0)
        var on: Int32 = 1
        if socket >= 0 { setsockopt(socket, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<Int32>.size)) }
        return socket
        #endif
    }

    /// Sends bytes without raising SIGPIPE when the peer has gone.
    static func send(_ socket: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.send(socket, bytes, count, Int32(MSG_NOSIGNAL))
        #else
        Darwin.send(socket, bytes, count, 0)
        #endif
    }
}

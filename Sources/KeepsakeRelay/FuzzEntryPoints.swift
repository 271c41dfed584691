import Foundation
import Hummingbird
import Logging

/// The relay's entry point for the fuzz targets (`Fuzz/`): a relay listening
/// on loopback in this process, and raw request bytes written to it over TCP,
/// so that HTTP parsing, routing, body limits and every handler see exactly
/// what a hostile client could send. Package access: not public API.
package final class RelayFuzzHarness: Sendable {
    package let directory: URL
    package let port: Int

    /// Starts a relay with its data in a new temporary folder and waits until it listens.
    package init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-fuzz-relay-\(UUID().uuidString)")
        var limits = Relay.Limits()
        limits.maxBodyBytes = 64 * 1024
        var logger = Logger(label: "keepsake.fuzz")
        logger.logLevel = .critical
        let bound = BoundPort()
        Task.detached { [directory] in
            let relay = try await Relay(directory: directory, limits: limits)
            try await relay.application(port: 0, logger: logger) { port in bound.set(port) }.runService()
        }
        guard let port = bound.wait(seconds: 30) else { throw RelayError(.serviceUnavailable, code: "not_started", "the fuzzed relay did not start") }
        self.port = port
    }

    /// Writes `request` to a new connection, closes the sending side, and
    /// returns what the relay answered before closing (at most 1 MiB, 5 s).
    @discardableResult
    package func send(_ request: [UInt8]) -> [UInt8] {
        Self.exchange(request, port: port)
    }

    /// Writes raw `request` bytes to a new loopback connection to `port`, closes
    /// the sending side, and returns the answer (at most 1 MiB, 5 s).
    package static func exchange(_ request: [UInt8], port: Int) -> [UInt8] {
        guard let socket = connection(port: port) else { return [] }
        defer { close(socket) }
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { Sockets.send(socket, $0.baseAddress! + sent, request.count - sent) }
            guard n > 0 else { break }
            sent += n
        }
        shutdown(socket, Int32(SHUT_WR))
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while response.count < 1 << 20 {
            let n = recv(socket, &buffer, buffer.count, 0)
            guard n > 0 else { break }
            response += buffer.prefix(n)
        }
        return response
    }

    /// A new loopback TCP connection to `port` (reads and writes time out after
    /// 5 s), or nil when it cannot be made. The caller closes it.
    package static func connection(port: Int) -> Int32? {
        let socket = Sockets.tcp()
        guard socket >= 0 else { return nil }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socket)
            return nil
        }
        return socket
    }

    /// Well-formed signature headers (of an installation the relay does not know), for the signed routes.
    private static let signatureHeaders = [
        ("Keepsake-Installation", String(repeating: "0", count: 32)), ("Keepsake-Timestamp", "1764460800000"),
        ("Keepsake-Nonce", String(repeating: "1", count: 32)),
        ("Keepsake-Content-Digest", "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"),
        ("Keepsake-Signature", String(repeating: "A", count: 86) + "=="),
    ].map { "\($0.0): \($0.1)\r\n" }.joined()

    /// Requests that reach each route, well-formed and not, as seeds.
    package static let seeds: [String] = [
        "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/topics/message-00000000000000000000000000000000?after=0&limit=10 HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /v1/topics/message-00000000000000000000000000000000 HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n\n\u{2}\n\u{0}\u{12}\u{0}",
        "POST /v1/topics/contact-\(String(repeating: "a", count: 64)) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "POST /v1/topics/prekey-00000000000000000000000000000000/claim HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "POST /v1/topics/prekey-00000000000000000000000000000000/claim HTTP/1.1\r\nHost: x\r\n\(signatureHeaders)Content-Length: 0\r\n\r\n",
        "GET /v1/topics/prekey-00000000000000000000000000000000 HTTP/1.1\r\nHost: x\r\n\(signatureHeaders)\r\n",
        "GET /v1/topics/commits-00000000000000000000000000000000/events?after=0 HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /v1/backups HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 44\r\n\r\n--b\r\nContent-Disposition: form-data; name=f\r\n\r\n--b--",
        "GET /v1/backups?locator=00 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/backups/\(String(repeating: "0", count: 64)) HTTP/1.1\r\nHost: x\r\n\r\n",
        "TRACE /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /../../etc/passwd HTTP/1.0\r\n\r\n",
    ]
}

/// The port a starting server reports, handed to the thread waiting for it.
private final class BoundPort: @unchecked Sendable {
    // Invariant: `port` is read and written only under `condition`.
    private let condition = NSCondition()
    private var port: Int?

    func set(_ value: Int) {
        condition.lock()
        port = value
        condition.broadcast()
        condition.unlock()
    }

    func wait(seconds: Double) -> Int? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: seconds)
        while port == nil, condition.wait(until: deadline) {}
        return port
    }
}

import Foundation

/// A real PostgreSQL server for tests, from Debian's postgresql package (which
/// `make test` installs): a new cluster in a temporary folder, on a loopback
/// port, trusting local connections as user `keepsake`. Run as the `postgres`
/// user when the tests run as root, as PostgreSQL requires.
public final class PostgresServer: @unchecked Sendable {
    /// One server for a whole test run; tests keep apart by database.
    public static let shared: Result<PostgresServer, any Error> = Result { try PostgresServer() }

    public let port: Int
    private let directory: URL
    private let binaries: URL
    private let user: String?
    private let lock = NSLock()
    private var process: WatchedProcess?

    /// Creates a cluster and starts the server; returns once it accepts connections.
    public init() throws {
        guard let initdb = Self.binaries() else {
            throw CocoaError(.executableNotLoadable, userInfo: [NSLocalizedDescriptionKey:
                "PostgreSQL's initdb was not found: apt-get install postgresql (make test installs it)"])
        }
        binaries = initdb
        user = getuid() == 0 ? "postgres" : nil
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-postgres-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try WatchedProcess.removeWhenTestsEnd(directory)
        if let user { try Self.run(URL(fileURLWithPath: "/bin/chown"), ["-R", user, directory.path], as: nil) }
        port = try FreePorts.take(1)[0]
        try Self.run(binaries.appendingPathComponent("initdb"),
                     ["-D", directory.appendingPathComponent("data").path, "-U", "keepsake", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
                     as: user)
        try start()
    }

    /// A new, empty database; returns its URL (`postgres://keepsake@127.0.0.1:<port>/<name>`).
    public func makeDatabase() throws -> String {
        let name = "keepsake_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16))"
        let deadline = Date().addingTimeInterval(30)
        while true {
            do {
                try Self.run(binaries.appendingPathComponent("createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "keepsake", name], as: nil)
                return "postgres://keepsake@127.0.0.1:\(port)/\(name)"
            } catch where Date() < deadline {
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
    }

    /// Ends the server at once (SIGKILL), as a crash would; it recovers from its log on the next start.
    public func kill() {
        lock.withLock { process?.kill() }
    }

    /// Starts the server again on the same port and data, and waits until it accepts connections.
    public func restart() throws {
        kill()
        try start()
    }

    private func start() throws {
        let log = directory.appendingPathComponent("postgres.log")
        let process = try WatchedProcess(binaries.appendingPathComponent("postgres"), [
            "-D", directory.appendingPathComponent("data").path, "-p", String(port), "-k", directory.path,
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=300",
        ], in: directory, log: log, as: user)
        lock.withLock { self.process = process }
        try process.wait(seconds: 60, describing: "PostgreSQL", log: log) { FreePorts.accepts(port: port) }
    }

    /// The folder of initdb, postgres and createdb: Debian's newest version, or PATH.
    private static func binaries() -> URL? {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        if let newest = versions.compactMap(Int.init).max() {
            return URL(fileURLWithPath: "/usr/lib/postgresql/\(newest)/bin")
        }
        return WatchedProcess.find(["initdb"])?.deletingLastPathComponent()
    }

    /// Runs a command to completion (as `user` when given); throws with its output when it fails.
    private static func run(_ executable: URL, _ arguments: [String], as user: String?) throws {
        let process = Process()
        if let user {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", user, "--", executable.path] + arguments
        } else {
            process.executableURL = executable
            process.arguments = arguments
        }
        process.currentDirectoryURL = FileManager.default.temporaryDirectory
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(executable.lastPathComponent) failed: \(text.prefix(500))"])
        }
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }
}

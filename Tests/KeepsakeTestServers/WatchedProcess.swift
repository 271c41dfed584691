import Foundation
import Synchronization

/// A server process that ends with the test process, however that ends: a
/// watchdog shell starts it, writes its PID to `<directory>/server.pid`, and
/// kills it once the shell's standard input (held open by this object) closes.
final class WatchedProcess: @unchecked Sendable {
    private let shell = Process()
    private let lifeline = Pipe()
    private let pidFile: URL

    /// Starts `executable` with `arguments` in `directory`, its output appended to `log`,
    /// as `user` when given (PostgreSQL refuses to run as root).
    init(_ executable: URL, _ arguments: [String], in directory: URL, log: URL, as user: String? = nil) throws {
        pidFile = directory.appendingPathComponent("server.pid")
        let watchdog = "\"$0\" \"$@\" & echo $! > server.pid; cat > /dev/null; kill -9 $!"
        if let user {
            shell.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            shell.arguments = ["-u", user, "--", "/bin/sh", "-c", watchdog, executable.path] + arguments
        } else {
            shell.executableURL = URL(fileURLWithPath: "/bin/sh")
            shell.arguments = ["-c", watchdog, executable.path] + arguments
        }
        shell.currentDirectoryURL = directory
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let output = try FileHandle(forWritingTo: log)
        try output.seekToEnd()
        shell.standardInput = lifeline
        shell.standardOutput = output
        shell.standardError = output
        try shell.run()
    }

    var isRunning: Bool { shell.isRunning }

    /// Ends the server at once (SIGKILL), as a crash would, and waits for the watchdog.
    func kill() {
        if let text = try? String(contentsOf: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            Foundation.kill(pid, SIGKILL)
        }
        try? lifeline.fileHandleForWriting.close()
        shell.waitUntilExit()
        try? FileManager.default.removeItem(at: pidFile)
    }

    /// Waits until `ready` holds, for up to `seconds`; throws when the server exits or the time passes first.
    func wait(seconds: Double, describing name: String, log: URL, until ready: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !ready() {
            guard shell.isRunning, Date() < deadline else {
                throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(name) did not start; see \(log.path)"])
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// Removes `directory` once this process ends, however it ends (a shell
    /// waits for its standard input, held open until then, to close).
    static func removeWhenTestsEnd(_ directory: URL) throws {
        let janitor = Process()
        janitor.executableURL = URL(fileURLWithPath: "/bin/sh")
        janitor.arguments = ["-c", "cat > /dev/null; sleep 1; rm -rf \"$0\"", directory.path]
        let lifeline = Pipe()
        janitor.standardInput = lifeline
        try janitor.run()
        lifelines.withLock { $0.append(lifeline) }
    }

    private static let lifelines = Mutex<[Pipe]>([])

    /// The first of `names` found executable on PATH, in `extraFolders`, or nil.
    static func find(_ names: [String], extraFolders: [String] = []) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + extraFolders
        for folder in folders {
            for name in names {
                let candidate = URL(fileURLWithPath: folder).appendingPathComponent(name)
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            }
        }
        return nil
    }
}

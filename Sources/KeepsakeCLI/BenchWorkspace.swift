import ArgumentParser
import Foundation
import Synchronization

/// A benchmark's temporary folder and the `keepsake serve` child it loads,
/// cleaned up however the benchmark ends: normally or by an error (`close`),
/// by SIGINT or SIGTERM (handled here), or by SIGKILL or a crash, which no
/// handler sees: the child then finds its standard input closed (the parent
/// held the other end), removes the folder and exits.
final class BenchWorkspace: Sendable {
    let folder: URL
    private let child = Mutex<Process?>(nil)
    /// The child's standard input; this process holds the write end until it ends.
    private let lifeline = Pipe()
    /// Kept alive for the workspace's lifetime; touched only in `init`.
    private nonisolated(unsafe) let signalSources: [any DispatchSourceSignal]

    init(name: String) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-bench-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            sources.append(source)
        }
        signalSources = sources
        for (source, number) in zip(sources, [SIGINT, SIGTERM]) {
            source.setEventHandler { [self] in
                close()
                exit(128 + number)
            }
            source.resume()
        }
    }

    /// Starts `keepsake serve` on a free loopback port with its data in this
    /// folder; returns its URL once it listens.
    func startRelay(_ options: [String] = []) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        process.arguments = ["serve", "--port", "0", "--data", folder.appendingPathComponent("relay").path,
                             "--remove-when-orphaned", folder.path] + options
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = lifeline
        try process.run()
        child.withLock { $0 = process }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw ValidationError("the relay child process did not start") }
            line += chunk
        }
        return String(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("listening on ".count))
    }

    /// Stops the child (if any; SIGTERM, then SIGKILL after five seconds) and
    /// removes the folder. Safe to call more than once, from any thread: a
    /// second call (the signal handler and the failing benchmark both closing)
    /// waits for the first, so the folder is never removed under a live child.
    func close() {
        child.withLock { child in
            if let process = child.take() {
                process.terminate()
                let deadline = Date(timeIntervalSinceNow: 5)
                while process.isRunning && Date() < deadline { usleep(20_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
            }
            try? FileManager.default.removeItem(at: folder)
        }
    }

    /// For the child: when standard input reaches its end (the benchmark that
    /// started this process is gone, however it ended), remove `folder` and exit.
    static func exitWhenOrphaned(removing folder: URL) {
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 64)
            while read(STDIN_FILENO, &buffer, buffer.count) > 0 {}
            try? FileManager.default.removeItem(at: folder)
            exit(0)
        }
    }
}

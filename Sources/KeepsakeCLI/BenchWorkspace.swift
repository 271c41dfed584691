import ArgumentParser
import Foundation
import Synchronization

/// A benchmark's temporary folder and the `keepsake serve` children it loads,
/// cleaned up however the benchmark ends: normally or by an error (`close`),
/// by SIGINT or SIGTERM (handled here), or by SIGKILL or a crash, which no
/// handler sees: the child then finds its standard input closed (the parent
/// held the other end), removes the folder and exits.
final class BenchWorkspace: Sendable {
    let folder: URL
    private let children = Mutex<[Process]>([])
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

    /// Starts `keepsake serve` on a free loopback port with its data in a folder
    /// of its own in this one; returns its URL once it listens.
    func startRelay(_ options: [String] = []) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let data = folder.appendingPathComponent("relay-\(children.withLock(\.count))")
        process.arguments = ["serve", "--port", "0", "--data", data.path, "--remove-when-orphaned", folder.path] + options
        let output = Pipe()
        process.standardOutput = output
        // The handle, not the pipe: Foundation closes a pipe's child end after the first launch.
        process.standardInput = lifeline.fileHandleForReading
        try process.run()
        children.withLock { $0.append(process) }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw ValidationError("the relay child process did not start") }
            line += chunk
        }
        return String(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("listening on ".count))
    }

    /// Stops the children (SIGTERM, then SIGKILL after five seconds) and
    /// removes the folder. Safe to call more than once, from any thread: a
    /// second call (the signal handler and the failing benchmark both closing)
    /// waits for the first, so the folder is never removed under a live child.
    func close() {
        children.withLock { children in
            children.forEach { $0.terminate() }
            let deadline = Date(timeIntervalSinceNow: 5)
            for process in children {
                while process.isRunning && Date() < deadline { usleep(20_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
            }
            children.removeAll()
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

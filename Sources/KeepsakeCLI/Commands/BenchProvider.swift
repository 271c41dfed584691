import ArgumentParser
import AsyncHTTPClient
import Foundation
import Keepsake
import KeepsakeCrypto
import KeepsakeRelayClient
import Synchronization

struct BenchProvider: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provider",
        abstract: "Load the relay's backup provider from this process: concurrent signed uploads, then concurrent downloads, every file's hash checked.",
        discussion: """
        Starts `keepsake serve` as a child process (temporary data folder, rate limit lifted), joins \
        a temporary store to a new account so its installation can sign uploads, and reports upload \
        and download throughput and latency next to the floor of the same run: writing the same \
        files straight to disk (write, fsync, rename), which is what the provider must do at least. \
        Bounded by --files and --time-limit.
        """)

    @Option(help: "Files to upload, then download (1 to 100000).", transform: bounded(1...100_000)) var files = 200
    @Option(help: "Bytes per file (1 to 268435456, 256 MiB).", transform: bounded(1...(1 << 28))) var size = 1 << 20
    @Option(help: "Requests in flight at once (1 to 256).", transform: bounded(1...256)) var concurrency = 8
    @Option(help: "Stop each phase after this many seconds (0.1 to 86400).", transform: boundedSeconds(0.1...86_400)) var timeLimit = 120.0
    @OptionGroup var output: OutputFormat

    func validate() throws {
        let (total, overflow) = files.multipliedReportingOverflow(by: size)
        guard !overflow, total <= 16 << 30 else { throw ValidationError("--files × --size must stay within 16 GiB of test files") }
    }

    func run() async throws {
        let workspace = try BenchWorkspace(name: "provider")
        defer { workspace.close() }
        let url = try workspace.startRelay(["--uploads-per-hour", "100000000", "--max-backup-bytes", String(size + 1)])
        let work = workspace.folder
        for folder in ["sources", "floor", "downloads"] {
            try FileManager.default.createDirectory(at: work.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try await withLoadClient(concurrency: concurrency) { http in
            try await measure(URL(string: url)!, http: http, work: work)
        }
    }

    private func measure(_ base: URL, http: HTTPClient, work: URL) async throws {
        func say(_ line: String) { if !output.json { print(line); flushOutput() } }
        let provider = RelayClient(baseURL: base, client: http)
        let store = try Store.open(at: work.appendingPathComponent("store"), options: .withMessaging())
        try await Messenger(store: store, relay: provider).join(AccountKey.generate())
        let sources = (0..<files).map { work.appendingPathComponent("sources/\($0).ksbak") }
        let digests = try sources.map { file in
            let bytes = Random.bytes(size)
            try Data(bytes).write(to: file)
            return Blake2b.hash(bytes)
        }
        let megabytes = Double(size) / 1_048_576
        say("provider \(base.absoluteString): \(files) files of \(size) bytes, \(concurrency) in flight")

        let floor = try await runLoad(count: files, concurrency: concurrency, limit: timeLimit) { index in
            try Self.writeDurably(Data(contentsOf: sources[index]), to: work.appendingPathComponent("floor/\(index)"))
        }
        say("floor    disk write+fsync+rename  \(floor.summary)  (\(String(format: "%.1f", floor.rate * megabytes)) MB/s)")

        let stored = Mutex<[Int: StoredBackup]>([:])
        let uploads = try await runLoad(count: files, concurrency: concurrency, limit: timeLimit) { index in
            let auth = try store.authenticateRequest(method: "POST", path: "/v1/backups", contentDigest: digests[index])
            let backup = try await provider.uploadBackup(sources[index], to: provider.backupUploadURL, authentication: auth, options: BackupUploadOptions())
            stored.withLock { $0[index] = backup }
        }
        say("upload   POST /v1/backups         \(uploads.summary)  (\(String(format: "%.1f", uploads.rate * megabytes)) MB/s, \(String(format: "%.2f", uploads.rate / floor.rate))x the floor)")

        let uploaded = stored.withLock { $0 }
        let corrupted = Mutex(0)
        let downloads = try await runLoad(count: uploaded.count, concurrency: concurrency, limit: timeLimit) { index in
            guard let backup = uploaded[index] else { return }
            let copy = work.appendingPathComponent("downloads/\(index)")
            try await provider.downloadBackup(from: backup.url, to: copy)
            if try Blake2b.hash(contentsOf: copy) != digests[index] || backup.digest != digests[index] { corrupted.withLock { $0 += 1 } }
            try FileManager.default.removeItem(at: copy)
        }
        let lost = files - uploaded.count, damaged = corrupted.withLock { $0 }
        say("download GET /v1/backups/{id}     \(downloads.summary)  (\(String(format: "%.1f", downloads.rate * megabytes)) MB/s)")
        say("\(uploaded.count) stored, \(lost) lost, \(damaged) corrupted (every hash checked)")

        if output.json {
            printJSON([
                "files": files, "bytes": size, "concurrency": concurrency, "stored": uploaded.count, "lost": lost, "corrupted": damaged,
                "uploadPerSecond": uploads.rate, "uploadMBps": uploads.rate * megabytes, "uploadLatencyMs": uploads.latency.json,
                "downloadPerSecond": downloads.rate, "downloadMBps": downloads.rate * megabytes, "downloadLatencyMs": downloads.latency.json,
                "floorPerSecond": floor.rate, "floorMBps": floor.rate * megabytes,
            ])
        }
        if lost > 0 || damaged > 0 { throw ExitCode(2) }
    }

    /// What the provider does at least for a file: write it, sync it, rename it into place.
    private static func writeDurably(_ data: Data, to file: URL) throws {
        let partial = file.path + ".partial"
        let descriptor = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(descriptor) }
        try data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                guard written > 0 else { throw CocoaError(.fileWriteUnknown) }
                offset += written
            }
        }
        guard fsync(descriptor) == 0, rename(partial, file.path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }
}

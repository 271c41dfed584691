import Foundation
import KeepsakeBenchSupport
import KeepsakeLog
import KeepsakeMessaging
import KeepsakeRelay
import KeepsakeS3
import KeepsakeStore
import KeepsakeWire

/// Every reader of untrusted bytes, as a fuzz target: `make fuzz` runs each
/// under libFuzzer (`keepsake-fuzzer`), and the test suite replays the
/// committed corpus and every crash ever found (`Fuzz/corpus`, `Fuzz/crashes`).
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A backup file's signed header.
    case backupHeader = "backup-header"
    /// A backup chunk's plaintext: encoding byte, then frames, raw or zstd.
    case backupChunk = "backup-chunk"
    /// A whole backup file, verified (signature, key, chunks, trailer).
    case backupFile = "backup-file"
    /// A log record as stored in LMDB.
    case logRecord = "log-record"
    /// An event payload (first byte: its kind).
    case eventPayload = "event-payload"
    /// Wire envelopes and signed wire messages, parsed and verified (first byte: which).
    case wire
    /// Raw bytes of an HTTP request to a relay listening on loopback in this process.
    case relayRequest = "relay-request"
    /// An S3 server's XML answer: object and upload listings, errors, upload IDs.
    case s3Answer = "s3-answer"

    /// Feeds `bytes` to the target's reader; it returns normally whatever the input.
    public func run(_ bytes: [UInt8]) {
        switch self {
        case .backupHeader: FuzzEntryPoints.backupHeader(bytes)
        case .backupChunk: FuzzEntryPoints.backupChunk(bytes)
        case .backupFile: FuzzEntryPoints.backupFile(bytes)
        case .logRecord: LogFuzzEntryPoints.record(bytes)
        case .eventPayload: FuzzEntryPoints.eventPayload(bytes, declared: MessagingExtension().eventKinds)
        case .wire: WireFuzzEntryPoints.run(bytes)
        case .relayRequest: Self.relay?.send(bytes)
        case .s3Answer: S3FuzzEntryPoints.answer(bytes)
        }
    }

    /// The relay the `relay-request` target writes to, started on first use.
    package static let relay = try? RelayFuzzHarness()

    /// Seed inputs for every target, made from real data (a generated history,
    /// its hard backup, a small log, signed wire messages, requests to each route).
    public static func seeds() throws -> [FuzzTarget: [[UInt8]]] {
        var generator = HistoryGenerator(.init(messages: 40, conversations: 4, seed: 5))
        let keepsake = try FuzzEntryPoints.seeds(history: generator.next(batch: 1_000), extensions: [MessagingExtension()])
        let logFolder = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-fuzz-log-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: logFolder) }
        try FileManager.default.createDirectory(at: logFolder, withIntermediateDirectories: true)
        return [
            .backupHeader: keepsake.headers, .backupChunk: keepsake.chunks, .backupFile: keepsake.files,
            .eventPayload: keepsake.payloads, .logRecord: try LogFuzzEntryPoints.seeds(directory: logFolder.path),
            .wire: try WireFuzzEntryPoints.seeds(), .relayRequest: RelayFuzzHarness.seeds.map { Array($0.utf8) },
            .s3Answer: S3FuzzEntryPoints.seeds.map { Array($0.utf8) },
        ]
    }
}

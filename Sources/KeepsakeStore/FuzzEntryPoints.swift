import Foundation
import KeepsakeCrypto
import KeepsakeLog

/// Entry points for the fuzz targets (`Fuzz/`, `make fuzz`): each hands
/// untrusted bytes to one reader of this module, which must answer with an
/// error, never a trap. Package access: not part of the public API.
package enum FuzzEntryPoints {
    /// The raw key the whole-file target verifies with; its seeds are sealed under it.
    package static let backupKey = [UInt8](repeating: 0x4b, count: 32)

    /// A backup header, as `BackupReader` decodes it after the size checks.
    package static func backupHeader(_ bytes: [UInt8]) {
        _ = try? BackupHeader.decode(bytes)
    }

    /// A chunk's plaintext: its encoding byte, then frames (raw or zstd).
    package static func backupChunk(_ bytes: [UInt8]) {
        _ = try? BackupReader.decodeFrames(bytes, index: 0, chunkSize: 1 << 16, compressionAllowed: true, decompressor: ChunkDecompressor())
    }

    /// A whole backup file, verified with `backupKey`: size, header, signature, key, every chunk.
    package static func backupFile(_ bytes: [UInt8]) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-fuzz-\(getpid())-\(UUID().uuidString).ksbak")
        defer { try? FileManager.default.removeItem(at: file) }
        guard (try? Data(bytes).write(to: file)) != nil, let key = try? SecureBytes(copying: backupKey) else { return }
        _ = try? Backup.verify([file], key: .raw(key), sizeLimit: 4 << 20)
    }

    /// An event payload: the first byte is its kind, the rest its bytes. A
    /// payload that decodes is also checked, placed in the log (extensions'
    /// kinds by `declared`) and encoded again.
    package static func eventPayload(_ bytes: [UInt8], declared: [ExtensionEventKind] = []) {
        guard let kind = bytes.first, let payload = try? EventPayload(kind: UInt32(kind), bytes: Array(bytes.dropFirst())) else { return }
        _ = try? EventDraft(payload).recordDraft(declared: ExtensionEventKind.byNumber(declared))
    }

    /// Seed inputs made from a history (a generated one): every event payload,
    /// a hard backup's file, its header, and chunk plaintexts (raw and compressed).
    package static func seeds(history: [EventDraft], extensions: [any StoreExtension]) throws -> (headers: [[UInt8]], chunks: [[UInt8]], files: [[UInt8]], payloads: [[UInt8]]) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-fuzz-seeds-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try Store.open(at: folder.appendingPathComponent("store"), options: StoreOptions(extensions: extensions))
        _ = try store.createInstallation()
        try store.append(contentsOf: history)
        let events = try store.readEvents(after: 0, limit: .max)
        let payloads = events.compactMap { event in event.record.payload.map { [UInt8(event.record.kind)] + $0 } }

        var options = BackupOptions(kind: .hard, key: .raw(try SecureBytes(copying: backupKey)))
        options.chunkSize = 1024
        let file = try store.backup(into: folder, options: options).file
        let fileBytes = [UInt8](try Data(contentsOf: file))
        let headerLength = Int(UInt32(littleEndianAt: 10, in: fileBytes))

        var frames: [UInt8] = []
        for event in events.prefix(12) { BackupFrame.event(event.record.draft).encode(into: &frames) }
        BackupFrame.headEnd.encode(into: &frames)
        BackupFrame.trailer(events: 12).encode(into: &frames)
        let compressed = ChunkCompressor().compress(frames + frames) ?? []
        return (
            headers: [Array(fileBytes.prefix(headerLength))],
            chunks: [[BackupFile.ChunkEncoding.raw.rawValue] + frames, [BackupFile.ChunkEncoding.zstd.rawValue] + compressed],
            files: [fileBytes],
            payloads: payloads)
    }
}

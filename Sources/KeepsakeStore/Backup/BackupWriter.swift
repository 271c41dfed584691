import Foundation
import KeepsakeCrypto
import KeepsakeLog

/// Writes one backup file: the signed header, then frames packed into chunks,
/// each compressed when that pays and sealed with its own nonce.
///
/// The file is written as `<name>.partial` and renamed when complete, so a
/// backup file that exists is whole. Memory holds one chunk at a time. A
/// writer made with `init(estimating:)` writes nothing: it packs and
/// compresses chunks as a real one would, to count the file's bytes.
final class BackupWriter {
    let url: URL
    let header: BackupHeader
    private let partial: URL
    /// -1 when estimating.
    private let descriptor: Int32
    private let associatedData: [UInt8]
    /// Nil when estimating.
    private let fileKey: SecureBytes?
    private let compressor: ChunkCompressor?
    /// Events added, by kind.
    private(set) var eventsByKind: [UInt32: UInt64] = [:]
    private var buffer: [UInt8] = []
    private var chunkIndex = 0
    /// Chunks sealed so far.
    var chunks: Int { chunkIndex }
    private let hash = Blake2b()
    private var finished = false
    private(set) var events: UInt64 = 0
    /// Bytes of frames before compression, and of the file so far.
    private(set) var plaintextBytes = 0
    private(set) var fileBytes = 0

    /// Creates the partial file and writes the header, signed by `signer`.
    init(url: URL, header: BackupHeader, signer: SigningKey, key: SecureBytes) throws(BackupError) {
        self.url = url
        self.header = header
        partial = url.appendingPathExtension("partial")
        let headerBytes = header.encoded(signature: [])
        let signed = header.encoded(signature: signer.sign(headerBytes))
        associatedData = Blake2b.hash(signed)
        do { fileKey = try BackupFile.fileKey(key, salt: header.fileSalt) } catch { throw .store(.crypto("\(error)")) }
        compressor = header.compressed ? ChunkCompressor() : nil
        descriptor = SystemCalls.open(partial.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw BackupError.failed("create", partial.path) }
        buffer.reserveCapacity(Int(header.chunkSize) + 4096)
        try write(signed)
    }

    /// A writer that writes nothing, for an estimate of a file with `header`.
    init(estimating header: BackupHeader) {
        url = URL(fileURLWithPath: "/dev/null")
        self.header = header
        partial = url
        let headerBytes = header.encoded(signature: [UInt8](repeating: 0, count: BackupHeader.signatureSize))
        associatedData = []
        fileKey = nil
        compressor = header.compressed ? ChunkCompressor() : nil
        descriptor = -1
        fileBytes = headerBytes.count
    }

    deinit {
        guard descriptor >= 0 else { return }
        SystemCalls.close(descriptor)
        if !finished { unlink(partial.path) }
    }

    /// Adds a frame, sealing the current chunk first when the frame would overflow it.
    func add(_ frame: BackupFrame) throws(BackupError) {
        let before = buffer.count
        frame.encode(into: &buffer)
        let size = buffer.count - before
        if case let .event(draft) = frame {
            guard size <= BackupFile.maxFrame else { throw .eventTooLarge(draft.id!, bytes: size) }
            events += 1
            eventsByKind[draft.kind, default: 0] += 1
        }
        plaintextBytes += size
        if before > 0 && buffer.count > Int(header.chunkSize) {
            let overflow = Array(buffer[before...])
            buffer.removeLast(size)
            try sealChunk(final: false)
            buffer = overflow
        }
    }

    /// Seals the frames added so far as a chunk of their own (the head, so a restore can show it before reading on).
    func endChunk() throws(BackupError) {
        guard !buffer.isEmpty else { return }
        try sealChunk(final: false)
    }

    /// Writes the trailer and the final chunk, syncs, and moves the file into place.
    /// Returns the BLAKE2b-256 of the whole file (what an incremental backup names as its base).
    func finish() throws(BackupError) -> [UInt8] {
        try add(.trailer(events: events))
        try sealChunk(final: true)
        guard descriptor >= 0 else { return [] }
        guard fsync(descriptor) == 0 else { throw BackupError.failed("sync", partial.path) }
        guard rename(partial.path, url.path) == 0 else { throw BackupError.failed("rename", url.path) }
        finished = true
        let directory = SystemCalls.open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            SystemCalls.close(directory)
        }
        return hash.finalize()
    }

    private func sealChunk(final: Bool) throws(BackupError) {
        var plaintext: [UInt8]
        if let compressed = compressor?.compress(buffer) {
            plaintext = [BackupFile.ChunkEncoding.zstd.rawValue] + compressed
        } else {
            plaintext = [BackupFile.ChunkEncoding.raw.rawValue] + buffer
        }
        defer { chunkIndex += 1 }
        guard let fileKey else {
            fileBytes += 4 + plaintext.count + NoncedAEAD.tagBytes
            buffer.removeAll(keepingCapacity: true)
            return
        }
        var sealed: [UInt8] = []
        sealed.reserveCapacity(4 + plaintext.count + NoncedAEAD.tagBytes)
        sealed.appendLE(UInt32(plaintext.count + NoncedAEAD.tagBytes))
        do {
            try plaintext.withUnsafeBytes { p in
                try NoncedAEAD.seal(
                    p, nonce: BackupFile.nonce(index: chunkIndex, final: final, cipher: header.cipher),
                    associatedData: associatedData, key: fileKey, cipher: header.cipher, into: &sealed)
            }
        } catch {
            throw .store(.crypto("\(error)"))
        }
        plaintext.withUnsafeMutableBytes { secureZero($0) }
        buffer.withUnsafeMutableBytes { secureZero($0) }
        buffer.removeAll(keepingCapacity: true)
        try write(sealed)
    }

    private func write(_ bytes: [UInt8]) throws(BackupError) {
        hash.update(bytes)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { SystemCalls.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BackupError.failed("write", partial.path)
            }
            offset += n
        }
        fileBytes += bytes.count
    }

}

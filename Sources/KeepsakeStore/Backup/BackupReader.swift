import Foundation
import Synchronization
import KeepsakeCrypto
import KeepsakeLog

/// Reads one backup file: checks the size limit, the header and its signature
/// on open (before any decryption), the key on `unlock`, then yields each
/// chunk's frames after authenticating it. Memory holds one chunk at a time.
final class BackupReader {
    let url: URL
    let header: BackupHeader
    let fileSize: Int
    private let descriptor: Int32
    private let associatedData: [UInt8]
    /// Set by `unlock`: what decrypts chunks, shareable across threads.
    private var opener: ChunkOpener?
    private var offset: Int
    /// Bytes of the file read so far (header and chunks).
    var bytesRead: Int { offset }
    private(set) var chunkIndex = 0
    private var finished = false
    private let hash = Blake2b()
    private let decompressor = ChunkDecompressor()
    private(set) var events: UInt64 = 0
    /// When set, every chunk `nextChunk` decodes is checked against these rules into `tally`.
    var rules: BackupContentRules?
    private(set) var tally = ContentTally()

    /// Opens `url` and verifies its header. `sizeLimit` is checked first; nil means no limit.
    init(url: URL, sizeLimit: Int? = nil) throws(BackupError) {
        self.url = url
        let descriptor = SystemCalls.open(url.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw BackupError.failed("open", url.path) }
        let opened: (size: Int, header: BackupHeader, bytes: [UInt8])
        do {
            opened = try Self.readHeader(descriptor, path: url.path, sizeLimit: sizeLimit)
        } catch {
            SystemCalls.close(descriptor)
            throw error
        }
        // From here the object is whole, and its deinit closes the descriptor.
        self.descriptor = descriptor
        fileSize = opened.size
        header = opened.header
        associatedData = Blake2b.hash(opened.bytes)
        hash.update(opened.bytes)
        offset = opened.bytes.count
    }

    /// Checks the size limit, then reads and checks the header and its signature.
    private static func readHeader(_ descriptor: Int32, path: String, sizeLimit: Int?) throws(BackupError) -> (size: Int, header: BackupHeader, bytes: [UInt8]) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw BackupError.failed("stat", path) }
        let fileSize = Int(info.st_size)
        if let sizeLimit, fileSize > sizeLimit { throw .tooLarge(bytes: fileSize, limit: sizeLimit) }

        guard let prefix = read(descriptor, at: 0, count: 14) else { throw .notABackup }
        guard Array(prefix[0..<8]) == BackupHeader.magic else { throw .notABackup }
        let version = UInt16(littleEndianAt: 8, in: prefix)
        guard BackupHeader.readableVersions.contains(version) else {
            throw .unsupportedVersion(found: version, supported: BackupHeader.formatVersion)
        }
        let length = Int(UInt32(littleEndianAt: 10, in: prefix))
        guard length <= BackupHeader.maxSize else { throw .corruptHeader("the header claims \(length) bytes") }
        guard length <= fileSize, let headerBytes = read(descriptor, at: 0, count: length) else { throw .truncatedHeader }
        let (header, signature) = try BackupHeader.decode(headerBytes)
        guard SigningKey.verify(signature: signature, of: Array(headerBytes.dropLast(BackupHeader.signatureSize)), publicKey: header.signer) else {
            throw .badSignature
        }
        guard header.cipher.isAvailable else { throw .cipherUnavailable(header.cipher.description) }
        return (fileSize, header, headerBytes)
    }

    deinit { SystemCalls.close(descriptor) }

    /// Checks `key` against the header (a wrong key is told apart from a corrupt file) and keeps the file key.
    func unlock(_ key: BackupKey) throws(BackupError) {
        let backupKey = try key.key(for: header)
        do {
            opener = ChunkOpener(
                descriptor: descriptor, fileSize: fileSize, key: try BackupFile.fileKey(backupKey, salt: header.fileSalt),
                cipher: header.cipher, associatedData: associatedData)
        } catch {
            throw .store(.crypto("\(error)"))
        }
    }

    /// The frames of the next chunk (without the trailer), or nil after the final
    /// chunk. Throws when the chunk is missing, altered, reordered or malformed.
    func nextChunk() throws(BackupError) -> [BackupFrame]? {
        guard !finished else { return nil }
        guard let opener else { preconditionFailure("unlock the reader first") }
        let index = chunkIndex
        let chunk = try opener.locate(index, at: offset)
        let plaintext = try opener.open(chunk)
        hash.update(chunk.lengthBytes)
        hash.update(chunk.sealed)
        offset = chunk.end
        chunkIndex += 1
        var frames = try decodeFrames(plaintext, index: index)
        if let rules {
            try rules.check(frames, chunk: index, final: chunk.final, into: &tally)
            if chunk.final { try rules.finish(tally, lastChunk: index) }
        }
        events += UInt64(frames.count { if case .event = $0 { true } else { false } })
        let trailers = frames.count { if case .trailer = $0 { true } else { false } }
        if chunk.final {
            guard trailers == 1, case let .trailer(total)? = frames.last else {
                throw .corruptChunk(index: index, reason: "the final chunk does not end with the trailer")
            }
            guard total == events else {
                throw .corruptChunk(index: index, reason: "the trailer counts \(total) events, the file holds \(events)")
            }
            frames.removeLast()
            finished = true
        } else if trailers > 0 {
            throw .corruptChunk(index: index, reason: "a trailer before the final chunk")
        }
        return frames
    }

    /// Authenticates and decodes every chunk, on all cores, and checks them
    /// against `rules`, without hashing or moving the reader; returns the
    /// number of chunks and events. The error reported is the one in the
    /// earliest chunk.
    func verifyAll(rules: BackupContentRules, stoppingWhen shouldStop: @Sendable () -> Bool = { false }) throws(BackupError) -> (chunks: Int, events: UInt64) {
        guard let opener else { preconditionFailure("unlock the reader first") }
        var located: [(index: Int, offset: Int, final: Bool)] = []
        var position = offset
        var index = chunkIndex
        while true {
            let chunk = try opener.locate(index, at: position, reading: false)
            located.append((index, position, chunk.final))
            if chunk.final { break }
            position = chunk.end
            index += 1
        }
        let failures = Mutex<[Int: BackupError]>([:])
        let tallies = Mutex<[ContentTally]>([])
        let chunks = located
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, chunks.count))
        let chunkSize = Int(header.chunkSize), compressed = header.compressed
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let decompressor = ChunkDecompressor()
            var tally = ContentTally()
            defer { tallies.withLock { $0.append(tally) } }
            for (index, position, final) in stride(from: worker, to: chunks.count, by: workers).map({ chunks[$0] }) {
                guard !shouldStop() else {
                    failures.withLock { $0[index] = .cancelled }
                    return
                }
                do throws(BackupError) {
                    let plaintext = try opener.open(try opener.locate(index, at: position))
                    let frames = try Self.decodeFrames(
                        plaintext, index: index, chunkSize: chunkSize, compressionAllowed: compressed, decompressor: decompressor)
                    try rules.check(frames, chunk: index, final: final, into: &tally)
                } catch {
                    failures.withLock { $0[index] = error }
                    return
                }
            }
        }
        if let first = failures.withLock({ $0.min { $0.key < $1.key } }) { throw first.value }
        var whole = ContentTally()
        for tally in tallies.withLock({ $0 }) { try whole.merge(tally) }
        try rules.finish(whole, lastChunk: chunks.count - 1)
        return (chunks.count, whole.events)
    }

    /// BLAKE2b-256 of the header: identifies the file (every chunk is bound to it).
    var headerHash: [UInt8] { associatedData }

    /// BLAKE2b-256 of the whole file, once every chunk has been read.
    func fileHash() -> [UInt8] {
        precondition(finished, "read every chunk first")
        return hash.finalize()
    }

    private func decodeFrames(_ plaintext: [UInt8], index: Int) throws(BackupError) -> [BackupFrame] {
        try Self.decodeFrames(
            plaintext, index: index, chunkSize: Int(header.chunkSize), compressionAllowed: header.compressed, decompressor: decompressor)
    }

    /// The frames of chunk `index`'s plaintext: its encoding byte, then the frames,
    /// raw or (when the header allows it) zstd-compressed.
    static func decodeFrames(
        _ plaintext: [UInt8], index: Int, chunkSize: Int, compressionAllowed: Bool, decompressor: ChunkDecompressor
    ) throws(BackupError) -> [BackupFrame] {
        let limit = chunkSize + BackupFile.maxFrame
        switch plaintext.first.flatMap(BackupFile.ChunkEncoding.init(rawValue:)) {
        case .raw?:
            return try BackupFrame.decodeAll(Array(plaintext.dropFirst()), chunk: index)
        case .zstd?:
            guard compressionAllowed else {
                throw .invalidContent(chunk: index, reason: "it is compressed, but the header says chunks are never compressed")
            }
            guard let frames = decompressor.decompress(plaintext.dropFirst(), limit: limit) else {
                throw .corruptChunk(index: index, reason: "its compressed data does not decompress")
            }
            return try BackupFrame.decodeAll(frames, chunk: index)
        case nil:
            throw .corruptChunk(index: index, reason: "unknown chunk encoding")
        }
    }

    /// Exactly `count` bytes at `offset`, or nil when the file ends first.
    static func read(_ descriptor: Int32, at offset: Int, count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        return out
    }
}

/// Finds and decrypts a file's chunks. Immutable, so threads can share it.
struct ChunkOpener: @unchecked Sendable {
    // Invariant: `key` is never written after creation; `descriptor` is only read with pread.
    let descriptor: Int32
    let fileSize: Int
    let key: SecureBytes
    let cipher: NoncedAEAD.Cipher
    let associatedData: [UInt8]

    /// A chunk's place in the file and, when read, its bytes.
    struct Chunk {
        let index: Int
        let lengthBytes: [UInt8]
        let sealed: [UInt8]
        let end: Int
        let final: Bool
    }

    /// Finds chunk `index` at `start`, checking its length against the file;
    /// reads its sealed bytes unless `reading` is false.
    func locate(_ index: Int, at start: Int, reading: Bool = true) throws(BackupError) -> Chunk {
        guard start < fileSize, let lengthBytes = BackupReader.read(descriptor, at: start, count: 4) else {
            throw .truncated(afterChunk: index - 1)
        }
        let length = Int(UInt32(littleEndianAt: 0, in: lengthBytes))
        guard length > NoncedAEAD.tagBytes, length <= BackupFile.maxSealedChunk else {
            throw .corruptChunk(index: index, reason: "its length \(length) is out of range")
        }
        let end = start + 4 + length
        guard end <= fileSize else { throw .truncated(afterChunk: index - 1) }
        var sealed: [UInt8] = []
        if reading {
            guard let bytes = BackupReader.read(descriptor, at: start + 4, count: length) else { throw .truncated(afterChunk: index - 1) }
            sealed = bytes
        }
        return Chunk(index: index, lengthBytes: lengthBytes, sealed: sealed, end: end, final: end == fileSize)
    }

    /// Decrypts and authenticates a chunk; the last chunk of the file must carry the final flag.
    func open(_ chunk: Chunk) throws(BackupError) -> [UInt8] {
        do {
            return try open(chunk.sealed, index: chunk.index, final: chunk.final)
        } catch CryptoError.authenticationFailed where chunk.final {
            // Sealed as a middle chunk but nothing follows: the file was cut after it.
            if (try? open(chunk.sealed, index: chunk.index, final: false)) != nil {
                throw .truncated(afterChunk: chunk.index)
            }
            throw .corruptChunk(index: chunk.index, reason: "it does not authenticate")
        } catch CryptoError.authenticationFailed {
            throw .corruptChunk(index: chunk.index, reason: "it does not authenticate")
        } catch {
            throw .store(.crypto("\(error)"))
        }
    }

    private func open(_ sealed: [UInt8], index: Int, final: Bool) throws -> [UInt8] {
        try sealed.withUnsafeBytes { s in
            try NoncedAEAD.open(
                s, nonce: BackupFile.nonce(index: index, final: final, cipher: cipher),
                associatedData: associatedData, key: key, cipher: cipher)
        }
    }
}

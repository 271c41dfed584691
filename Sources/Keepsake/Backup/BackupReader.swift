import Foundation
import Glibc
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
    private var fileKey: SecureBytes?
    private var offset: Int
    private(set) var chunkIndex = 0
    private var finished = false
    private let hash = Blake2b()
    private let decompressor = ChunkDecompressor()
    private(set) var events: UInt64 = 0

    /// Opens `url` and verifies its header. `sizeLimit` is checked first; nil means no limit.
    init(url: URL, sizeLimit: Int? = nil) throws(BackupError) {
        self.url = url
        descriptor = Glibc.open(url.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw BackupWriter.ioError("open", url.path) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw BackupWriter.ioError("stat", url.path) }
        fileSize = Int(info.st_size)
        if let sizeLimit, fileSize > sizeLimit { throw .tooLarge(bytes: fileSize, limit: sizeLimit) }

        guard let prefix = Self.read(descriptor, at: 0, count: 14) else { throw .notABackup }
        guard Array(prefix[0..<8]) == BackupHeader.magic else { throw .notABackup }
        var cursor = ByteCursor(prefix, offset: 8)
        let version = cursor.u16()!
        guard version == BackupHeader.formatVersion else {
            throw .unsupportedVersion(found: version, supported: BackupHeader.formatVersion)
        }
        let length = Int(cursor.u32()!)
        guard length <= BackupHeader.maxSize else { throw .corruptHeader("the header claims \(length) bytes") }
        guard length <= fileSize, let headerBytes = Self.read(descriptor, at: 0, count: length) else { throw .truncatedHeader }
        let (header, signature) = try BackupHeader.decode(headerBytes)
        guard SigningKey.verify(signature: signature, of: Array(headerBytes.dropLast(BackupHeader.signatureSize)), publicKey: header.signer) else {
            throw .badSignature
        }
        guard header.cipher.isAvailable else { throw .cipherUnavailable(header.cipher.description) }
        self.header = header
        associatedData = Blake2b.hash(headerBytes)
        hash.update(headerBytes)
        offset = length
    }

    deinit { Glibc.close(descriptor) }

    /// Checks `key` against the header (a wrong key is told apart from a corrupt file) and keeps the file key.
    func unlock(_ key: BackupKey) throws(BackupError) {
        let backupKey = try key.key(for: header)
        do { fileKey = try BackupFile.fileKey(backupKey, salt: header.fileSalt) } catch { throw .store(.crypto("\(error)")) }
    }

    /// The frames of the next chunk (without the trailer), or nil after the final
    /// chunk. Throws when the chunk is missing, altered, reordered or malformed.
    /// With `decode` false the chunk is only authenticated and no frames are returned.
    func nextChunk(decode: Bool = true) throws(BackupError) -> [BackupFrame]? {
        guard !finished else { return nil }
        guard let fileKey else { preconditionFailure("unlock the reader first") }
        let index = chunkIndex
        guard offset < fileSize else { throw .truncated(afterChunk: index - 1) }
        guard let lengthBytes = Self.read(descriptor, at: offset, count: 4) else { throw .truncated(afterChunk: index - 1) }
        var lengthCursor = ByteCursor(lengthBytes)
        let length = Int(lengthCursor.u32()!)
        guard length > NoncedAEAD.tagBytes, length <= BackupFile.maxSealedChunk else {
            throw .corruptChunk(index: index, reason: "its length \(length) is out of range")
        }
        guard offset + 4 + length <= fileSize, let sealed = Self.read(descriptor, at: offset + 4, count: length) else {
            throw .truncated(afterChunk: index - 1)
        }
        let final = offset + 4 + length == fileSize
        let plaintext: [UInt8]
        do {
            plaintext = try open(sealed, index: index, final: final, key: fileKey)
        } catch CryptoError.authenticationFailed where final {
            // Sealed as a middle chunk but nothing follows: the file was cut after it.
            if (try? open(sealed, index: index, final: false, key: fileKey)) != nil { throw .truncated(afterChunk: index) }
            throw .corruptChunk(index: index, reason: "it does not authenticate")
        } catch CryptoError.authenticationFailed {
            throw .corruptChunk(index: index, reason: "it does not authenticate")
        } catch {
            throw .store(.crypto("\(error)"))
        }
        hash.update(lengthBytes)
        hash.update(sealed)
        offset += 4 + length
        chunkIndex += 1
        guard decode else {
            finished = final
            return []
        }
        var frames = try decodeFrames(plaintext, index: index)
        events += UInt64(frames.count { if case .event = $0 { true } else { false } })
        let trailers = frames.count { if case .trailer = $0 { true } else { false } }
        if final {
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

    /// BLAKE2b-256 of the whole file, once every chunk has been read.
    func fileHash() -> [UInt8] {
        precondition(finished, "read every chunk first")
        return hash.finalize()
    }

    private func open(_ sealed: [UInt8], index: Int, final: Bool, key: SecureBytes) throws -> [UInt8] {
        try sealed.withUnsafeBytes { s in
            try NoncedAEAD.open(
                s, nonce: BackupFile.nonce(index: index, final: final, cipher: header.cipher),
                associatedData: associatedData, key: key, cipher: header.cipher)
        }
    }

    private func decodeFrames(_ plaintext: [UInt8], index: Int) throws(BackupError) -> [BackupFrame] {
        let limit = Int(header.chunkSize) + BackupFile.maxFrame
        switch plaintext.first.flatMap(BackupFile.ChunkEncoding.init(rawValue:)) {
        case .raw?:
            return try BackupFrame.decodeAll(Array(plaintext.dropFirst()), chunk: index)
        case .zstd?:
            guard let frames = decompressor.decompress(plaintext.dropFirst(), limit: limit) else {
                throw .corruptChunk(index: index, reason: "its compressed data does not decompress")
            }
            return try BackupFrame.decodeAll(frames, chunk: index)
        case nil:
            throw .corruptChunk(index: index, reason: "unknown chunk encoding")
        }
    }

    /// Exactly `count` bytes at `offset`, or nil when the file ends first.
    private static func read(_ descriptor: Int32, at offset: Int, count: Int) -> [UInt8]? {
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

import Foundation
import KeepsakeCrypto
import KeepsakeLog

/// Writes backup files the way a careless or hostile writer holding the right
/// backup key could: any header, signed by any key, and chunks of any frames,
/// compressed or not. The files authenticate; only the format's rules can
/// refuse them. For the tests and the conformance corpus, not for apps.
package struct BackupForgery {
    package var header: BackupHeader
    package var signer: SigningKey
    /// Each chunk's frames (the trailer included where wanted) and whether it is zstd-compressed.
    package var chunks: [(frames: [BackupFrame], compressed: Bool)]

    /// The frames of a real file, chunk by chunk, with the trailer put back at the end.
    package static func frames(of file: URL, key: BackupKey) throws -> [[BackupFrame]] {
        let reader = try BackupReader(url: file)
        try reader.unlock(key)
        var chunks: [[BackupFrame]] = []
        while let frames = try reader.nextChunk() { chunks.append(frames) }
        chunks[chunks.count - 1].append(.trailer(events: reader.events))
        return chunks
    }

    /// A copy of a real file to change: its header and chunks, to be signed by `signer` (a new key by default).
    package init(of file: URL, key: BackupKey, signer: SigningKey? = nil) throws {
        header = try Backup.header(of: file)
        self.signer = try signer ?? SigningKey.generate()
        chunks = try Self.frames(of: file, key: key).map { ($0, false) }
    }

    package func write(to url: URL, key: BackupKey) throws {
        guard case let .raw(secret) = key else { throw BackupError.keyHasNoLocator }
        var header = header
        header.signer = signer.publicKey
        let unsigned = header.encoded(signature: [])
        let headerBytes = header.encoded(signature: signer.sign(unsigned))
        let fileKey = try BackupFile.fileKey(secret, salt: header.fileSalt)
        var bytes = headerBytes
        for (index, chunk) in chunks.enumerated() {
            var plain: [UInt8] = []
            for frame in chunk.frames { frame.encode(into: &plain) }
            let encoded: [UInt8]
            if chunk.compressed, let packed = ChunkCompressor().compress(plain) {
                encoded = [BackupFile.ChunkEncoding.zstd.rawValue] + packed
            } else {
                encoded = [BackupFile.ChunkEncoding.raw.rawValue] + plain
            }
            var sealed: [UInt8] = []
            try encoded.withUnsafeBytes { p in
                try NoncedAEAD.seal(
                    p, nonce: BackupFile.nonce(index: index, final: index == chunks.count - 1, cipher: header.cipher),
                    associatedData: Blake2b.hash(headerBytes), key: fileKey, cipher: header.cipher, into: &sealed)
            }
            bytes.appendLE(UInt32(sealed.count))
            bytes += sealed
        }
        try Data(bytes).write(to: url)
    }
}

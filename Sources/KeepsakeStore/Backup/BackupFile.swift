import CZstd
import Foundation
import KeepsakeCrypto
import KeepsakeLog

/// The parts of the backup file format shared by the writer and the reader:
/// sizes, key derivation, nonces and chunk encodings. docs/BACKUP-FORMAT.md is
/// the byte-level description; keep the two in step.
enum BackupFile {
    /// Largest chunk size a header may name.
    static let maxChunkPlaintext: UInt32 = 16 << 20
    /// Largest frame (one event); a chunk holds at most `chunkSize` plus one frame.
    static let maxFrame = 16 << 20
    /// Largest sealed chunk a reader accepts: the encoding byte, a worst-case
    /// zstd expansion of the largest plaintext, and the tag.
    static let maxSealedChunk = 1 + Int(ZSTD_compressBound(Int(maxChunkPlaintext) + maxFrame)) + NoncedAEAD.tagBytes

    /// How a chunk's plaintext is stored, in the first byte of the decrypted chunk.
    enum ChunkEncoding: UInt8 {
        case raw = 0
        case zstd = 1
    }

    static let fileKeyLabel = "keepsake backup v1 file key"
    static let keyCheckLabel = "keepsake backup v1 key check"

    /// The key that seals this file's chunks: unique per file because of the random salt.
    static func fileKey(_ key: SecureBytes, salt: [UInt8]) throws -> SecureBytes {
        try deriveKey(from: key, label: fileKeyLabel, context: salt)
    }

    /// 16 public bytes that identify the backup key without revealing it.
    static func keyCheck(_ key: SecureBytes) -> [UInt8] {
        key.withUnsafeBytes { k in
            let h = Blake2b(length: 16, key: k)
            h.update(Array(keyCheckLabel.utf8))
            return h.finalize()
        }
    }

    /// Chunk nonce: the chunk's index (u64 LE), then 1 for the final chunk or 0, then zeros.
    static func nonce(index: Int, final: Bool, cipher: NoncedAEAD.Cipher) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: cipher.nonceBytes)
        for i in 0..<8 { nonce[i] = UInt8(truncatingIfNeeded: UInt64(index) >> (8 * i)) }
        nonce[8] = final ? 1 : 0
        return nonce
    }
}

/// One unit of a backup's plaintext stream. Frames never span chunks.
package enum BackupFrame: Equatable, Sendable {
    /// An event with its ID; erased events keep their ID but carry no payload.
    case event(RecordDraft)
    /// The events before this frame are the head: the conversation list and the
    /// newest messages, which a restore makes visible before the rest.
    case headEnd
    /// Last frame of the final chunk: how many event frames the file holds.
    case trailer(events: UInt64)

    static let eventType: UInt8 = 1
    static let headEndType: UInt8 = 2
    static let trailerType: UInt8 = 3

    struct Flags: OptionSet {
        let rawValue: UInt8
        static let erased = Flags(rawValue: 0x01)
        static let sealed = Flags(rawValue: 0x02)
        static let supersedes = Flags(rawValue: 0x04)
        static let erasesSubject = Flags(rawValue: 0x08)
    }

    /// Appends the frame: type (u8), body length (u32 LE), body.
    func encode(into out: inout [UInt8]) {
        switch self {
        case let .event(draft):
            var flags: Flags = []
            if draft.erased { flags.insert(.erased) }
            if draft.sealed { flags.insert(.sealed) }
            var step: UInt64?
            switch draft.effect {
            case .none: break
            case let .supersedes(s): flags.insert(.supersedes); step = s
            case .erasesSubject: flags.insert(.erasesSubject)
            }
            let subject = draft.subject ?? []
            let payload = draft.erased ? [] : draft.payload
            let id = draft.id!
            out.append(Self.eventType)
            out.appendLE(UInt32(16 + 8 + 4 + 8 + 1 + 2 + subject.count + (step == nil ? 0 : 8) + payload.count))
            out.append(contentsOf: id.origin.bytes)
            out.appendLE(id.sequence)
            out.appendLE(draft.kind)
            out.appendLE(draft.time)
            out.append(flags.rawValue)
            out.appendLE(UInt16(subject.count))
            out.append(contentsOf: subject)
            if let step { out.appendLE(step) }
            out.append(contentsOf: payload)
        case .headEnd:
            out.append(Self.headEndType)
            out.appendLE(UInt32(0))
        case let .trailer(events):
            out.append(Self.trailerType)
            out.appendLE(UInt32(8))
            out.appendLE(events)
        }
    }

    /// Splits the plaintext of chunk `chunk` into frames.
    static func decodeAll(_ bytes: [UInt8], chunk: Int) throws(BackupError) -> [BackupFrame] {
        func failure(_ reason: String) -> BackupError { .corruptChunk(index: chunk, reason: reason) }
        var frames: [BackupFrame] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 5 else { throw failure("a frame runs past the end of its chunk") }
            let type = bytes[offset]
            let length = Int(UInt32(littleEndianAt: offset + 1, in: bytes))
            let start = offset + 5
            guard length <= bytes.count - start else { throw failure("a frame runs past the end of its chunk") }
            let body = start..<start + length
            offset = body.upperBound
            switch type {
            case eventType:
                guard let draft = decodeEvent(bytes, body) else { throw failure("an event frame is malformed") }
                frames.append(.event(draft))
            case headEndType:
                guard body.isEmpty else { throw failure("a head-end frame has a body") }
                frames.append(.headEnd)
            case trailerType:
                guard body.count == 8 else { throw failure("the trailer is malformed") }
                frames.append(.trailer(events: UInt64(littleEndianAt: body.lowerBound, in: bytes)))
            default:
                throw failure("unknown frame type \(type)")
            }
        }
        return frames
    }

    /// Decodes an event frame's body, `bytes[body]`; nil when malformed.
    private static func decodeEvent(_ bytes: [UInt8], _ body: Range<Int>) -> RecordDraft? {
        let fixed = 16 + 8 + 4 + 8 + 1 + 2
        guard body.count >= fixed else { return nil }
        let at = body.lowerBound
        guard let origin = LogID(bytes: bytes[at..<at + 16]) else { return nil }
        let sequence = UInt64(littleEndianAt: at + 16, in: bytes)
        let kind = UInt32(littleEndianAt: at + 24, in: bytes)
        let time = Int64(bitPattern: UInt64(littleEndianAt: at + 28, in: bytes))
        let flags = Flags(rawValue: bytes[at + 36])
        let subjectLength = Int(UInt16(littleEndianAt: at + 37, in: bytes))
        var cursor = at + fixed
        guard sequence > 0, flags.rawValue & ~0x0F == 0, !(flags.contains(.supersedes) && flags.contains(.erasesSubject)),
              subjectLength <= body.upperBound - cursor else { return nil }
        let subject = Array(bytes[cursor..<cursor + subjectLength])
        cursor += subjectLength
        var effect = RecordEffect.none
        if flags.contains(.supersedes) {
            guard body.upperBound - cursor >= 8 else { return nil }
            effect = .supersedes(step: UInt64(littleEndianAt: cursor, in: bytes))
            cursor += 8
        } else if flags.contains(.erasesSubject) {
            effect = .erasesSubject
        }
        guard effect == .none || !subject.isEmpty else { return nil }
        guard !flags.contains(.erased) || cursor == body.upperBound else { return nil }
        var draft = RecordDraft(
            id: EventID(origin: origin, sequence: sequence), kind: kind, time: time,
            subject: subject.isEmpty ? nil : subject, effect: effect, sealed: flags.contains(.sealed),
            payload: Array(bytes[cursor..<body.upperBound]))
        draft.erased = flags.contains(.erased)
        return draft
    }
}

extension FixedWidthInteger {
    /// Reads a little-endian integer at `offset`; the caller has checked the bounds.
    init(littleEndianAt offset: Int, in bytes: [UInt8]) {
        self = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: Self.self) }.littleEndian
    }
}

extension RecordDraft: Equatable {
    /// Equal when every stored field is.
    public static func == (a: RecordDraft, b: RecordDraft) -> Bool {
        a.id == b.id && a.kind == b.kind && a.time == b.time && a.subject == b.subject && a.effect == b.effect
            && a.sealed == b.sealed && a.payload == b.payload && a.erased == b.erased
    }
}

/// zstd compression of whole chunks with reused contexts.
final class ChunkCompressor {
    private let context = ZSTD_createCCtx()
    static let level: Int32 = 3

    deinit { ZSTD_freeCCtx(context) }

    /// The compressed bytes, or nil when compression would not make the chunk smaller.
    func compress(_ plaintext: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(plaintext.count))
        let written = out.withUnsafeMutableBytes { o in
            plaintext.withUnsafeBytes { p in ZSTD_compressCCtx(context, o.baseAddress, o.count, p.baseAddress, p.count, Self.level) }
        }
        guard ZSTD_isError(written) == 0, written < plaintext.count else { return nil }
        out.removeLast(out.count - written)
        return out
    }
}

final class ChunkDecompressor {
    private let context = ZSTD_createDCtx()

    deinit { ZSTD_freeDCtx(context) }

    /// The decompressed bytes; nil unless the input is one zstd frame that declares a size within `limit`.
    func decompress(_ compressed: ArraySlice<UInt8>, limit: Int) -> [UInt8]? {
        compressed.withUnsafeBytes { c -> [UInt8]? in
            let size = ZSTD_getFrameContentSize(c.baseAddress, c.count)
            guard size != ZSTD_CONTENTSIZE_UNKNOWN, size != ZSTD_CONTENTSIZE_ERROR, size <= UInt64(limit) else { return nil }
            var out = [UInt8](repeating: 0, count: Int(size))
            let written = out.withUnsafeMutableBytes { o in
                ZSTD_decompressDCtx(context, o.baseAddress, o.count, c.baseAddress, c.count)
            }
            guard ZSTD_isError(written) == 0, written == Int(size) else { return nil }
            return out
        }
    }
}

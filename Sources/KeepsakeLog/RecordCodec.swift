import KeepsakeCrypto

/// The byte layout of a record in the `events` database, version 1.
/// docs/LOG-FORMAT.md describes it field by field; keep the two in step.
enum RecordCodec {
    static let version: UInt8 = 1
    static let headerSize = 48
    /// Bytes [4, 40): kind, origin, origin sequence, time. They never change,
    /// so they authenticate a sealed payload to its event.
    static let associatedDataRange = 4..<40

    struct Flags: OptionSet {
        let rawValue: UInt8
        static let sealed = Flags(rawValue: 0x01)
        static let erased = Flags(rawValue: 0x02)
        static let supersedes = Flags(rawValue: 0x04)
        static let erasesSubject = Flags(rawValue: 0x08)
        /// With `sealed`: the payload is AES-256-GCM, not ChaCha20-Poly1305.
        static let aes256GCM = Flags(rawValue: 0x10)

        /// The cipher a sealed payload was sealed with.
        var cipher: SingleUseAEAD.Cipher { contains(.aes256GCM) ? .aes256GCM : .chaCha20Poly1305 }

        /// The flags that name `cipher` on a sealed record.
        static func sealed(with cipher: SingleUseAEAD.Cipher) -> Flags {
            cipher == .aes256GCM ? [.sealed, .aes256GCM] : .sealed
        }
    }

    /// A decoded record whose payload may still be sealed.
    struct Stored {
        var id: EventID
        var kind: UInt32
        var time: Int64
        var flags: Flags
        var keySlot: UInt64
        var subject: [UInt8]?
        var effect: RecordEffect
        /// Ciphertext when sealed, plaintext otherwise, empty when erased.
        var body: ArraySlice<UInt8>
        /// The original bytes, for computing associated data.
        var header: ArraySlice<UInt8>
    }

    /// The encoded size of a record: what `encode(into:)` needs. A sealed body
    /// (sealed flag, not erased) is the payload and its tag; an erased one is empty.
    static func size(flags: Flags, subject: [UInt8]?, effect: RecordEffect, payloadBytes: Int) -> Int {
        let step = if case .supersedes = effect { 8 } else { 0 }
        let body = flags.contains(.erased) ? 0 : payloadBytes + (flags.contains(.sealed) ? SingleUseAEAD.tagBytes : 0)
        return headerSize + 2 + (subject?.count ?? 0) + step + 4 + body
    }

    /// Encodes a record. With the sealed flag (and not erased), the payload is
    /// sealed under `sealingKey`, a single-use 32-byte key, with the cipher the flags name.
    static func encode(
        id: EventID, kind: UInt32, time: Int64, flags: Flags, keySlot: UInt64, subject: [UInt8]?, effect: RecordEffect,
        payload: [UInt8], sealingKey: UnsafeRawBufferPointer? = nil
    ) throws -> [UInt8] {
        let count = size(flags: flags, subject: subject, effect: effect, payloadBytes: payload.count)
        return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            try encode(id: id, kind: kind, time: time, flags: flags, keySlot: keySlot, subject: subject, effect: effect,
                       payload: payload, sealingKey: sealingKey, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }

    /// Encodes a record into `out`, which holds exactly `size(...)` bytes (a
    /// value reserved in LMDB, so a record is written once, in place).
    static func encode(
        id: EventID, kind: UInt32, time: Int64, flags: Flags, keySlot: UInt64, subject: [UInt8]?, effect: RecordEffect,
        payload: [UInt8], sealingKey: UnsafeRawBufferPointer?, into out: UnsafeMutableRawBufferPointer
    ) throws {
        var flags = flags
        switch effect {
        case .none: break
        case .supersedes: flags.insert(.supersedes)
        case .erasesSubject: flags.insert(.erasesSubject)
        }
        precondition(out.count == size(flags: flags, subject: subject, effect: effect, payloadBytes: payload.count))
        var writer = ByteWriter(out)
        writer.put(version)
        writer.put(flags.rawValue)
        writer.putLE(UInt16(0))
        writer.putLE(kind)
        writer.putBE(id.origin.high)
        writer.putBE(id.origin.low)
        writer.putLE(id.sequence)
        writer.putLE(UInt64(bitPattern: time))
        writer.putLE(keySlot)
        writer.putLE(UInt16(subject?.count ?? 0))
        if let subject { writer.put(subject) }
        if case let .supersedes(step) = effect { writer.putLE(step) }
        if flags.contains(.erased) {
            writer.putLE(UInt32(0))
        } else if flags.contains(.sealed) {
            guard let sealingKey else { throw CryptoError.invalidLength(what: "sealing key", expected: SingleUseAEAD.keyBytes, actual: 0) }
            writer.putLE(UInt32(payload.count + SingleUseAEAD.tagBytes))
            let associatedData = UnsafeRawBufferPointer(rebasing: out[associatedDataRange])
            try payload.withUnsafeBytes { plaintext in
                try SingleUseAEAD.seal(plaintext, associatedData: associatedData, key: sealingKey, cipher: flags.cipher,
                                       into: UnsafeMutableRawBufferPointer(rebasing: out[writer.offset...]))
            }
        } else {
            writer.putLE(UInt32(payload.count))
            writer.put(payload)
        }
    }

    /// Decodes a stored record, or says why the bytes are not a valid version-1 record.
    static func decode(_ bytes: [UInt8]) -> Result<Stored, RecordDecodingFailure> {
        var reader = ByteReader(bytes)
        guard bytes.count >= headerSize else { return .failure(.truncated) }
        let version = reader.u8()
        guard version == Self.version else { return .failure(.unknownVersion(version)) }
        let flags = Flags(rawValue: reader.u8())
        reader.skip(2)
        let kind = reader.u32()
        let origin = LogID(bytes: reader.bytes(16)!)!
        let sequence = reader.u64()
        let time = Int64(bitPattern: reader.u64())
        let slot = reader.u64()
        guard let subjectLength = reader.u16Checked(), let subjectBytes = reader.bytes(Int(subjectLength)) else {
            return .failure(.truncated)
        }
        var effect = RecordEffect.none
        if flags.contains(.supersedes) {
            guard let step = reader.u64Checked() else { return .failure(.truncated) }
            effect = .supersedes(step: step)
        } else if flags.contains(.erasesSubject) {
            effect = .erasesSubject
        }
        guard let length = reader.u32Checked(), let body = reader.bytes(Int(length)), reader.isAtEnd else {
            return .failure(.truncated)
        }
        return .success(Stored(
            id: EventID(origin: origin, sequence: sequence), kind: kind, time: time, flags: flags,
            keySlot: slot, subject: subjectLength == 0 ? nil : Array(subjectBytes), effect: effect,
            body: body, header: bytes[0..<headerSize]))
    }
}

enum RecordDecodingFailure: Error, Equatable {
    case truncated
    case unknownVersion(UInt8)

    var reason: String {
        switch self {
        case .truncated: return "the record is shorter or longer than its fields say"
        case let .unknownVersion(v): return "record format version \(v) is unknown to this Keepsake"
        }
    }
}

/// Little-endian reads from a byte array with bounds checks (the log's records,
/// and within the package the backup format's headers).
package struct ByteReader {
    private let bytes: [UInt8]
    package private(set) var offset = 0

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package var isAtEnd: Bool { offset == bytes.count }

    mutating func skip(_ n: Int) { offset += n }

    /// The next `n` bytes, or nil (reading nothing) when fewer remain.
    package mutating func bytes(_ n: Int) -> ArraySlice<UInt8>? {
        guard n >= 0, offset + n <= bytes.count else { return nil }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    mutating func u8() -> UInt8 { u8Checked() ?? 0 }
    mutating func u32() -> UInt32 { u32Checked() ?? 0 }
    mutating func u64() -> UInt64 { u64Checked() ?? 0 }
    package mutating func u8Checked() -> UInt8? { bytes(1).map { $0.first! } }
    package mutating func u16Checked() -> UInt16? { bytes(2).map { UInt16(littleEndianBytes: $0) } }
    package mutating func u32Checked() -> UInt32? { bytes(4).map { UInt32(littleEndianBytes: $0) } }
    package mutating func u64Checked() -> UInt64? { bytes(8).map { UInt64(littleEndianBytes: $0) } }
}

/// Writes fields one after another into a buffer sized for them in advance.
struct ByteWriter {
    private let buffer: UnsafeMutableRawBufferPointer
    private(set) var offset = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    mutating func put(_ byte: UInt8) {
        buffer[offset] = byte
        offset += 1
    }

    mutating func putLE<T: FixedWidthInteger>(_ value: T) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
    }

    mutating func putBE<T: FixedWidthInteger>(_ value: T) {
        buffer.storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
    }

    mutating func put(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + $0.count]).copyMemory(from: $0) }
        offset += bytes.count
    }
}

extension FixedWidthInteger {
    package init(littleEndianBytes bytes: ArraySlice<UInt8>) {
        var v: Self = 0
        for (i, b) in bytes.enumerated() { v |= Self(b) << (8 * i) }
        self = v
    }

    init(bigEndianBytes bytes: some Collection<UInt8>) {
        var v: Self = 0
        for b in bytes { v = v << 8 | Self(b) }
        self = v
    }

    /// The value's bytes, most significant first: keys in this order sort numerically.
    var bigEndianBytes: [UInt8] {
        (0..<MemoryLayout<Self>.size).reversed().map { UInt8(truncatingIfNeeded: self >> (8 * $0)) }
    }
}

extension Array where Element == UInt8 {
    package mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    package mutating func appendBE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}

import Foundation
import KeepsakeCrypto
import KeepsakeLog

/// A 16-byte identifier of a conversation or a message.
///
/// New identifiers use the UUIDv7 layout (48-bit millisecond time, then random
/// bits), so identifiers made later mostly sort later and index inserts stay
/// near the end of the B-tree. The time inside is never used for decisions.
public struct Identifier<Tag>: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The 16 bytes.
    public let bytes: [UInt8]

    /// Wraps 16 bytes; nil for any other length.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        self.bytes = Array(bytes)
    }

    /// Parses the text form: 32 hexadecimal digits.
    public init?(_ text: some StringProtocol) {
        guard text.utf8.count == 32, let bytes = Hex.decode(text) else { return nil }
        self.bytes = bytes
    }

    /// A new identifier of 16 random bytes that say nothing of when it was made:
    /// for IDs others see (installations, groups), so they cannot learn creation times.
    public static func random() -> Self {
        Self(bytes: Random.bytes(16))!
    }

    /// A new time-ordered random identifier (UUIDv7 layout: the first 48 bits
    /// are the creation time in milliseconds), for IDs that sort by creation
    /// where only their holders see them (messages inside encrypted payloads, backups).
    public static func generate(at date: Date = Date()) -> Self {
        var bytes = Random.bytes(16)
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: millis >> (40 - 8 * i)) }
        bytes[6] = 0x70 | (bytes[6] & 0x0f)
        bytes[8] = 0x80 | (bytes[8] & 0x3f)
        return Self(bytes: bytes)!
    }

    /// The text form: 32 lowercase hexadecimal digits.
    public var description: String { Hex.encode(bytes) }

    /// Orders identifiers by their bytes (mostly by creation time).
    public static func < (a: Self, b: Self) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// Tags `Identifier` as a conversation ID.
public enum ConversationTag {}
/// Tags `Identifier` as a message ID.
public enum MessageTag {}
/// Identifies a conversation.
public typealias ConversationID = Identifier<ConversationTag>
/// Identifies a message, across devices.
public typealias MessageID = Identifier<MessageTag>

extension Identifier: Codable {
    /// Encoded as its text form, 32 hexadecimal digits.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not 32 hexadecimal digits"))
        }
        self = value
    }

    /// Encodes the text form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

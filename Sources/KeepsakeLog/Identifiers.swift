import KeepsakeCrypto

/// The identity of one log: 16 random bytes chosen when a store is created.
/// Events keep the ID of the log they were first written to (their origin) forever.
public struct LogID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// A log ID's size in bytes.
    public static let byteCount = 16
    /// The 16 bytes as two big-endian words, so comparison is byte order.
    @usableFromInline let high: UInt64
    @usableFromInline let low: UInt64

    /// Inlinable so callers get a version specialized to their collection type (this is on hot decoding paths).
    @inlinable
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        var h: UInt64 = 0
        var l: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
        }
        high = h
        low = l
    }

    /// Parses 32 hexadecimal digits.
    public init?(hex: some StringProtocol) {
        guard hex.utf8.count == 32, let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }

    /// A new random log ID.
    public static func random() -> LogID {
        LogID(bytes: Random.bytes(byteCount))!
    }

    /// The 16 bytes.
    public var bytes: [UInt8] {
        (0..<16).map { i in UInt8(truncatingIfNeeded: (i < 8 ? high >> (56 - 8 * i) : low >> (56 - 8 * (i - 8)))) }
    }

    /// 32 lowercase hexadecimal digits.
    public var hex: String { Hex.encode(bytes) }
    /// The hexadecimal form.
    public var description: String { hex }

    /// Orders log IDs by their bytes.
    public static func < (a: LogID, b: LogID) -> Bool { (a.high, a.low) < (b.high, b.low) }
}

/// The stable identity of an event across devices: the log it was first
/// appended to and its sequence number there. Copying an event to another
/// store keeps its ID, which is how merges stay idempotent.
public struct EventID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The log that first wrote the event.
    public let origin: LogID
    /// Its sequence in that log.
    public let sequence: UInt64

    /// The event written `sequence`th in `origin`.
    public init(origin: LogID, sequence: UInt64) {
        self.origin = origin
        self.sequence = sequence
    }

    /// Text form: `<origin hex>:<sequence>`.
    public var description: String { "\(origin.hex):\(sequence)" }

    /// Parses `<origin hex>:<sequence>`; nil for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let origin = LogID(hex: parts[0]), let sequence = UInt64(parts[1]) else { return nil }
        self.init(origin: origin, sequence: sequence)
    }

    /// Orders by origin, then sequence.
    public static func < (a: EventID, b: EventID) -> Bool { (a.origin, a.sequence) < (b.origin, b.sequence) }
}

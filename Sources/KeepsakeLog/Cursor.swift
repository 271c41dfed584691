/// A position in one log: every event with a local sequence <= `sequence` is
/// "before" the cursor. Sequence 0 is the start of the log.
///
/// Text form (stable, safe to paste into the CLI): `c1.<log id hex>.<sequence>`.
public struct Cursor: Hashable, Sendable, CustomStringConvertible {
    /// The log the position is in.
    public let log: LogID
    /// The local sequence of the last event before the position (0: the log's start).
    public let sequence: UInt64

    /// The position after event `sequence` of `log`.
    public init(log: LogID, sequence: UInt64) {
        self.log = log
        self.sequence = sequence
    }

    /// The position before a log's first event.
    public static func start(of log: LogID) -> Cursor { Cursor(log: log, sequence: 0) }

    /// The text form: `c1.<log ID hex>.<sequence>`.
    public var description: String { "c1.\(log.hex).\(sequence)" }

    /// Parses the text form; see `CursorParseError` for what can be wrong.
    public init(parsing text: some StringProtocol) throws(CursorParseError) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed(String(text)) }
        guard parts[0] == "c1" else { throw .unknownVersion(String(parts[0])) }
        guard let log = LogID(hex: parts[1]) else { throw .malformed(String(text)) }
        guard let sequence = UInt64(parts[2]) else { throw .malformed(String(text)) }
        self.init(log: log, sequence: sequence)
    }
}

/// Why a cursor's text form could not be read.
///
/// Not frozen: later releases may add cases, so a `switch` over it needs a
/// `default` branch. `description` always says what happened and what to do.
public enum CursorParseError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case unknownVersion(String)

    /// What is wrong with the text.
    public var description: String {
        switch self {
        case let .malformed(text):
            return "'\(text)' is not a cursor; expected c1.<32 hex digits>.<sequence>, as a store prints its cursor"
        case let .unknownVersion(prefix):
            return "cursor version '\(prefix)' is unknown to this Keepsake; expected 'c1' (upgrade Keepsake to read newer cursors)"
        }
    }
}

/// For each origin log, the highest origin sequence this store holds.
///
/// Vectors, not clocks, decide what is new: an event (origin, seq) is
/// certainly unknown to a store whose vector entry for origin is below seq.
public struct VersionVector: Hashable, Sendable, CustomStringConvertible {
    /// The highest origin sequence held from each origin log.
    public private(set) var entries: [LogID: UInt64]

    /// A vector with these entries.
    public init(_ entries: [LogID: UInt64] = [:]) {
        self.entries = entries.filter { $0.value > 0 }
    }

    /// The highest sequence held from `origin` (0 for none).
    public subscript(origin: LogID) -> UInt64 {
        entries[origin] ?? 0
    }

    /// Raises the entry for `origin` to at least `sequence`.
    public mutating func advance(_ origin: LogID, to sequence: UInt64) {
        if sequence > self[origin] { entries[origin] = sequence }
    }

    /// True when this vector is at or above `other` for every origin.
    public func covers(_ other: VersionVector) -> Bool {
        other.entries.allSatisfy { self[$0.key] >= $0.value }
    }

    /// Stable text form: `{<origin hex>:<sequence>,...}` in origin order.
    public var description: String {
        "{" + entries.sorted { $0.key < $1.key }.map { "\($0.key.hex):\($0.value)" }.joined(separator: ",") + "}"
    }
}

/// What an event does to other events in the log, beyond being stored.
public enum RecordEffect: Sendable, Hashable {
    /// Nothing: the common case.
    case none
    /// The event is step `step` of secret stream `stream` (a session's ratchet
    /// state). It erases the stream's previous step; if the stream already has a
    /// step >= `step`, this event is stored already erased, so a stream never rolls back.
    case supersedes(stream: [UInt8], step: UInt64)
    /// The event erases the listed events (a message deletion erases the
    /// message's content). Targets that have not arrived yet are erased on arrival.
    case erases([EventID])
}

/// An event to append, as the log sees it: a kind number, an opaque payload, and
/// the log-level rules that apply to it.
public struct RecordDraft: Sendable {
    /// nil for a new event of this log; the original ID for an event copied from
    /// another log (restore, sync). Appending an ID the log holds is a no-op.
    public var id: EventID?
    public var kind: UInt32
    /// Wall-clock time in milliseconds since 1970, informational only.
    public var time: Int64
    public var effect: RecordEffect
    /// Seal the payload under a single-use key that erasure destroys.
    public var sealed: Bool
    public var payload: [UInt8]

    public init(id: EventID? = nil, kind: UInt32, time: Int64, effect: RecordEffect = .none, sealed: Bool = false, payload: [UInt8]) {
        self.id = id
        self.kind = kind
        self.time = time
        self.effect = effect
        self.sealed = sealed
        self.payload = payload
    }
}

/// An event as stored in this log.
public struct LogRecord: Sendable, Hashable {
    /// Position in this log, starting at 1.
    public let sequence: UInt64
    public let id: EventID
    public let kind: UInt32
    public let time: Int64
    public let effect: RecordEffect
    /// Whether the payload is sealed at rest (and so can be erased beyond recovery).
    public let sealed: Bool
    /// The payload bytes, or nil when the event has been erased.
    public let payload: [UInt8]?

    public var isErased: Bool { payload == nil }

    /// The same event without its payload, as erasure leaves it.
    func erased() -> LogRecord {
        LogRecord(sequence: sequence, id: id, kind: kind, time: time, effect: effect, sealed: sealed, payload: nil)
    }

    /// This event as a draft that another log can append (keeps its ID).
    public var draft: RecordDraft? {
        guard let payload else { return nil }
        return RecordDraft(id: id, kind: kind, time: time, effect: effect, sealed: sealed, payload: payload)
    }
}

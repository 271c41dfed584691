/// What an event does to the other events of its subject, beyond being stored.
///
/// A subject is an opaque key the appender chooses: a message ID for a
/// message's content, edits and deletion; a session ID for ratchet steps.
public enum RecordEffect: Sendable, Hashable {
    /// Nothing: the event is one more event of its subject.
    case none
    /// The event is step `step` of its subject's secret state (a session's
    /// ratchet). It erases the subject's previous step; if the subject already
    /// has a step >= `step`, this event is stored already erased, so a state
    /// never rolls back.
    case supersedes(step: UInt64)
    /// The event erases every event of its subject, including ones that arrive
    /// later (a message deletion that reaches a device before the message).
    case erasesSubject
}

/// An event to append, as the log sees it: a kind number, an opaque payload, and
/// the log-level rules that apply to it.
public struct RecordDraft: Sendable {
    /// nil for a new event of this log; the original ID for an event copied from
    /// another log (restore, sync). Appending an ID the log holds is a no-op.
    public var id: EventID?
    /// The event kind number.
    public var kind: UInt32
    /// Wall-clock time in milliseconds since 1970, informational only.
    public var time: Int64
    /// The key that effects act on; required when `effect` is not `.none`.
    public var subject: [UInt8]?
    /// What the record does to its subject.
    public var effect: RecordEffect
    /// Seal the payload under a single-use key that erasure destroys.
    public var sealed: Bool
    /// The payload bytes (sealed when `sealed`).
    public var payload: [UInt8]
    /// The event arrives already erased (a copy of an event whose content its
    /// origin destroyed): it keeps its ID and place but has no payload and no effect.
    public var erased = false

    /// A record to append.
    public init(
        id: EventID? = nil, kind: UInt32, time: Int64, subject: [UInt8]? = nil,
        effect: RecordEffect = .none, sealed: Bool = false, payload: [UInt8]
    ) {
        self.id = id
        self.kind = kind
        self.time = time
        self.subject = subject
        self.effect = effect
        self.sealed = sealed
        self.payload = payload
    }
}

/// An event as stored in this log.
public struct LogRecord: Sendable, Hashable {
    /// Position in this log, starting at 1.
    public let sequence: UInt64
    /// The event's identity.
    public let id: EventID
    /// The event kind number.
    public let kind: UInt32
    /// Milliseconds since 1970, by the writer's clock.
    public let time: Int64
    /// What the record is about (a message, a session...), if anything.
    public let subject: [UInt8]?
    /// What it did to its subject.
    public let effect: RecordEffect
    /// Whether the payload is sealed at rest (and so can be erased beyond recovery).
    public let sealed: Bool
    /// The payload bytes, or nil when the event has been erased.
    public let payload: [UInt8]?

    /// True when the payload was erased.
    public var isErased: Bool { payload == nil }

    /// The record a draft becomes when stored at `sequence` (erased: without payload).
    public init(sequence: UInt64, id: EventID, draft: RecordDraft, erased: Bool) {
        self.init(sequence: sequence, id: id, kind: draft.kind, time: draft.time, subject: draft.subject,
                  effect: draft.effect, sealed: draft.sealed, payload: erased ? nil : draft.payload)
    }

    init(sequence: UInt64, id: EventID, kind: UInt32, time: Int64, subject: [UInt8]?, effect: RecordEffect, sealed: Bool, payload: [UInt8]?) {
        self.sequence = sequence
        self.id = id
        self.kind = kind
        self.time = time
        self.subject = subject
        self.effect = effect
        self.sealed = sealed
        self.payload = payload
    }

    /// This event as a draft that another log can append (keeps its ID); an
    /// erased event becomes an erased draft.
    public var draft: RecordDraft {
        var draft = RecordDraft(id: id, kind: kind, time: time, subject: subject, effect: effect, sealed: sealed, payload: payload ?? [])
        draft.erased = payload == nil
        return draft
    }
}

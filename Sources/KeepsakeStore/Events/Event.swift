import Foundation
import KeepsakeLog

/// One event of a store's log.
public struct Event: Sendable, Equatable {
    /// Position in this store's log.
    public let sequence: UInt64
    /// The event's identity across devices (origin log and origin sequence).
    public let id: EventID
    /// When the event was first written, by its writer's clock. Informational only.
    public let time: Date
    /// What the event says, as the log stores it.
    package let payload: EventPayload
    /// What the event says (secrets and extensions' events by kind only).
    public var content: EventContent { EventContent(payload) }
    /// The event's kind, known or not.
    public var kind: EventKind { EventKind(rawValue: record.kind) }
    /// The record as stored, kept so the event can be copied to another store unchanged.
    let record: LogRecord

    /// An event whose payload the caller already decoded from `record`.
    init(record: LogRecord, payload: EventPayload) {
        self.sequence = record.sequence
        self.id = record.id
        self.time = Date(timeIntervalSince1970: Double(record.time) / 1000)
        self.record = record
        self.payload = payload
    }

    init(record: LogRecord) throws(KeepsakeError) {
        self.sequence = record.sequence
        self.id = record.id
        self.time = Date(timeIntervalSince1970: Double(record.time) / 1000)
        self.record = record
        if let bytes = record.payload {
            do {
                payload = try EventPayload(kind: record.kind, bytes: bytes)
            } catch {
                throw .corruptEventPayload(id: record.id, kind: record.kind)
            }
        } else {
            payload = .erased(kind: record.kind)
        }
    }
}

/// A new event to append: what it says and when it happened (informational).
public struct EventDraft: Sendable {
    package var payload: EventPayload
    /// When it happened, by the writer's clock (informational).
    public var time: Date

    /// `.opaque` and `.erased` content cannot be appended: the append throws `notAppendable`.
    public init(_ content: EventContent, at time: Date = Date()) {
        self.init(EventPayload(content) ?? .erased(kind: content.kind.rawValue), at: time)
    }

    package init(_ payload: EventPayload, at time: Date = Date()) {
        self.payload = payload
        self.time = time
    }

    /// What the draft says.
    public var content: EventContent { EventContent(payload) }

    /// A read event that names its message but not the message's sent time.
    var isUnplacedReadMarker: Bool {
        if case let .conversationRead(r) = payload { !r.hasUpToSentAtMs } else { false }
    }

    /// The event as the log stores it: kind, serialized payload, subject, effect
    /// and sealing. Kinds the store does not define are placed by their
    /// declaration in `declared`, and refused without one.
    package func recordDraft(declared: [UInt32: ExtensionEventKind] = [:]) throws(KeepsakeError) -> RecordDraft {
        let placement: EventPlacement
        let bytes: [UInt8]
        switch payload {
        case .erased:
            throw .notAppendable(kindName: payload.kindName)
        case let .unknown(kind, payloadBytes):
            guard let declaration = declared[kind] else { throw .undeclaredKind(kind) }
            guard let placed = declaration.placement(payloadBytes) else { throw .corruptEventPayload(id: nil, kind: kind) }
            (placement, bytes) = (placed, payloadBytes)
        default:
            try payload.validate(id: nil)
            placement = EventPlacement(payload)
            do { bytes = try payload.serialized() } catch { throw .corruptEventPayload(id: nil, kind: payload.kind) }
        }
        return RecordDraft(kind: payload.kind, time: time.millis, subject: placement.subject,
                           effect: placement.recordEffect, sealed: placement.sealed, payload: bytes)
    }
}

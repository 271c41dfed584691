import Foundation
import KeepsakeCrypto
import KeepsakeLog
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

// Messaging's device-local bookkeeping: one table per kind of record, beside
// the log, never copied to another store or into a backup.

/// An envelope waiting for the relay to accept it, keyed `<topic>.<digest>`.
struct OutboxEntry: Codable, Sendable {
    let topic: String
    let envelope: [UInt8]
}

/// Which message an envelope this store sent carried, and for whom, keyed by
/// the envelope's digest: a recipient that could not decrypt it can ask again.
struct SentEnvelope: Codable, Sendable {
    let message: MessageID
    let recipient: InstallationID
}

/// An envelope that cannot apply yet, keyed by its inbox cursor.
struct DeferredEnvelope: Codable, Sendable {
    /// When the relay received it (nil when it did not say).
    let receivedAt: Date?
    let envelope: [UInt8]
}

/// A retransmission this store asked for, keyed by the envelope's digest: it asks once.
struct RetransmitRequested: Codable, Sendable {
    let at: Date
}

/// A go-offline notice this store published, keyed by the generation it announced.
struct PublishedNotice: Codable, Sendable {
    let at: Date
}

extension LocalTable where Key == String, Record == OutboxEntry {
    static let outbox = LocalTable("messaging.outbox")
}

extension LocalTable where Key == String, Record == SentEnvelope {
    static let sentEnvelopes = LocalTable("messaging.sent-envelopes")
}

extension LocalTable where Key == Int64, Record == DeferredEnvelope {
    static let deferredEnvelopes = LocalTable("messaging.deferred-envelopes")
}

extension LocalTable where Key == String, Record == RetransmitRequested {
    static let retransmitRequests = LocalTable("messaging.retransmit-requests")
}

extension LocalTable where Key == Int64, Record == PublishedNotice {
    static let publishedNotices = LocalTable("messaging.published-notices")
}

extension LocalTable where Key == String, Record == Int64 {
    /// Where this store stopped reading each relay topic, by topic name.
    static let relayCursors = LocalTable("messaging.relay-cursors")
    /// The highest prekey ID uploaded to the relay, by installation (hex).
    static let publishedPrekeys = LocalTable("messaging.published-prekeys")
}

extension Store {
    /// Moves messaging's bookkeeping out of the string keyspace of older stores.
    func moveLegacyMessagingValues() throws(KeepsakeError) {
        try moveLegacyValues(withPrefix: "outbox.", into: .outbox) { key, value in
            guard let topic = key.split(separator: ".").first else { return nil }
            return (key, OutboxEntry(topic: String(topic), envelope: value))
        }
        try moveLegacyValues(withPrefix: "sent.", into: .sentEnvelopes) { key, value in
            guard value.count == 32, let message = MessageID(bytes: value[0..<16]), let recipient = InstallationID(bytes: value[16..<32]) else {
                return nil
            }
            return (key, SentEnvelope(message: message, recipient: recipient))
        }
        try moveLegacyValues(withPrefix: "deferred.", into: .deferredEnvelopes) { key, value in
            guard value.count >= 8, let cursor = Int64(key) else { return nil }
            let millis = Int64(littleEndian: value.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) })
            return (cursor, DeferredEnvelope(receivedAt: millis == 0 ? nil : Date(millis: millis), envelope: Array(value.dropFirst(8))))
        }
        try moveLegacyValues(withPrefix: "retransmit.", into: .retransmitRequests) { key, _ in (key, RetransmitRequested(at: Date())) }
        try moveLegacyValues(withPrefix: "notice.published.", into: .publishedNotices) { key, _ in
            Int64(key).map { ($0, PublishedNotice(at: Date())) }
        }
        try moveLegacyValues(withPrefix: "relay.cursor.", into: .relayCursors) { key, value in
            (try? JSONDecoder().decode(Int64.self, from: Data(value))).map { (key, $0) }
        }
        let installation = try membership()?.installation.description
        try moveLegacyValues(withPrefix: "relay.prekeys.published-up-to", into: .publishedPrekeys) { _, value in
            guard let installation, let highest = try? JSONDecoder().decode(Int64.self, from: Data(value)) else { return nil }
            return (installation, highest)
        }
    }
}

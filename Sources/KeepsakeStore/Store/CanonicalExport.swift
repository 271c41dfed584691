import Foundation
import KeepsakeCrypto
import KeepsakeLog

/// A store's events as canonical JSON Lines: the same events give the same
/// bytes in every store that holds them, whatever order they arrived in, so
/// two exports compare with `diff` (a restore's round trip, a sync).
///
/// The first line names the format and the elements; then one line per event,
/// ordered by event ID (origin log, then origin sequence), with its ID, kind,
/// time and content, or `"erased":true`. Events that carry keys or session
/// states, and kinds an app cannot read, show `"opaque":true` and never their
/// bytes. Local positions (sequences) are left out: they differ between stores.
/// Objects have their keys sorted, with no spaces; strings are UTF-8 with only
/// `"`, `\` and control characters escaped (as RFC 8785 does).
public enum CanonicalExport {
    /// The first line's `format`.
    public static let format = "keepsake-export-v1"
}

extension Store {
    /// Writes the events of `elements` as canonical JSON Lines, each line to `write`
    /// (without its line feed). Holds one line per exported event in memory to order them.
    public func exportCanonicalJSON(elements: BackupElements = .soft, _ write: (String) throws -> Void) throws {
        let selection = BackupSelection(kind: .hard, elements: elements, conversations: [], extensionKinds: extensionKinds)
        try write(CanonicalJSON.object(["elements": .array(selection.elements.names.map(CanonicalJSON.string)), "format": .string(CanonicalExport.format)]).encoded)
        var lines: [(id: EventID, line: String)] = []
        var position: UInt64 = 0
        while true {
            let events = try readEvents(after: position, limit: 4096)
            guard let last = events.last else { break }
            for event in events where selection.includes(kind: event.record.kind) {
                lines.append((event.id, CanonicalJSON.event(event).encoded))
            }
            position = last.sequence
        }
        lines.sort { ($0.id.origin, $0.id.sequence) < ($1.id.origin, $1.id.sequence) }
        for entry in lines { try write(entry.line) }
    }
}

/// A JSON value written canonically (see `CanonicalExport`).
enum CanonicalJSON {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case array([CanonicalJSON])
    case object([String: CanonicalJSON])

    var encoded: String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case let .string(text): Self.quote(text, into: &out)
        case let .int(number): out += String(number)
        case let .bool(flag): out += flag ? "true" : "false"
        case let .array(items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case let .object(fields):
            out += "{"
            for (index, key) in fields.keys.sorted(by: { $0.utf16.lexicographicallyPrecedes($1.utf16) }).enumerated() {
                if index > 0 { out += "," }
                Self.quote(key, into: &out)
                out += ":"
                fields[key]!.write(into: &out)
            }
            out += "}"
        }
    }

    private static func quote(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// One event's line.
    static func event(_ event: Event) -> CanonicalJSON {
        var fields: [String: CanonicalJSON] = [
            "id": .string(event.id.description), "kind": .string(event.kind.description), "time": .int(event.time.millis),
        ]
        switch event.content {
        case .erased: fields["erased"] = .bool(true)
        case .opaque: fields["opaque"] = .bool(true)
        default: fields["content"] = content(event.content)
        }
        return .object(fields)
    }

    private static func content(_ content: EventContent) -> CanonicalJSON {
        func id<Tag>(_ value: Identifier<Tag>) -> CanonicalJSON { .string(value.description) }
        func accounts(_ list: [AccountID]) -> CanonicalJSON { .array(list.map { .string($0.rawValue) }) }
        func message(_ m: MessagePost) -> CanonicalJSON {
            .object(["message": id(m.id), "conversation": id(m.conversation), "sender": .string(m.sender.rawValue),
                     "text": .string(m.text), "sentAt": .int(m.sentAt.millis), "contentType": .string(m.contentType)])
        }
        switch content {
        case let .conversationCreated(c):
            return .object(["conversation": id(c.id), "kind": .int(Int64(c.kind.rawValue)), "title": .string(c.title),
                            "members": accounts(c.members), "createdBy": .string(c.createdBy.rawValue), "epoch": .int(Int64(c.epoch))])
        case let .messageSent(m), let .messageReceived(m):
            return message(m)
        case let .messageEdited(e):
            return .object(["message": id(e.message), "conversation": id(e.conversation), "text": .string(e.text), "editedAt": .int(e.editedAt.millis)])
        case let .messageDeleted(d):
            return .object(["message": id(d.message), "conversation": id(d.conversation)])
        case let .membershipCommitted(c):
            return .object(["conversation": id(c.conversation), "epoch": .int(Int64(c.epoch)), "added": accounts(c.added),
                            "removed": accounts(c.removed), "committer": .string(c.committer.rawValue)])
        case let .contactAdded(c):
            return .object(["account": .string(c.account.rawValue), "displayName": .string(c.displayName)])
        case let .contactRemoved(account):
            return .object(["account": .string(account.rawValue)])
        case let .consentChanged(c):
            return .object(["subject": .string(c.subject.description), "state": .int(Int64(c.state.rawValue))])
        case let .preferenceChanged(p):
            return .object(["key": .string(p.key), "value": .string(Hex.encode(p.value))])
        case let .conversationRead(r):
            return .object(["conversation": id(r.conversation), "upTo": id(r.upTo)])
        case .opaque, .erased:
            return .object([:])
        }
    }
}

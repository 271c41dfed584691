import KeepsakeCrypto

/// A relay topic: where one kind of payload for one account, installation or
/// group is published. Names are `<kind>-<lowercase hex>`.
public enum Topic: Hashable, Sendable, CustomStringConvertible {
    /// Signed contact bundles of an account's installations.
    case contact(account: String)
    /// Signed revocations of an account's installations.
    case revoked(account: String)
    /// Prekeys of an installation (16-byte ID).
    case prekey(installation: [UInt8])
    /// Envelopes for an installation: its inbox.
    case message(installation: [UInt8])
    /// Epoch claims of a group (`commitTopicID(of:)` of its conversation ID).
    case commits(group: [UInt8])
    /// Notices about an installation (16-byte ID): a newer generation runs it.
    case installation(installation: [UInt8])

    /// The size of an installation ID in topic names.
    public static let installationIDBytes = 16

    /// The topic's name, `<kind>-<lowercase hex>`.
    public var name: String {
        switch self {
        case let .contact(account): "contact-\(account)"
        case let .revoked(account): "revoked-\(account)"
        case let .prekey(installation): "prekey-\(Hex.encode(installation))"
        case let .message(installation): "message-\(Hex.encode(installation))"
        case let .commits(group): "commits-\(Hex.encode(group))"
        case let .installation(installation): "installation-\(Hex.encode(installation))"
        }
    }

    /// The topic's name.
    public var description: String { name }

    /// The topic's path on the relay's HTTP API, `/v1/topics/<name>`, as signed requests sign it.
    public var path: String { "/v1/topics/\(name)" }

    /// Parses a topic name; nil for anything that is not exactly one of the forms above.
    public init?(name: some StringProtocol) {
        guard let dash = name.firstIndex(of: "-") else { return nil }
        let kind = name[..<dash], rest = name[name.index(after: dash)...]
        func id(bytes: Int) -> [UInt8]? {
            guard rest.utf8.count == 2 * bytes, let value = Hex.decode(rest), Hex.encode(value) == rest else { return nil }
            return value
        }
        switch kind {
        case "contact", "revoked":
            guard AccountIdentity.publicKey(of: rest) != nil else { return nil }
            self = kind == "contact" ? .contact(account: String(rest)) : .revoked(account: String(rest))
        case "prekey", "message", "installation":
            guard let installation = id(bytes: Self.installationIDBytes) else { return nil }
            switch kind {
            case "prekey": self = .prekey(installation: installation)
            case "message": self = .message(installation: installation)
            default: self = .installation(installation: installation)
            }
        case "commits":
            guard let group = id(bytes: 32) else { return nil }
            self = .commits(group: group)
        default:
            return nil
        }
    }

    /// The commit topic ID of a group: BLAKE2b-256 of a label and the
    /// conversation ID, so the relay never sees the conversation ID itself.
    public static func commitTopicID(of conversation: [UInt8]) -> [UInt8] {
        Blake2b.hash(Array("keepsake/commit-topic/v1".utf8) + [0] + conversation)
    }
}

import KeepsakeCrypto
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

/// Which conversation a payload's `convo_id` names.
///
/// Direct conversations follow the XMTP rule `dm:<lower account>:<higher
/// account>`, so two accounts that start one at the same time end in the same
/// conversation; its 16-byte ID is a hash of that text. Groups are
/// `group:<conversation ID in hex>`.
enum ConvoID: Equatable {
    case direct(AccountID, AccountID)
    case group(ConversationID)

    static func direct(between a: AccountID, and b: AccountID) -> ConvoID { a < b ? .direct(a, b) : .direct(b, a) }

    init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "dm":
            guard parts.count == 3, parts[1] < parts[2], AccountIdentity.publicKey(of: parts[1]) != nil,
                  AccountIdentity.publicKey(of: parts[2]) != nil else { return nil }
            self = .direct(AccountID(parts[1]), AccountID(parts[2]))
        case "group":
            guard parts.count == 2, let id = ConversationID(parts[1]), id.description == parts[1] else { return nil }
            self = .group(id)
        default:
            return nil
        }
    }

    var text: String {
        switch self {
        case let .direct(a, b): "dm:\(a):\(b)"
        case let .group(id): "group:\(id)"
        }
    }

    /// BLAKE2b-128 of a label and the text for direct conversations; the group's own ID otherwise.
    var conversationID: ConversationID {
        switch self {
        case .direct: ConversationID(bytes: Blake2b.hash(Array("keepsake/direct-conversation/v1".utf8) + [0] + Array(text.utf8), length: 16))!
        case let .group(id): id
        }
    }
}

import Foundation
import KeepsakeStore
import KeepsakeTransport

/// Why an incoming envelope was refused, one case per validation step
/// (docs/PROTOCOL.md, "Receiving"). A refused envelope leaves no state behind.
///
/// Not frozen: later releases may add cases, so a `switch` over it needs a
/// `default` branch. `description` always says what happened and what to do.
public enum EnvelopeRejection: Error, Equatable, Sendable, CustomStringConvertible {
    /// The envelope, its header or its session message does not parse.
    case malformed(String)
    /// Step 1: the sealed metadata does not open with this installation's identity key.
    case unsealFailed
    /// Step 2: the metadata names another recipient account or installation.
    case notForThisInstallation
    /// Step 2: no valid contact bundle of the sender installation exists for the sender account.
    case unknownSender
    /// Step 2: the sender installation was revoked at or before the send time.
    case senderRevoked
    /// Step 3: a prekey message used a prekey this installation no longer holds (used or never made).
    case prekeyUnavailable(UInt32)
    /// Step 3: a prekey message carries another identity key than the sender's bundle.
    case identityKeyMismatch
    /// Step 3: a regular message for which no session exists.
    case noSession
    /// Step 4: the payload does not decrypt in the session (altered or for another session).
    case undecryptable
    /// Step 4: the message was already received (duplicate delivery or replay).
    case replayed
    /// Step 5: the header signature is not the sender installation's.
    case badHeaderSignature
    /// Step 6: the sender or this account is not a member of the conversation.
    case notAMember
    /// Step 6 for history sync: requests and answers come only from this account's installations.
    case notThisAccount
    /// The conversation or commit is unknown or does not apply (group epochs).
    case conversationMismatch(String)

    /// Failures a new session can cure: the sender is asked to send the content again.
    var callsForRetransmission: Bool {
        switch self {
        case .undecryptable, .noSession, .prekeyUnavailable: true
        default: false
        }
    }

    /// What happened, and what to do.
    public var description: String {
        switch self {
        case let .malformed(what): "malformed envelope: \(what)"
        case .unsealFailed: "the sealed sender metadata does not open with this installation's key"
        case .notForThisInstallation: "the envelope is addressed to another installation"
        case .unknownSender: "the sender installation has no valid contact bundle signed by the sender account"
        case .senderRevoked: "the sender installation was revoked before the message was sent"
        case let .prekeyUnavailable(id): "the message used prekey \(id), which this installation no longer holds; the sender must start a new session"
        case .identityKeyMismatch: "the prekey message carries another identity key than the sender's contact bundle"
        case .noSession: "no session with the sender exists for this message"
        case .undecryptable: "the message does not decrypt in its session"
        case .replayed: "the message was already received"
        case .badHeaderSignature: "the envelope header was not signed by the sender installation"
        case .notAMember: "the sender or the recipient is not a member of the conversation"
        case .notThisAccount: "history requests and answers come only from installations of this account"
        case let .conversationMismatch(what): what
        }
    }
}

/// Errors of the messaging layer, with what to do about them.
///
/// Not frozen: later releases may add cases, so a `switch` over it needs a
/// `default` branch. `description` always says what happened and what to do.
public enum MessagingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The store's installation has not joined an account yet.
    case notJoined
    /// The store's installation already belongs to an account.
    case alreadyJoined(account: AccountID)
    case badAccountKeyFile(String, String)
    /// A text is not an account ID (64 lowercase hex digits).
    case badAccountID(AccountID)
    /// The account has no valid installation to send to.
    case noInstallations(account: AccountID)
    /// A restored conversation nobody has re-added this installation to yet.
    case readOnly(ConversationID)
    case notAMember(ConversationID)
    /// The relay served a prekey that does not verify against the installation's bundle.
    case invalidPrekey(String)
    /// The relay could not be reached or refused a request.
    case relay(String)
    /// Group membership: a change that does not apply (already a member, not a member, empty group).
    case invalidChange(String)
    /// Another commit took the epoch first; sync and try again.
    case epochTaken(UInt64)

    /// What happened, and what to do.
    public var description: String {
        switch self {
        case .notJoined: "this store's installation has not joined an account; join one first (Messenger.join)"
        case let .alreadyJoined(account): "this store's installation already belongs to account \(account)"
        case let .badAccountKeyFile(path, why): "\(path) is not a usable account key file: \(why)"
        case let .badAccountID(account): "'\(account.rawValue.prefix(80))' is not an account ID (64 lowercase hex digits)"
        case let .noInstallations(account): "account \(account) has no unrevoked installation on the relay"
        case let .readOnly(id): "conversation \(id) is read-only on this installation (restored without sessions) until a member adds it"
        case let .notAMember(id): "this account is not a member of conversation \(id)"
        case let .invalidPrekey(why): "the relay served an invalid prekey: \(why)"
        case let .relay(why): "relay: \(why)"
        case let .invalidChange(why): why
        case let .epochTaken(epoch): "another member committed epoch \(epoch) first; sync, then try again"
        }
    }
}

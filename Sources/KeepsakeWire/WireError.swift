/// Why a wire message was refused. Says which message and what was wrong with it,
/// never a key or content.
///
/// Not frozen: later releases may add cases, so a `switch` over it needs a
/// `default` branch. `description` always says what happened and what to do.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bytes are not a well-formed message of this kind.
    case malformed(String)
    /// A signature does not verify with the key it must come from.
    case badSignature(String)
    /// A field does not match what its context requires (a topic, an installation).
    case mismatch(String)

    /// What is wrong with the message.
    public var description: String {
        switch self {
        case let .malformed(what): "malformed \(what)"
        case let .badSignature(what): "the signature of the \(what) does not verify"
        case let .mismatch(what): what
        }
    }
}

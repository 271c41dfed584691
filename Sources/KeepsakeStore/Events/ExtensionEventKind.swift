import Foundation
import KeepsakeLog
import Synchronization

/// A kind of event an extension defines, and how the log files it: the store
/// keeps such events, places them by this declaration, and backs them up as
/// the element it names, without knowing what they say.
///
/// Kind numbers share one space with the store's own kinds
/// (`Protos/keepsake/v1/events.proto` reserves the ones extensions use).
public struct ExtensionEventKind: Sendable {
    /// The kind's number in the log. Never one of the store's kinds.
    public let kind: EventKind
    /// A short name for display and logs (`ratchet-step`).
    public let name: String
    /// The backup element events of this kind belong to: exactly one element.
    /// Anything secret belongs to `.sessions` or `.identity`, which soft backups leave out.
    public let element: BackupElements
    /// Checks a payload of this kind and says how the log files it; nil when the
    /// bytes are malformed (the event is refused).
    public let placement: @Sendable (_ payload: [UInt8]) -> EventPlacement?

    /// Declares kind `kind`, named `name`, of backup element `element`, filed by `placement`.
    public init(kind: EventKind, name: String, element: BackupElements,
                placement: @escaping @Sendable (_ payload: [UInt8]) -> EventPlacement?) {
        self.kind = kind
        self.name = name
        self.element = element
        self.placement = placement
    }

    /// `kinds` by number (the first declaration of a number wins; `Store` refuses repeats).
    package static func byNumber(_ kinds: [ExtensionEventKind]) -> [UInt32: ExtensionEventKind] {
        Dictionary(kinds.map { ($0.kind.rawValue, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Names of the kinds installed extensions declared, for `EventKind.description`
    /// anywhere in the process. Kind numbers are one space, so a number has one name.
    private static let registeredNames = Mutex<[UInt32: String]>([:])

    static func register(_ kinds: [ExtensionEventKind]) {
        registeredNames.withLock { names in
            for declaration in kinds { names[declaration.kind.rawValue] = declaration.name }
        }
    }

    static func registeredName(of kind: UInt32) -> String? {
        registeredNames.withLock { $0[kind] }
    }
}

/// How the log files one event: the subject it belongs to, what it does to the
/// subject's other events, and whether its payload is sealed under a key of its
/// own (which erasing the subject destroys). docs/LOG-FORMAT.md explains each.
public struct EventPlacement: Sendable, Hashable {
    /// What an event does to the other events of its subject.
    public enum Effect: Sendable, Hashable {
        /// Nothing: one more event of its subject.
        case none
        /// Erases every event of its subject, including ones that arrive later.
        case erasesSubject
        /// Step `step` of its subject's secret state: erases the previous step,
        /// and is stored already erased when the subject has a step >= `step`.
        case supersedes(step: UInt64)
    }

    /// The subject, up to 256 bytes; nil for none. Its first byte names its
    /// kind: the store uses 0x01 (a message) and 0x03 (an installation);
    /// extensions choose others, or file secrets of an installation under
    /// `installationSubject(_:)` so retiring the installation erases them.
    public var subject: [UInt8]?
    /// What the event does to its subject's other events.
    public var effect: Effect
    /// Whether the payload is sealed under a key of its own.
    public var sealed: Bool

    /// A placement; by default no subject, no effect, not sealed.
    public init(subject: [UInt8]? = nil, effect: Effect = .none, sealed: Bool = false) {
        self.subject = subject
        self.effect = effect
        self.sealed = sealed
    }

    /// 0x01 ‖ message ID: a message's events, which its deletion erases.
    static let messageSubject: UInt8 = 0x01
    /// 0x03 ‖ installation ID: an installation's keys, which its retirement erases.
    static let installationSubject: UInt8 = 0x03

    /// The subject of an installation's keys (0x03 ‖ its 16-byte ID).
    public static func installationSubject(_ installation: InstallationID) -> [UInt8] {
        [installationSubject] + installation.bytes
    }

    var recordEffect: RecordEffect {
        switch effect {
        case .none: .none
        case .erasesSubject: .erasesSubject
        case let .supersedes(step): .supersedes(step: step)
        }
    }
}

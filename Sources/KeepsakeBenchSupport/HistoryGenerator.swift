import Foundation
import KeepsakeMessaging
import KeepsakeStore

/// Generates a realistic synthetic message history for demos, tests and benchmarks.
///
/// Conversation sizes follow a Zipf-like law (a few busy conversations, a long
/// tail of quiet ones); messages alternate direction; every sent or received
/// message may advance a ratchet session; a small share of messages are edited
/// or deleted, conversations are read now and then, and contacts, consent and
/// preferences appear along the way. The same seed gives the same shape.
public struct HistoryGenerator: Sequence, IteratorProtocol {
    /// The shape of a generated history.
    public struct Parameters: Sendable {
        /// Messages to generate.
        public var messages: Int
        /// Conversations to spread them over.
        public var conversations: Int
        /// The random seed: the same seed gives the same history.
        public var seed: UInt64 = 1
        /// Share of messages followed by a ratchet step of their session.
        public var ratchetRate = 0.5
        /// Share of messages edited later.
        public var editRate = 0.02
        /// Share of messages deleted later.
        public var deleteRate = 0.01
        /// Zipf exponent for conversation sizes.
        public var skew = 1.1
        /// The account of this store's user.
        public var selfAccount = "me"
        /// Time of the first message; the rest follow a few seconds apart.
        public var start = Date(timeIntervalSince1970: 1_700_000_000)

        /// A history of `messages` over `conversations`.
        public init(messages: Int, conversations: Int, seed: UInt64 = 1) {
            self.messages = messages
            self.conversations = Swift.max(1, conversations)
            self.seed = seed
        }
    }

    private let parameters: Parameters
    private var random: SplitMix64
    private let cumulativeWeights: [Double]
    private var created: [ConversationID?]
    private var sessionSteps: [UInt64]
    private var recent: [(MessageID, ConversationID)] = []
    private var pending: [EventDraft] = []
    private var clock: Date
    /// Messages generated so far (sent + received).
    public private(set) var messageCount = 0

    /// A generator of the history `parameters` describe.
    public init(_ parameters: Parameters) {
        self.parameters = parameters
        random = SplitMix64(seed: parameters.seed)
        var total = 0.0
        cumulativeWeights = (0..<parameters.conversations).map { i in
            total += 1 / pow(Double(i + 1), parameters.skew)
            return total
        }
        created = Array(repeating: nil, count: parameters.conversations)
        sessionSteps = Array(repeating: 0, count: parameters.conversations)
        clock = parameters.start
    }

    private func peer(_ index: Int) -> String { "account-\(index)" }

    /// The next event, or nil once `messages` messages have been generated.
    public mutating func next() -> EventDraft? {
        while pending.isEmpty {
            guard messageCount < parameters.messages else { return nil }
            generateMessage()
        }
        return pending.removeFirst()
    }

    /// Up to `count` next events.
    public mutating func next(batch count: Int) -> [EventDraft] {
        var out: [EventDraft] = []
        out.reserveCapacity(count)
        while out.count < count, let event = next() { out.append(event) }
        return out
    }

    private mutating func emit(_ payload: EventPayload) {
        pending.append(EventDraft(payload, at: clock))
    }

    private mutating func pickConversation() -> Int {
        let x = random.nextDouble() * cumulativeWeights[cumulativeWeights.count - 1]
        var low = 0, high = cumulativeWeights.count - 1
        while low < high {
            let mid = (low + high) / 2
            if cumulativeWeights[mid] < x { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private mutating func conversation(_ index: Int) -> ConversationID {
        if let id = created[index] { return id }
        let id = ConversationID.generate(at: clock)
        created[index] = id
        var contact = ContactAdded()
        contact.accountID = peer(index)
        contact.displayName = "Contact \(index)"
        emit(.contactAdded(contact))
        var conversation = ConversationCreated()
        conversation.conversationID = Data(id.bytes)
        conversation.kind = index % 5 == 4 ? .group : .direct
        conversation.title = conversation.kind == .group ? "Group \(index)" : "Contact \(index)"
        conversation.members = [parameters.selfAccount, peer(index)] + (conversation.kind == .group ? [peer(index + 1)] : [])
        conversation.createdBy = parameters.selfAccount
        emit(.conversationCreated(conversation))
        var consent = ConsentChanged()
        consent.entity = "conversation:\(id)"
        consent.state = .allowed
        emit(.consentChanged(consent))
        return id
    }

    private mutating func generateMessage() {
        clock += 1 + random.nextDouble() * 30
        let index = pickConversation()
        let conversationID = conversation(index)
        let id = MessageID.generate(at: clock)
        var content = MessageContent()
        content.messageID = Data(id.bytes)
        content.conversationID = Data(conversationID.bytes)
        let received = random.nextDouble() < 0.5
        content.sender = received ? peer(index) : parameters.selfAccount
        content.text = sentence()
        content.sentAtMs = clock.millis
        content.contentType = "text/plain"
        emit(received ? .messageReceived(content) : .messageSent(content))
        messageCount += 1
        recent.append((id, conversationID))
        if recent.count > 64 { recent.removeFirst() }

        if random.nextDouble() < parameters.ratchetRate {
            sessionSteps[index] += 1
            var step = RatchetStep()
            step.streamID = Data("session-\(index)".utf8)
            step.peerAccount = peer(index)
            step.peerInstallation = "installation-\(index)"
            step.step = sessionSteps[index]
            step.state = Data((0..<96).map { _ in UInt8.random(in: 0...255, using: &random) })
            emit(MessagingEvent.ratchetStep(step).payload)
        }
        let roll = random.nextDouble()
        if roll < parameters.deleteRate, let (victim, conversation) = recent.randomElement(using: &random) {
            var deletion = MessageDeleted()
            deletion.messageID = Data(victim.bytes)
            deletion.conversationID = Data(conversation.bytes)
            emit(.messageDeleted(deletion))
            recent.removeAll { $0.0 == victim }
        } else if roll < parameters.deleteRate + parameters.editRate, let (target, conversation) = recent.last {
            var edit = MessageEdited()
            edit.messageID = Data(target.bytes)
            edit.conversationID = Data(conversation.bytes)
            edit.text = content.text + " (edited)"
            edit.editedAtMs = clock.millis + 1000
            emit(.messageEdited(edit))
        } else if roll > 0.97 {
            var read = ConversationRead()
            read.conversationID = Data(conversationID.bytes)
            read.upToMessageID = Data(id.bytes)
            read.upToSentAtMs = content.sentAtMs
            emit(.conversationRead(read))
        }
        if messageCount % 10_000 == 0 {
            var preference = PreferenceChanged()
            preference.key = "theme"
            preference.value = Data((messageCount / 10_000 % 2 == 0 ? "dark" : "light").utf8)
            emit(.preferenceChanged(preference))
        }
    }

    private static let words = """
        the a meeting tomorrow lunch coffee tonight photo link project deadline call later thanks sure \
        maybe weekend train airport invoice draft review ship merge release bug fix test music movie \
        dinner kids school doctor soon yes no great awesome sorry running late see you there love it
        """.split(separator: " ").map(String.init)

    private mutating func sentence() -> String {
        let count = 3 + Int(random.next() % 14)
        return (0..<count).map { _ in Self.words[Int(random.next() % UInt64(Self.words.count))] }.joined(separator: " ")
    }
}

/// A small, fast, seedable generator (SplitMix64); not for cryptography.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func nextDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

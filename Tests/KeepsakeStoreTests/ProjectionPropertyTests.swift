import Foundation
import Testing
@testable import KeepsakeStore
@testable import KeepsakeBenchSupport
import KeepsakeMessaging
@testable import KeepsakeLog
import KeepsakeCrypto

/// Projections are a pure function of the log: random histories projected
/// incrementally, in random batch sizes, give the same rows as a rebuild.
///
/// `KEEPSAKE_PROPERTY_CASES` sets how many histories (default 200) and
/// `KEEPSAKE_PROPERTY_SEED` the first seed (default: random, printed on failure).
@Suite struct ProjectionPropertyTests {
    static let environment = ProcessInfo.processInfo.environment
    static let cases = environment["KEEPSAKE_PROPERTY_CASES"].flatMap(Int.init) ?? 200
    static let firstSeed = environment["KEEPSAKE_PROPERTY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64(UInt32.max))

    @Test func incrementalProjectionAndRebuildGiveTheSameRows() throws {
        for offset in 0..<UInt64(Self.cases) {
            let seed = Self.firstSeed &+ offset
            let dir = TemporaryDirectory()
            let store = try Store.open(at: dir.store, options: StoreOptions(durability: .unsafeNoSync, extensions: [MessagingExtension()]))
            var history = RandomHistory(seed: seed)
            try history.deliver(into: store)
            let incremental = try store.projectionDump()
            try store.rebuildProjections()
            let rebuilt = try store.projectionDump()
            let copy = try Store.open(at: dir.url.appendingPathComponent("copy"), options: StoreOptions(durability: .unsafeNoSync, extensions: [MessagingExtension()]))
            try copy.importEvents(store.events(after: Cursor(log: store.logID, sequence: 0), limit: .max))
            #expect(try copy.contentDump() == store.contentDump(), "seed \(seed): a copy of the log projects differently")
            guard incremental == rebuilt else {
                let tables = incremental.keys.filter { incremental[$0] != rebuilt[$0] }.sorted()
                let rows = tables.map { table in
                    let before = incremental[table]!, after = rebuilt[table]!
                    return "\(table)\n  only incremental: \(before.filter { !after.contains($0) })"
                        + "\n  only rebuilt:     \(after.filter { !before.contains($0) })"
                }
                Issue.record("""
                    seed \(seed) (rerun with KEEPSAKE_PROPERTY_SEED=\(seed) KEEPSAKE_PROPERTY_CASES=1): \
                    tables differ after rebuild: \(tables)
                    \(rows.joined(separator: "\n"))
                    """)
                return
            }
        }
    }
}

/// A random history: local appends and copies from other logs (out of order,
/// some twice, some already erased), delivered in random batch sizes.
///
/// It covers every projected kind: conversations and membership commits,
/// messages with edits, deletions (also naming the wrong conversation) and read
/// markers before and after deletions, contacts, consent, preferences, ratchet
/// steps (some older than held) and closed sessions, prekeys, peer
/// installations and revocations, history requests.
struct RandomHistory {
    private var random: SplitMix64
    private let origins: [LogID]
    private var originSequences = [UInt64](repeating: 0, count: 3)
    private var conversations: [(id: ConversationID, epoch: UInt64)] = []
    private var messages: [(id: MessageID, conversation: ConversationID, sentAt: Int64)] = []
    private var clock: Int64 = 1_700_000_000_000
    private let accounts = ["me", "ann", "bob", "cy", "dee"]
    private let streams = ["s1", "s2", "s3"]
    private let installations: [Data]

    init(seed: UInt64) {
        random = SplitMix64(seed: seed)
        var ids = SplitMix64(seed: ~seed)
        origins = (0..<3).map { _ in LogID(bytes: ids.bytes(16))! }
        installations = (0..<4).map { _ in Data(ids.bytes(16)) }
    }

    /// Appends the history to `store`: batches of local events and of copied events, interleaved.
    mutating func deliver(into store: Store) throws {
        var foreign: [RecordDraft] = []
        let steps = 20 + Int(random.next() % 60)
        for _ in 0..<steps {
            let size = 1 + Int(random.next() % 12)
            if chance(0.5) {
                let batch = (0..<size).map { _ in EventDraft(nextPayload(), at: Date(millis: tick())) }
                try store.append(contentsOf: batch)
            } else {
                for _ in 0..<size { foreign.append(try nextCopy()) }
                if chance(0.6) { try store.importDrafts(takeShuffled(&foreign)) }
            }
        }
        try store.importDrafts(takeShuffled(&foreign))
    }

    /// Removes and returns a random-sized slice of `pending`, shuffled, with some drafts repeated.
    private mutating func takeShuffled(_ pending: inout [RecordDraft]) -> [RecordDraft] {
        var batch = Array(pending.prefix(1 + Int(random.next() % UInt64(max(1, pending.count)))))
        pending.removeFirst(batch.count)
        batch.shuffle(using: &random)
        if let repeated = batch.randomElement(using: &random), chance(0.3) { batch.append(repeated) }
        return batch
    }

    static let messagingKinds = ExtensionEventKind.byNumber(MessagingExtension().eventKinds)

    /// An event of another log, as a copy carries it (sometimes already erased by its origin).
    private mutating func nextCopy() throws -> RecordDraft {
        let origin = Int(random.next() % UInt64(origins.count))
        originSequences[origin] += 1
        var payload = nextPayload()
        // Copies come from stores that placed their read markers (see Store.append).
        if case var .conversationRead(r) = payload, !r.hasUpToSentAtMs,
           let target = messages.last(where: { Data($0.id.bytes) == r.upToMessageID }) {
            r.upToSentAtMs = target.sentAt
            payload = .conversationRead(r)
        }
        var draft = try EventDraft(payload, at: Date(millis: tick())).recordDraft(declared: Self.messagingKinds)
        draft.id = EventID(origin: origins[origin], sequence: originSequences[origin])
        if chance(0.05) {
            draft.erased = true
            draft.payload = []
        }
        return draft
    }

    private mutating func tick() -> Int64 {
        clock += Int64(random.next() % 5_000)
        return clock
    }

    private mutating func chance(_ p: Double) -> Bool { random.nextDouble() < p }

    private mutating func pick<T>(_ values: [T]) -> T { values[Int(random.next() % UInt64(values.count))] }

    private mutating func nextPayload() -> EventPayload {
        let roll = random.next() % 100
        if conversations.isEmpty || roll < 8 { return createConversation() }
        switch roll {
        case 8..<45: return addMessage()
        case 45..<52: return messages.isEmpty ? addMessage() : editMessage()
        case 52..<60: return messages.isEmpty ? addMessage() : deleteMessage()
        case 60..<70: return messages.isEmpty ? addMessage() : readConversation()
        case 70..<74: return commit()
        case 74..<84: return sessionEvent()
        case 84..<90: return addressBookEvent()
        case 90..<95: return prekeyEvent()
        case 95..<98: return peerInstallation()
        default: return historyRequest()
        }
    }

    private mutating func createConversation() -> EventPayload {
        // Now and then the same conversation again (created on two devices).
        let id = !conversations.isEmpty && chance(0.1) ? pick(conversations).id : ConversationID(bytes: random.bytes(16))!
        var c = ConversationCreated()
        c.conversationID = Data(id.bytes)
        c.kind = chance(0.5) ? .group : .direct
        c.title = "chat \(random.next() % 100)"
        c.members = Array(Set((0..<2).map { _ in pick(accounts) })).sorted()
        c.createdBy = pick(accounts)
        c.epoch = chance(0.8) ? 0 : random.next() % 3
        conversations.append((id, c.epoch))
        return .conversationCreated(c)
    }

    private mutating func addMessage() -> EventPayload {
        // Mostly known conversations; sometimes one not created yet (its creation may follow).
        let conversation = chance(0.9) ? pick(conversations).id : ConversationID(bytes: random.bytes(16))!
        let id = messages.isEmpty || chance(0.95) ? MessageID(bytes: random.bytes(16))! : pick(messages).id
        var m = MessageContent()
        m.messageID = Data(id.bytes)
        m.conversationID = Data(conversation.bytes)
        m.sender = pick(accounts)
        m.text = pick(["hello there", "the plan", "a photo", "you too", "lunch?"]) + " \(random.next() % 1000)"
        // Sent times out of order now and then, and sometimes equal.
        m.sentAtMs = chance(0.2) ? clock - Int64(random.next() % 100_000) : (chance(0.1) ? clock : tick())
        m.contentType = "text/plain"
        messages.append((id, conversation, m.sentAtMs))
        return chance(0.6) ? .messageReceived(m) : .messageSent(m)
    }

    private mutating func editMessage() -> EventPayload {
        let target = pick(messages)
        var e = MessageEdited()
        e.messageID = Data(target.id.bytes)
        e.conversationID = Data(target.conversation.bytes)
        e.text = "edited \(random.next() % 1000)"
        e.editedAtMs = clock + Int64(random.next() % 10_000) - 5_000
        return .messageEdited(e)
    }

    private mutating func deleteMessage() -> EventPayload {
        let target = pick(messages)
        var d = MessageDeleted()
        d.messageID = Data(target.id.bytes)
        d.conversationID = Data((chance(0.9) ? target.conversation : pick(conversations).id).bytes)
        return .messageDeleted(d)
    }

    private mutating func readConversation() -> EventPayload {
        let target = pick(messages)
        var r = ConversationRead()
        r.conversationID = Data((chance(0.9) ? target.conversation : pick(conversations).id).bytes)
        r.upToMessageID = Data(target.id.bytes)
        // Apps may name the message only (Store.append adds its sent time).
        if chance(0.5) { r.upToSentAtMs = target.sentAt }
        return .conversationRead(r)
    }

    private mutating func commit() -> EventPayload {
        let index = Int(random.next() % UInt64(conversations.count))
        var c = MembershipCommit()
        c.conversationID = Data(conversations[index].id.bytes)
        c.epoch = chance(0.8) ? conversations[index].epoch + 1 : random.next() % 4
        conversations[index].epoch = max(conversations[index].epoch, c.epoch)
        c.added = chance(0.7) ? [pick(accounts)] : []
        c.removed = chance(0.4) ? [pick(accounts)] : []
        c.committer = pick(accounts)
        return .membershipCommit(c)
    }

    private mutating func sessionEvent() -> EventPayload {
        let stream = pick(streams)
        if chance(0.15) {
            var closed = SessionClosed()
            closed.streamID = Data(stream.utf8)
            closed.reason = "idle"
            return MessagingEvent.sessionClosed(closed).payload
        }
        var r = RatchetStep()
        r.streamID = Data(stream.utf8)
        r.peerAccount = pick(accounts)
        r.peerInstallation = Hex.encode(pick(installations))
        r.step = 1 + random.next() % 20
        r.state = Data(random.bytes(32))
        r.baseKey = Data(random.bytes(32))
        return MessagingEvent.ratchetStep(r).payload
    }

    private mutating func addressBookEvent() -> EventPayload {
        let account = pick(accounts)
        switch random.next() % 5 {
        case 0:
            var c = ContactRemoved()
            c.accountID = account
            return .contactRemoved(c)
        case 1, 2:
            var c = ContactAdded()
            c.accountID = account
            c.displayName = "\(account) \(random.next() % 10)"
            return .contactAdded(c)
        case 3:
            var c = ConsentChanged()
            c.entity = chance(0.5) ? account : "conversation:\(pick(conversations).id)"
            c.state = pick([.allowed, .denied, .unknown])
            return .consentChanged(c)
        default:
            var p = PreferenceChanged()
            p.key = pick(["theme", "sounds"])
            p.value = Data("\(random.next() % 10)".utf8)
            return .preferenceChanged(p)
        }
    }

    private mutating func prekeyEvent() -> EventPayload {
        let installation = pick(installations)
        let prekey = UInt32(random.next() % 6)
        if chance(0.4) {
            var used = PrekeyUsed()
            used.installationID = installation
            used.prekeyID = prekey
            return MessagingEvent.prekeyUsed(used).payload
        }
        var p = PrekeyCreated()
        p.installationID = installation
        p.prekeyID = prekey
        p.fallback = prekey == 0
        p.secret = Data(random.bytes(32))
        p.signedPrekey = Data(random.bytes(8))
        return MessagingEvent.prekeyCreated(p).payload
    }

    private mutating func peerInstallation() -> EventPayload {
        var p = PeerInstallation()
        p.installationID = pick(installations)
        p.account = pick(accounts)
        p.signingKey = Data(random.bytes(32))
        p.identityKey = Data(random.bytes(32))
        p.createdAtMs = clock
        p.role = "phone"
        p.revokedAtMs = chance(0.3) ? clock - Int64(random.next() % 10_000) : 0
        return MessagingEvent.peerInstallation(p).payload
    }

    private mutating func historyRequest() -> EventPayload {
        var h = HistoryRequestChanged()
        h.requestID = pick(installations)
        h.role = pick([.requester, .provider])
        h.peerInstallation = Hex.encode(pick(installations))
        h.verificationPin = UInt32(random.next() % 10_000)
        h.status = pick([.pending, .applied, .failed, .answered])
        return MessagingEvent.historyRequest(h).payload
    }
}

extension SplitMix64 {
    /// Bytes from the generator, so a seed gives the same identifiers every run.
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

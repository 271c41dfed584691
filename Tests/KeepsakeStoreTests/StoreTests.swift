import Foundation
import GRDB
import Testing
@testable import KeepsakeStore
import KeepsakeMessaging
@testable import KeepsakeLog

@Suite struct StoreTests {
    let dir = TemporaryDirectory()

    @Test func conversationsAreListedByActivityWithUnreadCounts() throws {
        let store = try Store.open(at: dir.store)
        let quiet = ConversationID.generate(), busy = ConversationID.generate()
        try store.append(contentsOf: [
            EventDraft(conversationCreated(quiet, title: "Quiet"), at: Date(millis: 1_000)),
            EventDraft(conversationCreated(busy, title: "Busy"), at: Date(millis: 2_000)),
            EventDraft(message(.generate(), in: busy, "hi", at: 3_000)),
            EventDraft(message(.generate(), in: busy, "there", at: 4_000)),
            EventDraft(message(.generate(), in: busy, "mine", at: 5_000, received: false)),
        ])
        let list = try store.conversations()
        #expect(list.map(\.title) == ["Busy", "Quiet"])
        #expect(list.map(\.unreadCount) == [2, 0])
        #expect(list[0].lastActivity == Date(millis: 5_000))
        #expect(list[1].lastActivity == Date(millis: 1_000))
        #expect(try store.members(of: busy) == ["bob", "me"])
    }

    @Test func readMarkersClearUnreadCounts() throws {
        let store = try Store.open(at: dir.store)
        let chat = ConversationID.generate()
        let first = MessageID.generate(), second = MessageID.generate()
        try store.append(contentsOf: [
            EventDraft(conversationCreated(chat)),
            EventDraft(message(first, in: chat, "one", at: 1_000)),
            EventDraft(message(second, in: chat, "two", at: 2_000)),
        ])
        var read = ConversationRead()
        read.conversationID = Data(chat.bytes)
        read.upToMessageID = Data(first.bytes)
        try store.append(.conversationRead(read))
        #expect(try store.conversation(chat)?.unreadCount == 1)
        try store.append(message(.generate(), in: chat, "three", at: 3_000))
        #expect(try store.conversation(chat)?.unreadCount == 2)
    }

    @Test func aReadMarkerKeepsItsPlaceAfterItsMessageIsDeletedAndTheStoreRebuilt() throws {
        let store = try Store.open(at: dir.store)
        let chat = ConversationID.generate()
        let first = MessageID.generate(), second = MessageID.generate()
        var read = ConversationRead()
        read.conversationID = Data(chat.bytes)
        read.upToMessageID = Data(second.bytes)
        try store.append(contentsOf: [
            EventDraft(conversationCreated(chat)),
            EventDraft(message(first, in: chat, "one", at: 1_000)),
            EventDraft(message(second, in: chat, "two", at: 2_000)),
            EventDraft(message(.generate(), in: chat, "three", at: 3_000)),
            EventDraft(.conversationRead(read)),  // names its message only: the store places it
        ])
        try store.append(deletion(second, in: chat))
        try store.append(message(.generate(), in: chat, "four", at: 4_000))
        let stored = try store.events(after: Cursor(log: store.logID, sequence: 0), limit: 10).compactMap { event in
            if case let .conversationRead(r) = event.payload { r } else { nil }
        }
        #expect(stored.map(\.upToSentAtMs) == [2_000])
        #expect(try store.conversation(chat)?.unreadCount == 2)
        let incremental = try store.projectionDump()
        try store.rebuildProjections()
        #expect(try store.projectionDump() == incremental)
        #expect(try store.conversation(chat)?.unreadCount == 2)
    }

    @Test func messagesArePagedByCursorNewestFirst() throws {
        let store = try Store.open(at: dir.store)
        let chat = ConversationID.generate()
        try store.append(conversationCreated(chat))
        let ids = (0..<7).map { _ in MessageID.generate() }
        try store.append(contentsOf: ids.enumerated().map { i, id in EventDraft(message(id, in: chat, "m\(i)", at: Int64(1000 * i))) })
        var texts: [String] = []
        var page = try store.messages(in: chat, limit: 3)
        texts += page.messages.map(\.text)
        while let next = page.next {
            #expect(MessagePageCursor(next.description) == next)
            page = try store.messages(in: chat, before: next, limit: 3)
            texts += page.messages.map(\.text)
        }
        #expect(texts == (0..<7).reversed().map { "m\($0)" })
        #expect(try store.message(ids[2])?.text == "m2")
    }

    @Test func fullTextSearchFindsEveryWordAndTakesOperatorsLiterally() throws {
        let store = try Store.open(at: dir.store)
        let chat = ConversationID.generate()
        try store.append(contentsOf: [
            EventDraft(conversationCreated(chat)),
            EventDraft(message(.generate(), in: chat, "lunch tomorrow at noon", at: 1)),
            EventDraft(message(.generate(), in: chat, "dinner tomorrow", at: 2)),
        ])
        #expect(try store.search("tomorrow").count == 2)
        #expect(try store.search("lunch tomorrow").map(\.text) == ["lunch tomorrow at noon"])
        #expect(try store.search("\"lunch OR dinner*").isEmpty)
        #expect(try store.search("   ").isEmpty)
    }

    @Test func editsReplaceTextAndDeletionsEraseEverywhere() throws {
        let store = try Store.open(at: dir.store)
        let chat = ConversationID.generate()
        let id = MessageID.generate()
        try store.append(conversationCreated(chat))
        let original = try store.append(message(id, in: chat, "secret plan", at: 1_000))
        var edit = MessageEdited()
        edit.messageID = Data(id.bytes)
        edit.conversationID = Data(chat.bytes)
        edit.text = "secret plan v2"
        edit.editedAtMs = 2_000
        let edited = try store.append(.messageEdited(edit))
        #expect(try store.message(id)?.text == "secret plan v2")
        #expect(try store.search("v2").count == 1)

        try store.append(deletion(id, in: chat))
        #expect(try store.message(id) == nil)
        #expect(try store.search("secret").isEmpty)
        #expect(try store.conversation(chat)?.unreadCount == 0)
        #expect(try store.event(at: original.sequence)?.payload == .erased(kind: original.payload.kind))
        #expect(try store.event(at: edited.sequence)?.payload == .erased(kind: edited.payload.kind))
    }

    @Test func contactsConsentAndPreferencesKeepTheLastWordInLogOrder() throws {
        let store = try Store.open(at: dir.store)
        func contact(_ id: AccountID, _ name: String) -> EventContent { .contactAdded(ContactEntry(account: id, displayName: name)) }
        func consent(_ account: AccountID, _ state: ConsentState) -> EventContent { .consentChanged(ConsentChange(subject: .account(account), state: state)) }
        func preference(_ key: String, _ value: String) -> EventContent { .preferenceChanged(PreferenceChange(key: key, value: Array(value.utf8))) }
        try store.append(contentsOf: [
            contact("bob", "Bob"), contact("carol", "Carol"), contact("bob", "Robert"), .contactRemoved("carol"),
            consent("bob", .allowed), consent("bob", .denied), preference("theme", "dark"), preference("theme", "light"),
        ].map { EventDraft($0) })
        #expect(try store.contacts() == [Contact(accountID: "bob", displayName: "Robert")])
        #expect(try store.consent(for: .account("bob")) == .denied)
        #expect(try store.consent(for: .account("nobody")) == .unknown)
        #expect(try store.preference("theme") == Data("light".utf8))
        #expect(try store.preference("font") == nil)
    }

    @Test func aConversationIsWritableWhenCreatedHereOrWithASessionWithAMember() throws {
        let store = try Store.open(at: dir.store)
        let mine = ConversationID.generate()
        try store.append(conversationCreated(mine, members: ["me", "bob"]))
        #expect(try store.isWritable(#require(try store.conversation(mine))), "this store created it")

        let elsewhere = TemporaryDirectory()
        let other = try Store.open(at: elsewhere.store)
        let chat = ConversationID.generate()
        try other.append(conversationCreated(chat, members: ["me", "bob"]))
        try store.importEvents(other.events(after: .start(of: other.logID), limit: 10))
        #expect(try !store.isWritable(#require(try store.conversation(chat))), "restored from another store, without sessions")
        try store.append(ratchetStep(stream: "s-carol", peer: "carol", step: 1, state: "k1"))
        #expect(try !store.isWritable(#require(try store.conversation(chat))))
        try store.append(ratchetStep(stream: "s-bob", peer: "bob", step: 1, state: "k1"))
        #expect(try store.isWritable(#require(try store.conversation(chat))))
    }

    @Test func supersededSessionStatesAreErasedAndNeverRolledBack() throws {
        let store = try Store.open(at: dir.store, options: StoreOptions(extensions: [MessagingExtension()]))
        let first = try store.append(ratchetStep(stream: "s", peer: "bob", step: 1, state: "chain-key-1"))
        let second = try store.append(ratchetStep(stream: "s", peer: "bob", step: 2, state: "chain-key-2"))
        #expect(try store.event(at: first.sequence)?.payload == .erased(kind: first.payload.kind))
        #expect(try store.event(at: second.sequence)?.payload == second.payload)

        // An older step copied from another device (an old backup) stays erased.
        let otherDir = TemporaryDirectory()
        let other = try Store.open(at: otherDir.store, options: StoreOptions(extensions: [MessagingExtension()]))
        let stale = try other.append(ratchetStep(stream: "s", peer: "bob", step: 1, state: "old"))
        try store.importEvents([stale])
        let imported = try store.event(at: try store.cursor().sequence)
        #expect(imported?.id == stale.id)
        #expect(imported?.payload == .erased(kind: stale.payload.kind))
    }

    @Test func importingIsIdempotentAndAdvancesTheVersionVector() throws {
        let source = try Store.open(at: dir.store)
        let chat = ConversationID.generate()
        try source.append(contentsOf: [EventDraft(conversationCreated(chat)), EventDraft(message(.generate(), in: chat, "hello", at: 5))])
        let events = try source.events(after: .start(of: source.logID), limit: 100)

        let targetDir = TemporaryDirectory()
        let target = try Store.open(at: targetDir.store)
        let first = try target.importEvents(events)
        #expect(first.allSatisfy { if case .appended = $0 { true } else { false } })
        let second = try target.importEvents(events)
        #expect(second == events.map { .duplicate($0.id) })
        #expect(try target.versionVector() == VersionVector([target.logID: 2, source.logID: 2]))
        #expect(try target.conversations().map(\.id) == [chat])
        #expect(try target.messages(in: chat).messages.map(\.text) == ["hello"])
    }

    @Test func unknownKindsAndFieldsFromANewerWriterAreKeptVerbatim() throws {
        let store = try Store.open(at: dir.store)
        // A newer writer's event: kind 99, and a message with an extra field 15.
        var newer = MessageContent()
        newer.messageID = Data(MessageID.generate().bytes)
        newer.conversationID = Data(ConversationID.generate().bytes)
        newer.text = "from the future"
        var bytes: [UInt8] = try newer.serializedBytes()
        bytes += [0x7A, 0x03, 0x61, 0x62, 0x63]  // field 15, length-delimited "abc"
        let origin = LogID.random()
        let foreign = [
            LogRecord(sequence: 1, id: EventID(origin: origin, sequence: 1), kind: 99, time: 0, subject: nil, effect: .none, sealed: false, payload: [1, 2, 3]),
            LogRecord(sequence: 2, id: EventID(origin: origin, sequence: 2), kind: 3, time: 0, subject: nil, effect: .none, sealed: false, payload: bytes),
        ].map { try! Event(record: $0) }
        try store.importEvents(foreign)

        let stored = try store.events(after: .start(of: store.logID), limit: 10)
        #expect(stored[0].payload == .unknown(kind: 99, bytes: [1, 2, 3]))
        guard case let .messageReceived(message) = stored[1].payload else { Issue.record("not a message"); return }
        let reencoded: [UInt8] = try message.serializedBytes()
        #expect(reencoded == bytes)
        #expect(stored[1].record.subject != nil)
    }

    @Test func aCorruptPayloadIsRefusedAndNothingChanges() throws {
        let store = try Store.open(at: dir.store)
        try store.append(conversationCreated(.generate()))
        let before = try store.cursor()
        let origin = LogID.random()
        let good = try Event(record: LogRecord(sequence: 1, id: EventID(origin: origin, sequence: 1), kind: 8, time: 0, subject: nil, effect: .none, sealed: false, payload: []))
        var shortID = MessageContent()
        shortID.messageID = Data([1, 2, 3])
        let bad = try Event(record: LogRecord(sequence: 2, id: EventID(origin: origin, sequence: 2), kind: 3, time: 0, subject: nil, effect: .none, sealed: false, payload: try shortID.serializedBytes()))
        #expect(throws: KeepsakeError.corruptEventPayload(id: bad.id, kind: 3)) { try store.importEvents([good, bad]) }
        #expect(try store.cursor() == before)
        #expect(throws: KeepsakeError.corruptEventPayload(id: EventID(origin: origin, sequence: 3), kind: 2)) {
            try Event(record: LogRecord(sequence: 3, id: EventID(origin: origin, sequence: 3), kind: 2, time: 0, subject: nil, effect: .none, sealed: false, payload: [0xFF, 0xFF, 0xFF]))
        }
    }

    @Test func cursorsFromAnotherLogOrBeyondTheHeadAreRefused() throws {
        let store = try Store.open(at: dir.store)
        try store.append(conversationCreated(.generate()))
        let foreign = Cursor(log: LogID.random(), sequence: 1)
        #expect(throws: KeepsakeError.cursorFromAnotherLog(cursor: foreign, storeLog: store.logID)) {
            try store.events(after: foreign, limit: 10)
        }
        let ahead = Cursor(log: store.logID, sequence: 5)
        #expect(throws: KeepsakeError.cursorBeyondHead(cursor: ahead, head: 1)) { try store.events(from: ahead) }
    }

    @Test func aDirectoryThatIsNotAStoreIsLeftAlone() throws {
        let path = dir.url.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: path, withIntermediateDirectories: true)
        try Data("jpeg".utf8).write(to: path.appendingPathComponent("cat.jpg"))
        #expect(throws: KeepsakeError.notAStore(path: path.path)) { try Store.open(at: path) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: path.path) == ["cat.jpg"])
    }

    /// A creation killed while writing the marker leaves only `STORE.partial`:
    /// the directory is still one to create the store in, not someone else's.
    @Test func aCreationKilledWhileWritingTheMarkerCreatesTheStoreNextTime() throws {
        let path = dir.url.appendingPathComponent("new")
        try FileManager.default.createDirectory(at: path, withIntermediateDirectories: true)
        try Data("keepsake-st".utf8).write(to: path.appendingPathComponent("STORE.partial"))
        let store = try Store.open(at: path)
        try store.append(conversationCreated(.generate()))
        let entries = try FileManager.default.contentsOfDirectory(atPath: path.path)
        #expect(entries.contains("STORE") && !entries.contains("STORE.partial"))

        try Data("jpeg".utf8).write(to: dir.url.appendingPathComponent("other/cat.jpg").creatingParent())
        try Data("keepsake-st".utf8).write(to: dir.url.appendingPathComponent("other/STORE.partial"))
        #expect(throws: KeepsakeError.notAStore(path: dir.url.appendingPathComponent("other").path)) {
            try Store.open(at: dir.url.appendingPathComponent("other"))
        }
    }

    @Test func aStoreFromANewerFormatIsRefused() throws {
        _ = try Store.open(at: dir.store)
        try Data("keepsake-store format 9\n".utf8).write(to: dir.store.appendingPathComponent("STORE"))
        #expect(throws: KeepsakeError.newerStoreFormat(path: dir.store.path, found: 9, supported: 2)) { try Store.open(at: dir.store) }
    }

    @Test func projectionsFromANewerSchemaAreRefusedUntouched() throws {
        do {
            let store = try Store.open(at: dir.store)
            try store.append(conversationCreated(.generate()))
        }
        let database = dir.store.appendingPathComponent("projections.sqlite")
        let queue = try DatabaseQueue(path: database.path)
        try queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('store.0099_future')") }
        let contents = { try queue.read { db in try Row.fetchAll(db, sql: "SELECT * FROM grdb_migrations UNION ALL SELECT id FROM conversations") } }
        let before = try contents()
        #expect(throws: KeepsakeError.projectionsFromNewerSchema(path: database.path, applied: ["store.0099_future"], known: ["store.0001_store"])) {
            try Store.open(at: dir.store)
        }
        #expect(try contents() == before)
    }

    @Test func anExtensionsTablesCatchUpFromTheLogWhenItJoinsLate() throws {
        let chat = ConversationID.generate()
        do {
            // Messaging's events reach a store without messaging as copies (a restore, a sync).
            let device = TemporaryDirectory()
            let source = try Store.open(at: device.store, options: StoreOptions(extensions: [MessagingExtension()]))
            try source.append(conversationCreated(chat, members: ["me", "bob"]))
            try source.append(ratchetStep(stream: "s-bob", peer: "bob", step: 1, state: "k1"))
            let store = try Store.open(at: dir.store)
            #expect(throws: KeepsakeError.undeclaredKind(7)) {
                try store.append(ratchetStep(stream: "s-bob", peer: "bob", step: 2, state: "k2"))
            }
            try store.importEvents(source.events(after: .start(of: source.logID), limit: 10))
        }
        // Another extension's migrations (a namespace this open does not know) are left alone.
        let queue = try DatabaseQueue(path: dir.store.appendingPathComponent("projections.sqlite").path)
        try queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('someone-else.0001_tables')") }
        let store = try Store.open(at: dir.store)
        try store.install(MessagingExtension())
        #expect(try store.contentDump(tables: [.sessions])["sessions"]?.count == 1, "the session the log holds, projected on install")
        try store.append(ratchetStep(stream: "s-carol", peer: "carol", step: 1, state: "k2"))
        #expect(try store.contentDump(tables: [.sessions])["sessions"]?.count == 2)
        let live = try store.projectionDump()
        try store.rebuildProjections()
        #expect(try store.projectionDump() == live)
        #expect(throws: KeepsakeError.invalidExtension(name: "store")) { try store.install(NamedExtension(name: "store")) }
    }

    @Test func anExtensionsKindsAreFiledAsDeclaredAndNoOneElsesKindsCanBeTaken() throws {
        // A "note" kind (200): its first byte names the note, its second the revision, which supersedes the previous one.
        let notes = ExtensionEventKind(kind: EventKind(rawValue: 200), name: "note-revised", element: .preferences) { bytes in
            guard bytes.count >= 2 else { return nil }
            return EventPlacement(subject: [0x20, bytes[0]], effect: .supersedes(step: UInt64(bytes[1])), sealed: true)
        }
        let store = try Store.open(at: dir.store, options: StoreOptions(extensions: [NamedExtension(name: "notes", eventKinds: [notes])]))
        let first = try store.append(.unknown(kind: 200, bytes: [7, 1, 0xaa]))
        let second = try store.append(.unknown(kind: 200, bytes: [7, 2, 0xbb]))
        #expect(try store.event(at: first.sequence)?.payload == .erased(kind: 200), "revision 1 is superseded")
        #expect(try store.event(at: second.sequence)?.payload == .unknown(kind: 200, bytes: [7, 2, 0xbb]))
        #expect(EventKind(rawValue: 200).description == "note-revised")
        #expect(try store.event(at: second.sequence)?.content == .opaque(EventKind(rawValue: 200)), "apps see an extension's events as opaque")

        let head = try store.cursor()
        #expect(throws: KeepsakeError.corruptEventPayload(id: nil, kind: 200)) { try store.append(.unknown(kind: 200, bytes: [7])) }
        #expect(throws: KeepsakeError.undeclaredKind(201)) { try store.append(.unknown(kind: 201, bytes: [1, 2])) }
        #expect(try store.cursor() == head, "nothing was appended")

        let taken = ExtensionEventKind(kind: .messageSent, name: "mine", element: .messages) { _ in EventPlacement() }
        #expect(throws: KeepsakeError.invalidEventKind(kind: 2, extension: "thief", reason: "the store defines it")) {
            try store.install(NamedExtension(name: "thief", eventKinds: [taken]))
        }
        #expect(throws: KeepsakeError.invalidEventKind(kind: 200, extension: "copycat", reason: "another extension declares it")) {
            try store.install(NamedExtension(name: "copycat", eventKinds: [notes]))
        }
        let vague = ExtensionEventKind(kind: EventKind(rawValue: 202), name: "vague", element: [.messages, .sessions]) { _ in EventPlacement() }
        #expect(throws: KeepsakeError.invalidEventKind(kind: 202, extension: "vague", reason: "its backup element is not exactly one known element")) {
            try store.install(NamedExtension(name: "vague", eventKinds: [vague]))
        }
        #expect(store.extensions.map(\.name) == ["notes"])
    }

    @Test func aSchemaOneDatabaseIsRebuiltFromTheLog() throws {
        let chat = ConversationID.generate()
        do {
            let store = try Store.open(at: dir.store)
            try store.append(conversationCreated(chat, title: "Kept"))
        }
        let database = dir.store.appendingPathComponent("projections.sqlite")
        try FileManager.default.removeItem(at: database)
        let legacy = try DatabaseQueue(path: database.path)
        try legacy.write { db in
            try db.execute(sql: """
                CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                INSERT INTO grdb_migrations VALUES ('0001_projections');
                CREATE TABLE conversations (id BLOB PRIMARY KEY, title TEXT);
                CREATE TABLE projection_state (id INTEGER PRIMARY KEY, log_id BLOB, applied_sequence INTEGER);
                CREATE VIRTUAL TABLE message_search USING fts5(text);
                """)
        }
        try legacy.close()
        let store = try Store.open(at: dir.store)
        #expect(try store.conversations().map(\.title) == ["Kept"])
        #expect(try store.check().isClean)
    }

    @Test func aGapBetweenLogAndProjectionsIsReplayedOnOpen() throws {
        let chat = ConversationID.generate()
        do {
            let store = try Store.open(at: dir.store)
            try store.append(conversationCreated(chat))
            // As if the process died after the log commit and before the projector's.
            var m = MessageContent()
            m.messageID = Data(MessageID.generate().bytes)
            m.conversationID = Data(chat.bytes)
            m.text = "survived"
            try store.log.append([RecordDraft(kind: 3, time: 0, subject: [1] + Array(m.messageID), sealed: true, payload: try m.serializedBytes())])
            #expect(try store.messages(in: chat).messages.isEmpty)
        }
        let reopened = try Store.open(at: dir.store)
        #expect(try reopened.messages(in: chat).messages.map(\.text) == ["survived"])
    }

    @Test func rebuildingGivesTheSameProjectionsAsIncrementalApplication() throws {
        let store = try Store.open(at: dir.store)
        try store.appendGenerated(messages: 3_000, conversations: 40)
        let incremental = try store.projectionDump()
        #expect(incremental["messages"]!.count > 2_800)
        try store.rebuildProjections()
        #expect(try store.projectionDump() == incremental)
    }

    @Test func eventsStreamCatchesUpThenFollowsLiveAppends() async throws {
        let store = try Store.open(at: dir.store)
        let chat = ConversationID.generate()
        try store.append(conversationCreated(chat))
        let stream = try store.events(from: .start(of: store.logID))
        var iterator = stream.makeAsyncIterator()
        #expect(try await iterator.next()?.sequence == 1)
        try store.append(message(.generate(), in: chat, "live", at: 1))
        let live = try await iterator.next()
        #expect(live?.sequence == 2)
        guard case let .messageReceived(m)? = live?.payload else { Issue.record("expected the live message"); return }
        #expect(m.text == "live")
    }

    @Test func projectionChangesAreAnnounced() async throws {
        let store = try Store.open(at: dir.store)
        let changes = store.projectionChanges()
        let chat = ConversationID.generate()
        try store.append(conversationCreated(chat))
        var iterator = changes.makeAsyncIterator()
        let change = await iterator.next()
        #expect(change?.cursor == Cursor(log: store.logID, sequence: 1))
        #expect(change?.conversations == [chat])
        #expect(change?.tables.contains(.conversations) == true)
    }

    @Test func theEmbeddedMigrationsMatchTheMigrationsFolder() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Migrations").standardized
        for (folder, embedded) in [("Store", ProjectionDatabase.storeMigrations), ("Messaging", MessagingExtension().migrations)] {
            let directory = root.appendingPathComponent(folder)
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
            #expect(embedded.map(\.identifier) == files.map { String($0.dropLast(4)) })
            for (migration, file) in zip(embedded, files) {
                #expect(migration.sql == (try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)), "run scripts/embed-migrations.sh")
            }
        }
    }
}

/// An extension with no tables, to test the names and event kinds a store accepts.
private struct NamedExtension: StoreExtension {
    let name: String
    var eventKinds: [ExtensionEventKind] = []
    var migrations: [ProjectionMigration] { [] }
    var tables: [ProjectedTable] { [] }
    func projector(for db: Database, bulk: Bool) -> any ExtensionProjector { NoTables() }

    struct NoTables: ExtensionProjector {
        mutating func apply(_ event: Event) throws {}
        mutating func finish() throws {}
        var changedTables: Set<ProjectedTable> { [] }
    }
}

private extension URL {
    /// This URL, after creating its parent directory.
    func creatingParent() throws -> URL {
        try FileManager.default.createDirectory(at: deletingLastPathComponent(), withIntermediateDirectories: true)
        return self
    }
}

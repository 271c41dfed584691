import Foundation
import Synchronization
import GRDB
import KeepsakeLog

/// Settings for `Store.open`.
public struct StoreOptions: Sendable {
    /// Sync every append to disk (default), or not at all for bulk loads.
    public var durability: Durability = .durable
    /// Create the store when the directory is missing or empty.
    public var create = true
    /// Initial LMDB map size; it grows on demand.
    public var initialMapSize = 1 << 30
    /// Events per projector transaction when catching up.
    public var projectionBatchSize = 65_536
    /// What to do with a damaged projection database (the log is the truth:
    /// `.setAside` keeps the damaged file and rebuilds from the log).
    public var damagedProjections = DamagedProjections.refuse
    /// Extensions whose tables and append policies the store keeps (messaging
    /// is one); more can join later with `Store.install(_:)`.
    public var extensions: [any StoreExtension] = []

    /// Durable appends, creating the store when needed, with `extensions`.
    public init(durability: Durability = .durable, create: Bool = true, extensions: [any StoreExtension] = []) {
        self.durability = durability
        self.create = create
        self.extensions = extensions
    }
}

/// A Keepsake store: the event log (the truth) and its SQLite projections.
///
/// Thread-safe. Many threads, and other processes, may read while one appends.
/// Every append returns after the events are in the log and the projections
/// reflect them; a crash in between is repaired on the next open by replaying
/// the gap. Directory layout: `STORE` (format marker), `log/` (LMDB and key
/// slots), `projections.sqlite`.
public final class Store: Sendable {
    /// The store folder's format (the `STORE` file): 2 names the store's log; 1 is read and upgraded.
    public static let formatVersion = 2

    /// The store's folder.
    public let directory: URL
    let log: EventLog
    let pool: DatabasePool
    private let batchSize: Int
    /// Rings after every append of this process (the event streams wait on it).
    private let appends = Broadcaster<Void>()
    let changeFeed = Broadcaster<ProjectionChange>()
    /// The extensions this store keeps, in the order they were installed.
    private let installed: Mutex<[any StoreExtension]>
    /// The event kinds they declare, by number.
    private let declaredKinds: Mutex<[UInt32: ExtensionEventKind]>

    /// The ID of this store's log: the origin of every event written here.
    public var logID: LogID { log.id }
    /// Where `open` moved a damaged projection database (`DamagedProjections.setAside`), or nil.
    public let setAsideProjections: URL?

    private init(directory: URL, log: EventLog, pool: DatabasePool, batchSize: Int, setAsideProjections: URL?, extensions: [any StoreExtension]) {
        self.directory = directory
        installed = Mutex(extensions)
        declaredKinds = Mutex(Self.kinds(of: extensions))
        self.setAsideProjections = setAsideProjections
        self.log = log
        self.pool = pool
        self.batchSize = batchSize
    }

    deinit {
        appends.finish()
        changeFeed.finish()
    }

    /// Opens the store in `directory`, creating it if allowed and the directory
    /// is missing or empty, then brings the projections up to the log's head.
    public static func open(at directory: URL, options: StoreOptions = StoreOptions()) throws(KeepsakeError) -> Store {
        try check(options.extensions)
        let marker = try StoreMarker.prepare(directory: directory, create: options.create)
        let log = try openLog(of: directory, marker: marker, options: options)
        let (pool, setAside) = try ProjectionDatabase.open(
            at: projectionsPath(of: directory), damaged: options.damagedProjections, extensions: options.extensions)
        let store = Store(
            directory: directory, log: log, pool: pool, batchSize: options.projectionBatchSize,
            setAsideProjections: setAside.map { URL(fileURLWithPath: $0) }, extensions: options.extensions)
        try store.settleProvisionalClaim()
        try store.repairProjections()
        try store.moveLegacyBackupRecords()
        for ext in options.extensions { try ext.prepare(store) }
        return store
    }

    /// Adds an extension to an open store: creates or updates its tables, brings
    /// them up to the log's head, and applies its append policy from now on.
    /// Installing one the store already keeps (by name) does nothing.
    public func install(_ newExtension: any StoreExtension) throws(KeepsakeError) {
        guard !extensions.contains(where: { $0.name == newExtension.name }) else { return }
        try Self.check(extensions + [newExtension])
        do {
            try ProjectionDatabase.migrate(pool, namespace: newExtension.name, newExtension.migrations)
        } catch {
            throw KeepsakeError(database: error, path: pool.path)
        }
        installed.withLock { list in
            if !list.contains(where: { $0.name == newExtension.name }) { list.append(newExtension) }
        }
        declaredKinds.withLock { $0 = Self.kinds(of: extensions) }
        try catchUpProjections()
        try newExtension.prepare(self)
    }

    /// The extensions this store keeps.
    public var extensions: [any StoreExtension] { installed.withLock { $0 } }

    /// The event kinds installed extensions declare, by number.
    var extensionKinds: [UInt32: ExtensionEventKind] { declaredKinds.withLock { $0 } }

    /// Checks that extensions have distinct, usable names and declare event
    /// kinds that are theirs alone, each of one known backup element.
    private static func check(_ extensions: [any StoreExtension]) throws(KeepsakeError) {
        var seen: Set<String> = [Projector.name]
        for ext in extensions where !seen.insert(ext.name).inserted || ext.name.isEmpty || ext.name.contains(".") {
            throw .invalidExtension(name: ext.name)
        }
        var claimed: Set<UInt32> = []
        for ext in extensions {
            for declared in ext.eventKinds {
                let kind = declared.kind.rawValue
                let reason: String? =
                    if kind == 0 || EventPayload.isStoreKind(kind) { "the store defines it" }
                    else if !claimed.insert(kind).inserted { "another extension declares it" }
                    else if declared.name.isEmpty { "its name is empty" }
                    else if !BackupElements.names.contains(where: { $0.1 == declared.element }) { "its backup element is not exactly one known element" }
                    else if let format = BackupSelection.formatElements[kind], format != declared.element {
                        "the backup format puts it in element \(format.names.joined())"
                    }
                    else { nil }
                if let reason { throw .invalidEventKind(kind: kind, extension: ext.name, reason: reason) }
            }
        }
    }

    private static func kinds(of extensions: [any StoreExtension]) -> [UInt32: ExtensionEventKind] {
        let declared = extensions.flatMap(\.eventKinds)
        ExtensionEventKind.register(declared)
        return ExtensionEventKind.byNumber(declared)
    }

    /// Opens the store's log: the one its marker names, never a new one in its
    /// place. A marker without a log ID (format 1, or a creation that stopped
    /// early) adopts the log it finds, or creates one when the store has never
    /// had projections either.
    private static func openLog(of directory: URL, marker: StoreMarker, options: StoreOptions) throws(KeepsakeError) -> EventLog {
        let logDirectory = directory.appendingPathComponent("log")
        try FileErrors.createDirectory(atPath: logDirectory.path)
        let hadProjections = FileManager.default.fileExists(atPath: projectionsPath(of: directory))
        let log: EventLog
        do {
            log = try EventLog(directory: logDirectory.path, options: LogOptions(
                durability: options.durability, initialMapSize: options.initialMapSize,
                create: marker.logID == nil && !hadProjections))
        } catch .missing(_, let reason) where marker.logID == nil && hadProjections {
            throw .log(.missing(path: logDirectory.path, reason: reason + ", yet the store has projections of one"))
        } catch {
            throw .log(error)
        }
        if let expected = marker.logID {
            guard log.id == expected else { throw .logReplaced(path: logDirectory.path, expected: expected, found: log.id) }
        } else {
            try StoreMarker(format: formatVersion, logID: log.id).write(in: directory)
        }
        return log
    }

    static func projectionsPath(of directory: URL) -> String {
        directory.appendingPathComponent("projections.sqlite").path
    }

    // MARK: - Appending

    /// Appends one new event and returns it as stored.
    @discardableResult
    public func append(_ content: EventContent, at time: Date = Date()) throws(KeepsakeError) -> Event {
        try append(EventDraft(content, at: time).payload, at: time)
    }

    /// Appends one new event given as the log stores it.
    @discardableResult
    package func append(_ payload: EventPayload, at time: Date = Date()) throws(KeepsakeError) -> Event {
        let logged = try logEvents([EventDraft(payload, at: time)])
        _ = try project(logged)
        guard let event = logged.events.first else { throw .log(.corruptRecord(sequence: 0, reason: "a new event was not stored")) }
        return event
    }

    /// Appends new events in one log transaction (all or none), then projects them.
    /// Throws `installationSuperseded` for events that act as the installation
    /// (sending, session steps, commits) once another store holds a newer generation.
    @discardableResult
    public func append(contentsOf events: [EventDraft]) throws(KeepsakeError) -> [AppendOutcome] {
        try project(try logEvents(events))
    }

    private func logEvents(_ events: [EventDraft]) throws(KeepsakeError) -> LoggedEvents {
        for ext in extensions { try ext.checkAppend(events, to: self) }
        let events = try placingReadMarkers(events)
        var drafts: [RecordDraft] = []
        drafts.reserveCapacity(events.count)
        let declared = extensionKinds
        for event in events { drafts.append(try event.recordDraft(declared: declared)) }
        return try logDrafts(drafts, payloads: events.map(\.payload))
    }

    /// Read events that name only their message get its sent time, from the
    /// batch or the projections, so the marker keeps its place once the message
    /// is deleted (a deletion erases the message's events from the log).
    private func placingReadMarkers(_ events: [EventDraft]) throws(KeepsakeError) -> [EventDraft] {
        guard events.contains(where: \.isUnplacedReadMarker) else { return events }
        var placed = events
        var batchMessages: [Data: (conversation: Data, sentAt: Int64)] = [:]
        for index in placed.indices {
            switch placed[index].payload {
            case let .messageSent(m), let .messageReceived(m):
                batchMessages[m.messageID] = (m.conversationID, m.sentAtMs)
            case var .conversationRead(r) where !r.hasUpToSentAtMs:
                var sentAt = batchMessages[r.upToMessageID].flatMap { $0.conversation == r.conversationID ? $0.sentAt : nil }
                if sentAt == nil { sentAt = try read { try Queries.sentTime(of: r.upToMessageID, in: r.conversationID, $0) } }
                guard let sentAt else { continue }
                r.upToSentAtMs = sentAt
                placed[index].payload = .conversationRead(r)
            default:
                break
            }
        }
        return placed
    }

    /// Copies events from another store (restore, sync), keeping their IDs.
    /// Events this store already holds are skipped; known kinds are checked and
    /// their log rules recomputed, unknown kinds are kept as they came, and
    /// erased events arrive erased (they keep their IDs, for deduplication).
    @discardableResult
    public func importEvents(_ events: [Event]) throws(KeepsakeError) -> [AppendOutcome] {
        try importDrafts(events.map(\.record.draft))
    }

    /// Imports copied events given as log drafts (see `importEvents`), under
    /// `claim` when the caller holds the log's provisional claim.
    @discardableResult
    func importDrafts(_ copies: [RecordDraft], under claim: ProvisionalClaim? = nil) throws(KeepsakeError) -> [AppendOutcome] {
        try project(try logCopies(copies, under: claim))
    }

    /// Appends copied events to the log only, and returns the new ones as events
    /// for the caller to project (see `importEvents` for the rules).
    func logCopies(_ copies: [RecordDraft], under claim: ProvisionalClaim? = nil) throws(KeepsakeError) -> LoggedEvents {
        var payloads: [EventPayload] = []
        let drafts = try checkedCopies(copies, payloads: &payloads)
        return try logDrafts(drafts, payloads: payloads, under: claim)
    }

    /// Appends drafts to the log in one transaction; `payloads` are their decoded
    /// payloads, so the new events need not be read back and decoded again.
    /// Without a `claim`, an append that meets a restore's provisional claim
    /// waits until the claim is kept or discarded (`settleProvisionalClaim`).
    private func logDrafts(
        _ drafts: [RecordDraft], payloads: [EventPayload], under claim: ProvisionalClaim? = nil
    ) throws(KeepsakeError) -> LoggedEvents {
        let result = try appendToLog(drafts, under: claim)
        appends.publish(())
        var events: [Event] = []
        events.reserveCapacity(drafts.count)
        for index in drafts.indices {
            guard case let .appended(sequence, id) = result.outcomes[index] else { continue }
            let erased = drafts[index].erased || result.storedErased.contains(sequence)
            let record = LogRecord(sequence: sequence, id: id, draft: drafts[index], erased: erased)
            events.append(Event(record: record, payload: erased ? .erased(kind: record.kind) : payloads[index]))
        }
        return LoggedEvents(outcomes: result.outcomes, events: events)
    }

    /// Appends drafts to the log; without a `claim`, waiting out a restore's provisional claim.
    private func appendToLog(
        _ drafts: [RecordDraft], under claim: ProvisionalClaim?
    ) throws(KeepsakeError) -> (outcomes: [AppendOutcome], storedErased: Set<UInt64>) {
        while true {
            do {
                return try log.appendDetailed(drafts, under: claim)
            } catch .provisionallyClaimed where claim == nil {
                if try !settleProvisionalClaim() { Thread.sleep(forTimeInterval: Self.claimPollInterval) }
            } catch {
                throw .log(error)
            }
        }
    }

    /// How often an append that waits for a restore's provisional claim looks again.
    static let claimPollInterval: TimeInterval = 0.02

    /// Ends a provisional claim whose restore died (nobody holds the store's
    /// backup lock): what it appended is discarded and the projections rebuilt.
    /// Returns false while a live restore holds the claim, true when none stands.
    @discardableResult
    func settleProvisionalClaim() throws(KeepsakeError) -> Bool {
        let standing: ProvisionalClaim?
        do { standing = try log.standingClaim() } catch { throw .log(error) }
        guard let claim = standing else { return true }
        guard let lock = try? BackupLock(store: directory) else { return false }
        defer { withExtendedLifetime(lock) {} }
        try discard(claim)
        return true
    }

    /// Takes back what a restore appended under `claim`, with its progress records, and empties the projections.
    func discard(_ claim: ProvisionalClaim) throws(KeepsakeError) {
        do { try log.discard(claim, clearing: [LocalTable<String, RestoreRecord>.restores.name]) } catch { throw .log(error) }
        try rebuildProjections()
    }

    /// Brings the projections up to date after an append: the new events are
    /// applied as they are when the projections stand right before them, and
    /// anything else (another process's appends) is replayed from the log.
    private func project(_ logged: LoggedEvents) throws(KeepsakeError) -> [AppendOutcome] {
        let head = try cursor()
        do {
            if let first = logged.events.first, let last = logged.events.last {
                let (change, everyoneApplied) = try write { db -> (ProjectionChange?, Bool) in
                    let standing = try standings(db)
                    let ready = standing.filter { $0.value == first.sequence - 1 }
                    guard !ready.isEmpty else { return (nil, false) }
                    var group = try ProjectorGroup(db, bulk: false, members: ready, extensions: extensions)
                    for event in logged.events { try group.apply(event) }
                    return (try group.finish(appliedUpTo: Cursor(log: log.id, sequence: last.sequence)), ready.count == standing.count)
                }
                if let change { publish(change) }
                if everyoneApplied && last.sequence == head.sequence { return logged.outcomes }
            }
            try catchUpProjections()
        } catch {
            throw .projectionsBehind(stored: head, reason: error.description)
        }
        return logged.outcomes
    }

    /// Where each projection (the store's and each extension's) stands in this
    /// store's log: 0 for one never applied, or applied from another log (see `repairProjections`).
    func standings(_ db: Database) throws -> [String: UInt64] {
        let cursors = try ProjectionCursors.all(db)
        var standing: [String: UInt64] = [:]
        for name in [Projector.name] + extensions.map(\.name) {
            standing[name] = cursors[name].map { $0.log == log.id ? $0.sequence : 0 } ?? 0
        }
        return standing
    }

    /// Every table of the store's projections and of its extensions'.
    var projectedTables: [ProjectedTable] { ProjectedTable.storeTables + extensions.flatMap(\.tables) }

    /// Copied events as this log must store them: the store's kinds and those
    /// installed extensions declare are checked, with their subject, effect and
    /// sealing recomputed; other kinds and erased events are kept as they came.
    /// `payloads` receives each decoded payload.
    private func checkedCopies(_ copies: [RecordDraft], payloads: inout [EventPayload]) throws(KeepsakeError) -> [RecordDraft] {
        let declared = extensionKinds
        var drafts = copies
        payloads.reserveCapacity(copies.count)
        for index in drafts.indices {
            let draft = drafts[index]
            let payload: EventPayload
            do { payload = draft.erased ? .erased(kind: draft.kind) : try EventPayload(kind: draft.kind, bytes: draft.payload) } catch {
                throw .corruptEventPayload(id: draft.id, kind: draft.kind)
            }
            payloads.append(payload)
            let placement: EventPlacement
            switch payload {
            case .erased:
                continue
            case let .unknown(kind, bytes):
                guard let declaration = declared[kind] else { continue }
                guard let placed = declaration.placement(bytes) else { throw .corruptEventPayload(id: draft.id, kind: kind) }
                placement = placed
            default:
                try payload.validate(id: draft.id)
                placement = EventPlacement(payload)
            }
            drafts[index].subject = placement.subject
            drafts[index].effect = placement.recordEffect
            drafts[index].sealed = placement.sealed
        }
        return drafts
    }

    // MARK: - Log positions and reading

    /// The position after this store's newest event.
    public func cursor() throws(KeepsakeError) -> Cursor {
        do { return try log.head() } catch { throw .log(error) }
    }

    /// For each origin log, the highest origin sequence this store holds.
    public func versionVector() throws(KeepsakeError) -> VersionVector {
        do { return try log.versionVector() } catch { throw .log(error) }
    }

    /// Checks that `cursor` names a position in this store's log.
    public func validate(_ cursor: Cursor) throws(KeepsakeError) {
        guard cursor.log == log.id else { throw .cursorFromAnotherLog(cursor: cursor, storeLog: log.id) }
        let head = try self.cursor().sequence
        guard cursor.sequence <= head else { throw .cursorBeyondHead(cursor: cursor, head: head) }
    }

    /// Up to `limit` events after `cursor`, in log order.
    public func events(after cursor: Cursor, limit: Int) throws(KeepsakeError) -> [Event] {
        try validate(cursor)
        return try readEvents(after: cursor.sequence, limit: limit)
    }

    /// The event at a local sequence, or nil outside 1...head.
    public func event(at sequence: UInt64) throws(KeepsakeError) -> Event? {
        guard sequence > 0 else { return nil }
        return try readEvents(after: sequence - 1, limit: 1).first { $0.sequence == sequence }
    }

    func readEvents(after sequence: UInt64, limit: Int) throws(KeepsakeError) -> [Event] {
        let records: [LogRecord]
        do { records = try log.records(after: sequence, limit: limit) } catch { throw .log(error) }
        var events: [Event] = []
        events.reserveCapacity(records.count)
        for record in records { events.append(try Event(record: record)) }
        return events
    }

    /// Every event after `cursor`: first those already in the log, then new ones
    /// as they are appended (by this process, or by another within `pollInterval`).
    public func events(from cursor: Cursor, pollInterval: Duration = .milliseconds(200)) throws(KeepsakeError) -> AsyncThrowingStream<Event, Error> {
        try validate(cursor)
        let appended = appends.subscribe()
        return AsyncThrowingStream { continuation in
            let task = Task {
                // Wake on this process's appends, and every pollInterval for other processes'.
                let wakeups = Wakeups(on: appended, every: pollInterval)
                var position = cursor.sequence
                var iterator = wakeups.stream.makeAsyncIterator()
                do {
                    while !Task.isCancelled {
                        let batch = try self.readEvents(after: position, limit: 1024)
                        for event in batch { continuation.yield(event) }
                        if let last = batch.last { position = last.sequence; continue }
                        guard await iterator.next() != nil else { break }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Announces a committed projection change.
    func publish(_ change: ProjectionChange) {
        changeFeed.publish(change)
    }

    /// Changes to the projections, announced after each projector transaction
    /// of this process commits.
    public func projectionChanges() -> AsyncStream<ProjectionChange> {
        changeFeed.subscribe()
    }

    // MARK: - Queries

    /// Conversations, most recent activity first, with unread counts.
    public func conversations(limit: Int? = nil) throws(KeepsakeError) -> [ConversationSummary] {
        try read { try Queries.conversations($0, limit: limit) }
    }

    /// One conversation's list entry, or nil when the store does not hold it.
    public func conversation(_ id: ConversationID) throws(KeepsakeError) -> ConversationSummary? {
        try read { try Queries.conversation($0, id: id) }
    }

    /// Account identifiers of a conversation's members.
    public func members(of id: ConversationID) throws(KeepsakeError) -> [AccountID] {
        try read { try Queries.members($0, of: id) }
    }

    /// A page of a conversation's messages, newest first. Pass the page's
    /// `next` back as `before` for the following (older) page.
    public func messages(in conversation: ConversationID, before: MessagePageCursor? = nil, limit: Int = 50) throws(KeepsakeError) -> MessagePage {
        try read { try Queries.messages($0, in: conversation, before: before, limit: limit) }
    }

    /// One message, or nil when the store does not hold it (never had it, or it was deleted).
    public func message(_ id: MessageID) throws(KeepsakeError) -> Message? {
        try read { try Queries.message($0, id: id) }
    }

    /// Messages containing every word of `text`, best matches first.
    public func search(_ text: String, limit: Int = 50) throws(KeepsakeError) -> [Message] {
        try read { try Queries.search($0, text: text, limit: limit) }
    }

    /// The address book, by display name.
    public func contacts() throws(KeepsakeError) -> [Contact] {
        try read(Queries.contacts)
    }

    /// The consent recorded for an account or `conversation:<id>`; `.unknown` when none.
    public func consent(for subject: ConsentSubject) throws(KeepsakeError) -> ConsentState {
        try read { try Queries.consent($0, for: subject.description) }
    }

    /// A preference's value, or nil when never set.
    public func preference(_ key: String) throws(KeepsakeError) -> Data? {
        try read { try Queries.preference($0, key) }
    }

    package func read<T>(_ body: (Database) throws -> T) throws(KeepsakeError) -> T {
        do { return try pool.read(body) } catch { throw KeepsakeError(database: error, path: pool.path) }
    }

    package func write<T>(_ body: (Database) throws -> T) throws(KeepsakeError) -> T {
        do { return try pool.write(body) } catch { throw KeepsakeError(database: error, path: pool.path) }
    }

    // MARK: - Projections

    /// Applies every log event the projections do not reflect yet, in
    /// transactions of `projectionBatchSize` events, each recording its cursor.
    func catchUpProjections() throws(KeepsakeError) {
        while true {
            let change = try projectBatch()
            guard let change else { return }
            publish(change)
        }
    }

    /// Applies the next batch of events to every projection behind the log's
    /// head, each from where it stands; nil when all are at the head.
    private func projectBatch() throws(KeepsakeError) -> ProjectionChange? {
        try write { db -> ProjectionChange? in
            let standing = try standings(db)
            let from = standing.values.min() ?? 0
            let events = try readEvents(after: from, limit: batchSize)
            guard let last = events.last else { return nil }
            var group = try ProjectorGroup(db, bulk: false, members: standing.filter { $0.value < last.sequence }, extensions: extensions)
            for event in events { try group.apply(event) }
            return try group.finish(appliedUpTo: Cursor(log: log.id, sequence: last.sequence))
        }
    }

    /// On open: projections built for another log, or ahead of this log, are
    /// rebuilt; otherwise the gap since the last projector commit is replayed.
    private func repairProjections() throws(KeepsakeError) {
        let cursors = try read(ProjectionCursors.all)
        let head = try cursor().sequence
        if cursors.values.contains(where: { $0.log != log.id || $0.sequence > head }) {
            try rebuildProjections()
        } else {
            try catchUpProjections()
        }
    }

    /// Drops every projection row (the store's and its extensions') and replays
    /// the whole log, in one transaction: readers see the old rows until the new ones are complete.
    public func rebuildProjections() throws(KeepsakeError) {
        try write { db in
            try Projector.clear(db)
            for table in extensions.flatMap(\.tables) { try db.execute(sql: "DELETE FROM \(table.rawValue.quotedDatabaseIdentifier)") }
            try db.execute(sql: "DELETE FROM projection_cursors")
            try replayLog(into: db)
        }
        publish(ProjectionChange(cursor: try cursor(), tables: Set(projectedTables), conversations: []))
    }

    /// Projects the log from its start (up to `end`, or its head) into the
    /// empty tables of `db` (the store's and its extensions'), in the caller's transaction.
    func replayLog(into db: Database, upTo end: UInt64 = .max) throws {
        try ProjectionDatabase.withBulkCache(db) {
            var position: UInt64 = 0
            var group = try bulkGroup(db)
            while position < end {
                let events = try readEvents(after: position, limit: Int(min(UInt64(batchSize), end - position)))
                guard let last = events.last else { break }
                for event in events { try group.apply(event) }
                position = last.sequence
            }
            _ = try group.finish(appliedUpTo: Cursor(log: log.id, sequence: position))
        }
    }

    /// A bulk projector group for every projection, all standing at the log's start.
    func bulkGroup(_ db: Database) throws -> ProjectorGroup {
        let members = Dictionary(uniqueKeysWithValues: ([Projector.name] + extensions.map(\.name)).map { ($0, UInt64(0)) })
        return try ProjectorGroup(db, bulk: true, members: members, extensions: extensions)
    }
}

extension KeepsakeError {
    /// Classifies an error of the projection database at `path`.
    init(database error: any Error, path: String) {
        switch error {
        case let error as KeepsakeError: self = error
        case let error as DatabaseError where error.resultCode == .SQLITE_FULL: self = .diskFull(path: path)
        case let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode):
            self = .projectionsDamaged(path: path, reason: error.message ?? "\(error.resultCode)")
        case let error as DatabaseError where [.SQLITE_PERM, .SQLITE_READONLY, .SQLITE_CANTOPEN].contains(error.resultCode):
            self = .cannotAccess(path: path, reason: error.message ?? "\(error.resultCode)")
        default: self = .database("\(error)")
        }
    }
}

/// Events just appended to the log: what happened to each draft, and the new events.
struct LoggedEvents: Sendable {
    let outcomes: [AppendOutcome]
    let events: [Event]
}

import Foundation
import Synchronization
import GRDB
import KeepsakeCrypto
import KeepsakeLog

/// Settings for `Store.restore`.
public struct RestoreOptions: Sendable {
    /// The key the files were made with.
    public var key: BackupKey
    /// Refuse files larger than this many bytes, before reading them; nil: no limit.
    public var sizeLimit: Int?
    /// Let a hard restore replace the installation this store already runs, and
    /// accept files of another account (or of none) than `expectedAccount`.
    public var force = false
    /// Accept only files signed by these Ed25519 public keys; nil: any valid signature.
    public var trustedSigners: [[UInt8]]?
    /// Accept only files whose credential names this account. Nil: the account
    /// the store belongs to, if it belongs to one (`Store.accountCredential()`);
    /// a store that belongs to none accepts files of any account.
    public var expectedAccount: AccountID?

    /// Restores files made with `key`, without a size limit, refusing a hard restore onto another installation.
    public init(key: BackupKey) { self.key = key }
}

/// Where a restore is; reported as it goes.
public enum RestoreProgress: Sendable, Equatable {
    /// Authenticating `file` (index in chain order): `chunk` chunks checked so far.
    /// Into an empty store this runs alongside applying, and is reported between applied chunks.
    case verifying(file: Int, chunk: Int)
    /// The conversation list and the newest messages are restored and visible.
    case headVisible
    /// Applying `file`: `chunk` chunks and `events` new events so far.
    case applying(file: Int, chunk: Int, events: Int)
    /// The whole restore's progress and time left, after each step above
    /// (verifying and applying each count for half of every file's bytes).
    case estimated(ProgressEstimate)
}

/// What `Store.restore` did.
public struct RestoreSummary: Sendable {
    /// The files, verified, in chain order.
    public let backups: [VerifiedBackup]
    /// Events new to this store (the rest were already here).
    public let appended: Int
    /// Events the store held already.
    public let duplicates: Int
    /// True when the store already held everything the files hold.
    public var nothingNew: Bool { appended == 0 }
    /// From the start of the restore until the conversation list and newest messages were usable.
    public let headVisibleAfter: Duration?
    /// How long the whole restore took.
    public let elapsed: Duration
}

extension Store {
    /// Restores backup files (a full backup and its incrementals, in any order, or
    /// incrementals that extend a backup restored here before) by replaying their
    /// events into the log, then the projections.
    ///
    /// A bad file changes nothing. Into a store that holds events, every file is
    /// verified in full before anything is applied. Into an empty store, the files
    /// are verified on another thread while they are applied, so the conversation
    /// list and newest messages show at once; until all are verified, other
    /// appends wait, and a bad file takes back everything the restore applied
    /// (`ProvisionalClaim`), leaving the store empty. Events already held are skipped (restoring twice, or after a
    /// sync, duplicates nothing) and a session's state is never rolled back. The
    /// restore records its progress: killed midway, running it again finishes it.
    public func restore(
        from files: [URL], options: RestoreOptions, progress: (RestoreProgress) -> Void = { _ in }
    ) throws(BackupError) -> RestoreSummary {
        try restore(from: files, options: options, stoppingWhen: { false }, progress: progress)
    }

    /// `restore`, asking `shouldStop` between chunks: a yes ends it with
    /// `BackupError.cancelled`, the store consistent (what was logged is
    /// projected) and the progress recorded, so running it again resumes. A
    /// restore into an empty store stopped before its files were verified
    /// takes back what it applied instead, and starts over when run again.
    func restore(
        from files: [URL], options: RestoreOptions, stoppingWhen shouldStop: @escaping @Sendable () -> Bool,
        progress: (RestoreProgress) -> Void
    ) throws(BackupError) -> RestoreSummary {
        let started = ContinuousClock.now
        let lock = try BackupLock(store: directory)
        defer { withExtendedLifetime(lock) {} }

        let chain = try BackupChain(files: files, sizeLimit: options.sizeLimit, known: { id in
            let record = try? self.record(id.description, in: .restores)
            return record?.fileHash
        }, allowMissingBases: false)
        if let trusted = options.trustedSigners,
           let stranger = chain.readers.first(where: { reader in !trusted.contains(reader.header.signer) }) {
            throw .untrustedSigner(publicKey: Hex.encode(stranger.header.signer))
        }
        if !options.force {
            // The account the caller names, else the store's own (read only when needed).
            var expected = options.expectedAccount
            if expected == nil { expected = try wrap { try accountCredential()?.account } }
            if let expected { try chain.check(account: expected) }
        }
        let hardSigner = chain.readers.first(where: { $0.header.kind == .hard })?.header.signer
        let replaced = try wrap { try installation() }.flatMap { current in hardSigner.map { current.publicKey != $0 } == true ? current : nil }
        if let replaced, !options.force { throw .storeHasInstallation(replaced.id) }
        let clock = ProgressClock(total: 2 * chain.readers.reduce(0) { $0 + $1.fileSize })
        let files = chain.readers.map { (url: $0.url, header: $0.header) }
        // Into an empty store the files are verified while they are applied, so
        // the conversation list shows at once; a bad file still changes nothing.
        let fresh = try wrap { try cursor().sequence } == 0
        let verification = try RestoreVerification(
            chain, key: options.key, extensionKinds: extensionKinds, into: log, empty: fresh,
            stoppingWhen: shouldStop, progress: progress, clock: clock)
        var appliedBytes = 0

        // Into an empty store, everything after the head is projected in one bulk
        // transaction, straight from the decoded events, while another thread
        // decrypts, decodes and logs the next chunks.
        var tally = ImportTally()
        var headVisibleAfter: Duration?
        var events: [BackupID: UInt64] = [:]
        var hashes: [BackupID: String] = [:]
        do throws(BackupError) {
            for (index, file) in files.enumerated() {
                let key = file.header.id.description
                let reader = try BackupReader(url: file.url, sizeLimit: options.sizeLimit)
                try reader.unlock(options.key)
                if verification.claim != nil { reader.rules = BackupContentRules(header: reader.header, extensionKinds: extensionKinds) }
                let header = Hex.encode(reader.headerHash)
                var record = try wrap { try self.record(key, in: .restores) }.flatMap { $0.header == header ? $0 : nil } ?? RestoreRecord(header: header)
                if let hash = record.fileHash {
                    appliedBytes += reader.fileSize
                    hashes[file.header.id] = hash
                    continue
                }
                var inHead = file.header.base == nil
                /// Accounts for one logged chunk: tally, recorded progress, reports.
                func account(_ chunk: LoggedChunk) throws(BackupError) {
                    defer { if chunk.endsHead { inHead = false } }
                    try verification.settle(progress: progress)
                    guard let outcomes = chunk.outcomes else { return }
                    tally.add(outcomes)
                    record.chunksApplied = chunk.index
                    try wrap { try setRecord(record, for: key, in: .restores) }
                    if chunk.endsHead && headVisibleAfter == nil {
                        headVisibleAfter = ContinuousClock.now - started
                        progress(.headVisible)
                    }
                    progress(.applying(file: index, chunk: chunk.index, events: tally.appended))
                    progress(.estimated(clock.estimate(done: verification.verifiedBytes + appliedBytes + chunk.bytesRead)))
                }
                while !(fresh && !inHead), let frames = try reader.nextChunk() {
                    guard !shouldStop() else { throw .cancelled }
                    let skip = reader.chunkIndex <= record.chunksApplied
                    let outcomes = skip ? nil : try wrap { try importDrafts(Self.drafts(in: frames), under: verification.claim) }
                    try account(LoggedChunk(
                        index: reader.chunkIndex, outcomes: outcomes, events: [], endsHead: frames.contains(.headEnd), bytesRead: reader.bytesRead))
                }
                if fresh && !inHead {
                    verification.startInBackground()
                    let chunks = logChunks(from: reader, after: record.chunksApplied, under: verification.claim)
                    defer { chunks.cancelAndWait() }
                    try bulkProjection { apply throws(BackupError) in
                        while !shouldStop(), let chunk = try wrap({ try chunks.take() }) {
                            for event in chunk.events { try apply(event) }
                            try account(chunk)
                        }
                    }
                    if shouldStop() {
                        // What the logging thread logged past the last projected chunk is projected now.
                        chunks.cancelAndWait()
                        try wrap { try catchUpProjections() }
                        throw .cancelled
                    }
                }
                appliedBytes += reader.fileSize
                events[file.header.id] = reader.events
                record.fileHash = Hex.encode(reader.fileHash())
                hashes[file.header.id] = record.fileHash
                try wrap { try setRecord(record, for: key, in: .restores) }
            }
            verification.startInBackground()
            try verification.settle(waiting: true, progress: progress)
        } catch {
            if let claim = verification.abandon() { try wrap { try discard(claim) } }
            throw error
        }
        let verified = verification.verified
        if let hard = verified.last(where: { $0.header.kind == .hard }) {
            try claimInstallation(signedBy: hard.header)
            if let replaced { try retire(replaced) }
        }
        return RestoreSummary(
            backups: verified.map { $0.with(events: events[$0.header.id] ?? $0.events, hash: hashes[$0.header.id]) },
            appended: tally.appended, duplicates: tally.duplicates,
            headVisibleAfter: headVisibleAfter, elapsed: ContinuousClock.now - started)
    }

    /// After a hard restore: this store now runs the installation that signed the
    /// backup, one generation above the newest claim it knows of.
    private func claimInstallation(signedBy header: BackupHeader) throws(BackupError) {
        let claim = try wrap {
            try read { db -> (id: Data, generation: Int64)? in
                guard let id = try Data.fetchOne(db, sql: "SELECT id FROM installations WHERE public_key = ?", arguments: [Data(header.signer)]) else {
                    return nil
                }
                let holder = try Row.fetchOne(db, sql: """
                    SELECT generation, log_id FROM installation_claims WHERE installation_id = ?
                    ORDER BY generation DESC, log_id DESC LIMIT 1
                    """, arguments: [id])
                if let holder, (holder["log_id"] as Data) == Data(self.logID.bytes) { return nil }
                return (id, (holder?["generation"] as Int64?) ?? 1)
            }
        }
        guard let claim else { return }
        var restored = InstallationRestored()
        restored.installationID = claim.id
        restored.generation = UInt64(claim.generation + 1)
        restored.restoredByLog = Data(logID.bytes)
        restored.backupID = Data(header.id.bytes)
        try wrap { try append(.installationRestored(restored)) }
    }

    /// After a forced hard restore of another installation: the one this store ran
    /// before is retired, its keys erased, so the store holds one installation's keys.
    private func retire(_ installation: Installation) throws(BackupError) {
        var retired = InstallationRetired()
        retired.installationID = Data(installation.id.bytes)
        retired.supersededByGeneration = 0
        try wrap { try append(.installationRetired(retired)) }
    }

    /// Starts a thread that reads, decodes and logs the rest of `reader`'s chunks
    /// (under `claim`, when the restore holds one; those after `applied` a killed
    /// run logged are read but not logged again)
    /// and hands them over in order. The reader belongs to that thread from now on.
    private func logChunks(from reader: BackupReader, after applied: Int, under claim: ProvisionalClaim?) -> BoundedQueue<LoggedChunk> {
        let queue = BoundedQueue<LoggedChunk>(capacity: 4)
        let source = UncheckedReader(reader: reader)
        Thread.detachNewThread {
            var failure: (any Error)?
            defer { queue.finish(throwing: failure) }
            do {
                while let frames = try source.reader.nextChunk() {
                    let index = source.reader.chunkIndex
                    var chunk = LoggedChunk(
                        index: index, outcomes: nil, events: [], endsHead: frames.contains(.headEnd), bytesRead: source.reader.bytesRead)
                    if index > applied {
                        let logged = try self.logCopies(Self.drafts(in: frames), under: claim)
                        chunk.outcomes = logged.outcomes
                        chunk.events = logged.events
                        // Deduplication looks up event IDs all over the log: keep its map from staying resident.
                        if index % Self.chunksBetweenPageReleases == 0 { self.log.releaseMappedPages() }
                    }
                    guard queue.put(chunk) else { return }
                }
            } catch {
                failure = error
            }
        }
        return queue
    }

    /// How often a long restore gives back the log's mapped pages (`EventLog.releaseMappedPages`).
    static let chunksBetweenPageReleases = 4

    static func drafts(in frames: [BackupFrame]) -> [RecordDraft] {
        frames.compactMap { if case let .event(draft) = $0 { draft } else { nil } }
    }

    /// Runs `body` inside one projection transaction with a bulk projector group
    /// (every projection from where it stands), handing it a function that
    /// applies new events in log order: events another writer logged between the
    /// restore's are read back and applied first. Then records the position
    /// reached, announces the change, and projects anything logged after it.
    private func bulkProjection(_ body: (_ apply: (Event) throws(BackupError) -> Void) throws(BackupError) -> Void) throws(BackupError) {
        do {
            try pool.write { db in
                try ProjectionDatabase.withBulkCache(db) {
                    let standing = try standings(db)
                    var position = standing.values.min() ?? 0
                    var group = try ProjectorGroup(db, bulk: true, members: standing, extensions: extensions)
                    func apply(_ event: Event) throws(BackupError) {
                        if event.sequence > position + 1 {
                            let between = try wrap { try readEvents(after: position, limit: Int(event.sequence - position - 1)) }
                            for other in between { try wrap { try group.apply(other) } }
                        }
                        try wrap { try group.apply(event) }
                        position = event.sequence
                    }
                    try body(apply)
                    _ = try group.finish(appliedUpTo: Cursor(log: log.id, sequence: position))
                }
            }
        } catch {
            throw BackupError(error)
        }
        publish(ProjectionChange(cursor: try wrap { try cursor() }, tables: Set(projectedTables), conversations: []))
        try wrap { try catchUpProjections() }
    }
}

/// One chunk of a backup, logged: the outcomes (nil when a killed run had logged
/// it already) and the new events to project.
struct LoggedChunk: Sendable {
    let index: Int
    var outcomes: [AppendOutcome]?
    var events: [Event]
    let endsHead: Bool
    /// Bytes of the file read up to the end of this chunk.
    let bytesRead: Int
}

/// Hands a reader to the thread that owns it from then on.
private struct UncheckedReader: @unchecked Sendable {
    let reader: BackupReader
}

/// Counts of a restore's new and already-held events.
private struct ImportTally {
    var appended = 0
    var duplicates = 0

    mutating func add(_ outcomes: [AppendOutcome]) {
        let new = outcomes.count { if case .appended = $0 { true } else { false } }
        appended += new
        duplicates += outcomes.count - new
    }
}

/// A restore's progress through one file (`LocalTable.restores`).
struct RestoreRecord: Codable, Sendable {
    /// BLAKE2b-256 of the file's header, which every chunk is bound to: the same file.
    let header: String
    var chunksApplied = 0
    /// BLAKE2b-256 of the whole file, set once the file is fully applied (incrementals name it).
    var fileHash: String?

    init(header: String) { self.header = header }
}

/// One step of a restore observed as an async sequence.
public enum RestoreUpdate: Sendable {
    case progress(RestoreProgress)
    /// The last element: what the restore did.
    case finished(RestoreSummary)
}

extension Store {
    /// Runs `restore` on its own thread and reports its progress as an async
    /// sequence that ends with `.finished`, or throws the restore's `BackupError`.
    ///
    /// A consumer that stops iterating, or whose task is cancelled, stops the
    /// restore within a chunk: it ends with the store consistent and its
    /// progress recorded, so restoring the same files again resumes it (see
    /// `restore` for a restore into an empty store stopped before its files were verified).
    public func restoring(from files: [URL], options: RestoreOptions) -> AsyncThrowingStream<RestoreUpdate, Error> {
        AsyncThrowingStream { continuation in
            let stop = StopFlag()
            continuation.onTermination = { _ in stop.raise() }
            Thread.detachNewThread {
                do {
                    let summary = try self.restore(
                        from: files, options: options, stoppingWhen: { stop.isRaised },
                        progress: { continuation.yield(.progress($0)) })
                    continuation.yield(.finished(summary))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
    }
}

/// Set once, from any thread: the consumer of a restore went away.
private final class StopFlag: Sendable {
    private let raised = Atomic<Bool>(false)

    func raise() { raised.store(true, ordering: .relaxed) }
    var isRaised: Bool { raised.load(ordering: .relaxed) }
}

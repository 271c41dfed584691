import Foundation
import GRDB
import KeepsakeCrypto
import KeepsakeLog

/// Settings for `Store.backup`.
public struct BackupOptions: Sendable {
    /// Hard (keys and sessions too) or soft (no secrets).
    public var kind: BackupKind
    /// What the file is encrypted with.
    public var key: BackupKey
    /// Extend the last backup this store made of the same kind and selection
    /// (only the events logged since), instead of a full snapshot.
    public var incremental = false
    /// The element kinds to include (limited to what `kind` allows).
    public var elements: BackupElements = .hard
    /// Only these conversations' events (contacts, consent and preferences are kept); empty: all.
    public var conversations: [ConversationID] = []
    /// Only conversations of these kinds (empty: every kind). A selection by kind
    /// also covers conversations created later: incrementals of a direct-only
    /// chain carry the direct conversations started since.
    public var conversationKinds: Set<ConversationKind> = []
    /// Plaintext bytes per chunk before compression.
    public var chunkSize = 1 << 20
    /// The chunk cipher; AES-256-GCM where the CPU has it, else XChaCha20-Poly1305.
    public var cipher: BackupCipher = .preferred
    /// Compress chunks with zstd where that makes them smaller.
    public var compress = true
    /// The file name; default `keepsake-<kind>-<YYYYMMDD-HHMMSS>-<last 6 of installation>.ksbak`.
    public var fileName: String?
    /// Conversations whose newest messages lead a full backup, so a restore shows them first.
    public var headConversations = 20
    /// Newest messages per head conversation.
    public var headMessages = 50
    /// Whether later incremental backups of the same kind and selection may
    /// extend this one. Off for one-off exports (history sync answers), whose
    /// files are handed over and deleted.
    public var startsChain = true

    /// A full backup of `kind` under `key`, with every element the kind allows.
    public init(kind: BackupKind, key: BackupKey) {
        self.kind = kind
        self.key = key
    }
}

/// What `Store.estimateBackup` found: what a backup with the same options would write now.
public struct BackupEstimate: Sendable {
    /// Soft or hard.
    public let kind: BackupKind
    /// The backup an incremental would extend; nil for a full one.
    public let base: BackupID?
    /// The source log's position it would start after.
    public let fromSequence: UInt64
    /// The source log's position it would go up to.
    public let toSequence: UInt64
    /// Events it would hold.
    public let events: UInt64
    /// Those events by element name (`messages`, `contacts`, ...).
    public let eventsByElement: [String: UInt64]
    /// Encrypted chunks it would have.
    public let chunks: Int
    /// Bytes of event frames before compression and encryption.
    public let plaintextBytes: Int
    /// The file's size in bytes.
    public let fileBytes: Int
}

/// What a backup decided before writing (see `Store.plan`).
private struct BackupPlan {
    let selection: BackupSelection
    let recordKey: String
    let base: BackupRecord?
    let installation: Installation
    let signer: SigningKey
    let credential: AccountCredential?
    let logID: LogID
    let head: UInt64
    let to: VersionVector

    /// The header of a file written now under this plan.
    func header(_ options: BackupOptions, keyCheck: [UInt8], salt: [UInt8], ops: UInt64, mem: UInt64) -> BackupHeader {
        let now = Date()
        var header = BackupHeader(
            kind: options.kind, cipher: options.cipher, compressed: options.compress, keySource: options.key.source,
            id: .generate(at: now), createdAt: now, sourceLog: logID, signer: signer.publicKey, credential: credential,
            base: base.map { (BackupID($0.id)!, Hex.decode($0.hash)!) }, chunkSize: UInt32(options.chunkSize),
            fileSalt: Random.bytes(32), keyCheck: keyCheck, passphraseSalt: salt, opsLimit: ops, memLimit: mem,
            fromSequence: base?.toSequence ?? 0, toSequence: head, elements: selection.elements,
            conversations: options.conversations.sorted(), from: base?.vector ?? VersionVector(), to: to)
        header.conversationKinds = options.conversationKinds
        return header
    }
}

/// What `Store.backup` wrote.
public struct BackupSummary: Sendable {
    /// The file written.
    public let file: URL
    /// Its header.
    public let header: BackupHeader
    /// BLAKE2b-256 of the whole file, hex: the next incremental names it.
    public let hash: String
    /// Events in the file.
    public let events: UInt64
    /// The file's size.
    public let fileBytes: Int
    /// Bytes of the event frames before compression and encryption.
    public let plaintextBytes: Int
}

extension Store {
    /// Writes a backup of this store's log into `directory` (a snapshot up to the
    /// current head, or with `incremental` the events since the last backup of the
    /// same selection) and returns what it wrote. One backup or restore runs at a time.
    /// `progress` hears, as the log is read, how far the backup has come and the time it may still take.
    public func backup(
        into directory: URL, options: BackupOptions, progress: (ProgressEstimate) -> Void = { _ in }
    ) throws(BackupError) -> BackupSummary {
        let lock = try BackupLock(store: self.directory)
        defer { withExtendedLifetime(lock) {} }
        let plan = try plan(options)
        let secret: (key: SecureBytes, salt: [UInt8], ops: UInt64, mem: UInt64)
        do { secret = try options.key.keyForWriting() } catch let error as BackupError { throw error } catch { throw .store(.crypto("\(error)")) }
        let header = plan.header(options, keyCheck: BackupFile.keyCheck(secret.key), salt: secret.salt, ops: secret.ops, mem: secret.mem)
        let name = options.fileName ?? Self.defaultFileName(kind: options.kind, at: header.createdAt, installation: plan.installation.id)
        let writer = try BackupWriter(url: Self.unusedURL(directory, name), header: header, signer: plan.signer, key: secret.key)
        try writeSelected(writer, plan: plan, options: options, progress: progress)
        let hash = try writer.finish()
        if options.startsChain {
            let record = BackupRecord(
                id: header.id.description, hash: Hex.encode(hash), toSequence: plan.head, vector: plan.to, keySource: options.key.source)
            try wrap { try setRecord(record, for: plan.recordKey, in: .lastBackups) }
        }
        return BackupSummary(
            file: writer.url, header: header, hash: Hex.encode(hash), events: writer.events,
            fileBytes: writer.fileBytes, plaintextBytes: writer.plaintextBytes)
    }

    /// Writes one archive per conversation: a backup of each conversation alone
    /// (its creation, members, messages and read markers, with the contacts,
    /// consent and preferences every selection keeps), each its own chain. With
    /// `incremental`, each extends the conversation's last archive, or is full
    /// when it has none. `options.conversations` and `fileName` are set for each.
    public func backupEachConversation(into directory: URL, options: BackupOptions) throws(BackupError) -> [BackupSummary] {
        let conversations = try wrap { try read { db in try Data.fetchAll(db, sql: "SELECT id FROM conversations ORDER BY id") } }
        let installation = try wrap { try signingKey() }.0.id
        var summaries: [BackupSummary] = []
        for id in conversations.compactMap({ ConversationID(bytes: $0) }) {
            var each = options
            each.conversations = [id]
            if !options.conversationKinds.isEmpty, let kind = try wrap({ try conversation(id) })?.kind,
               !options.conversationKinds.contains(kind) {
                continue
            }
            let name = options.fileName ?? Self.defaultFileName(kind: options.kind, at: Date(), installation: installation)
            each.fileName = (name as NSString).deletingPathExtension + "-conversation-\(id.description.prefix(12)).ksbak"
            do {
                summaries.append(try backup(into: directory, options: each))
            } catch .noBaseForIncremental {
                each.incremental = false
                summaries.append(try backup(into: directory, options: each))
            }
        }
        return summaries
    }

    /// What `backup(into:options:)` would write now, without writing, uploading
    /// or deriving a key: the events by element and the file's size. Chunks are
    /// packed and compressed as the real backup would, so the size is exact
    /// unless the store changes before the backup runs.
    public func estimateBackup(options: BackupOptions) throws(BackupError) -> BackupEstimate {
        let plan = try plan(options)
        let zeros = [UInt8](repeating: 0, count: 16)
        let header = plan.header(options, keyCheck: zeros, salt: zeros, ops: options.key.source == .passphrase ? PasswordKey.defaultOpsLimit : 0,
                                 mem: options.key.source == .passphrase ? PasswordKey.defaultMemLimit : 0)
        let estimator = BackupWriter(estimating: header)
        try writeSelected(estimator, plan: plan, options: options)
        _ = try estimator.finish()
        var byElement: [String: UInt64] = [:]
        for (kind, count) in estimator.eventsByKind {
            byElement[plan.selection.element(ofKind: kind).names.first ?? "unknown-kinds", default: 0] += count
        }
        return BackupEstimate(
            kind: options.kind, base: header.base?.id, fromSequence: header.fromSequence, toSequence: header.toSequence,
            events: estimator.events, eventsByElement: byElement, chunks: estimator.chunks,
            plaintextBytes: estimator.plaintextBytes, fileBytes: estimator.fileBytes)
    }

    /// Everything a backup decides before it writes: the selection, the base it
    /// extends, the signer and the log position it goes up to.
    private func plan(_ options: BackupOptions) throws(BackupError) -> BackupPlan {
        guard options.chunkSize >= 1024, options.chunkSize <= Int(BackupFile.maxChunkPlaintext) else {
            throw .invalidChunkSize(options.chunkSize)
        }
        var selection = BackupSelection(kind: options.kind, elements: options.elements, conversations: options.conversations, extensionKinds: extensionKinds)
        selection.conversationKinds = options.conversationKinds
        selection.kindOfConversation = conversationKinds()
        let recordKey = Self.lastBackupKey(options.kind, selection)
        var base: BackupRecord?
        if options.incremental {
            guard let last = try wrap({ try record(recordKey, in: .lastBackups) }) else { throw .noBaseForIncremental }
            base = last
        }
        if let base, let baseSource = base.keySource.flatMap(BackupKeySource.init(rawValue:)), baseSource != options.key.source {
            throw .chainKeySource(base: baseSource, given: options.key.source)
        }
        let (installation, signer) = try wrap { try signingKey() }
        return BackupPlan(
            selection: selection, recordKey: recordKey, base: base, installation: installation, signer: signer,
            credential: try wrap { try accountCredential() }, logID: logID,
            head: try wrap { try cursor().sequence }, to: try wrap { try versionVector() })
    }

    /// Writes the selected events: for a full backup the head first, then the rest in log order.
    private func writeSelected(
        _ writer: BackupWriter, plan: BackupPlan, options: BackupOptions, progress: (ProgressEstimate) -> Void = { _ in }
    ) throws(BackupError) {
        var headSequences: Set<UInt64> = []
        if plan.base == nil {
            headSequences = try writeHead(writer, selection: plan.selection, upTo: plan.head, options: options)
            try writer.add(.headEnd)
            try writer.endChunk()
        }
        let start = plan.base?.toSequence ?? 0
        let clock = ProgressClock(total: Int(plan.head - start))
        try writeEvents(writer, after: start, upTo: plan.head, selection: plan.selection, skipping: headSequences, kinds: {
            plan.selection.includes(kind: $0)
        }, progress: { position in progress(clock.estimate(done: Int(position - start))) })
    }

    /// Writes the head: the most recently active conversations (their creation
    /// events) and their newest messages, in log order, so a restore can show the
    /// conversation list's first screen before the rest arrives. Returns the
    /// sequences it wrote; the body skips them.
    private func writeHead(_ writer: BackupWriter, selection: BackupSelection, upTo head: UInt64, options: BackupOptions) throws(BackupError) -> Set<UInt64> {
        guard selection.elements.contains(.conversations) else { return [] }
        let withMessages = selection.elements.contains(.messages)
        let sequences = try wrap {
            try read { db -> [UInt64] in
                let conversations = try Row.fetchAll(
                    db, sql: "SELECT id, kind, created_sequence FROM conversations ORDER BY last_activity_at DESC, id DESC LIMIT ?",
                    arguments: [options.headConversations])
                return try conversations.filter { row in
                    (selection.conversations.isEmpty || selection.conversations.contains(row["id"]))
                        && (selection.conversationKinds.isEmpty || ConversationKind(rawValue: row["kind"]).map(selection.conversationKinds.contains) == true)
                }.flatMap { row in
                    let messages = withMessages ? try Int64.fetchAll(
                        db, sql: "SELECT sequence FROM messages WHERE conversation_id = ? ORDER BY sent_at DESC, id DESC LIMIT ?",
                        arguments: [row["id"] as Data, options.headMessages]) : []
                    return ([row["created_sequence"] as Int64] + messages).map(UInt64.init)
                }
            }
        }.filter { $0 <= head }.sorted()
        for sequence in sequences {
            guard let record = try wrap({ try log.record(at: sequence) }) else { continue }
            try writer.add(.event(record.draft))
        }
        return Set(sequences)
    }

    /// Writes, in log order, the selected events with `after` < sequence <= `head`
    /// whose kind `kinds` accepts (checked before unsealing), except `skipping`.
    private func writeEvents(
        _ writer: BackupWriter, after start: UInt64, upTo head: UInt64, selection: BackupSelection,
        skipping: Set<UInt64> = [], kinds: (UInt32) -> Bool, progress: (_ position: UInt64) -> Void
    ) throws(BackupError) {
        var position = start
        progress(start)
        while position < head {
            let records = try wrap { try log.records(after: position, limit: 4096, including: kinds) }
            guard let last = records.last else { break }
            for record in records where record.sequence <= head && !skipping.contains(record.sequence) {
                if try wrap({ try selection.includes(record) }) { try writer.add(.event(record.draft)) }
            }
            position = last.sequence
            if position < head { progress(position) }
        }
        progress(head)
    }

    static func defaultFileName(kind: BackupKind, at date: Date, installation: InstallationID) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "keepsake-\(kind)-\(formatter.string(from: date))-\(installation.description.suffix(6)).ksbak"
    }

    /// `directory/name`, or with `-2`, `-3`... before the extension when taken: a backup never replaces another.
    static func unusedURL(_ directory: URL, _ name: String) -> URL {
        let base = (name as NSString).deletingPathExtension, ext = (name as NSString).pathExtension
        var candidate = directory.appendingPathComponent(name)
        var n = 2
        while FileManager.default.fileExists(atPath: candidate.path) || FileManager.default.fileExists(atPath: candidate.path + ".partial") {
            candidate = directory.appendingPathComponent("\(base)-\(n)" + (ext.isEmpty ? "" : ".\(ext)"))
            n += 1
        }
        return candidate
    }

    static func lastBackupKey(_ kind: BackupKind, _ selection: BackupSelection) -> String {
        let conversations = selection.conversations.sorted { $0.lexicographicallyPrecedes($1) }.reduce(into: [UInt8]()) { $0 += $1 }
        let key = "\(kind).\(selection.elements.rawValue).\(Hex.encode(Blake2b.hash(conversations, length: 16)))"
        return selection.conversationKinds.isEmpty ? key : key + ".kinds-\(BackupHeader.kindBits(selection.conversationKinds))"
    }

    /// Looks up conversations' kinds in the projections, each once per backup.
    private func conversationKinds() -> (Data) -> ConversationKind? {
        let cache = KindCache()
        return { id in
            if let known = cache.kinds[id] { return known }
            let kind: ConversationKind? = (try? self.read { db in
                try Int.fetchOne(db, sql: "SELECT kind FROM conversations WHERE id = ?", arguments: [id])
            })?.flatMap(ConversationKind.init(rawValue:))
            cache.kinds[id] = kind
            return kind
        }
    }

    /// Runs a store or log operation, reporting its failure as a backup error.
    @discardableResult
    func wrap<T>(_ body: () throws -> T) throws(BackupError) -> T {
        do { return try body() } catch { throw BackupError(error) }
    }
}

/// The last backup a store made of one selection: what the next incremental extends (`LocalTable.lastBackups`).
struct BackupRecord: Codable, Sendable {
    let id: String
    let hash: String
    let toSequence: UInt64
    let entries: [String: UInt64]
    /// What the backup was sealed with (`BackupKeySource` raw value); nil in records written before it was kept.
    let keySource: UInt8?

    init(id: String, hash: String, toSequence: UInt64, vector: VersionVector, keySource: BackupKeySource) {
        self.id = id
        self.hash = hash
        self.toSequence = toSequence
        entries = Dictionary(uniqueKeysWithValues: vector.entries.map { ($0.key.hex, $0.value) })
        self.keySource = keySource.rawValue
    }

    var vector: VersionVector {
        VersionVector(Dictionary(uniqueKeysWithValues: entries.compactMap { key, value in LogID(hex: key).map { ($0, value) } }))
    }
}

/// Conversation kinds looked up during one backup (the backup runs on one thread).
private final class KindCache {
    var kinds: [Data: ConversationKind?] = [:]
}

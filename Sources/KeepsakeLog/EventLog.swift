import Foundation
import Synchronization
import KeepsakeCrypto

/// How hard the log works to keep acknowledged appends across a power loss.
public enum Durability: Sendable, Equatable {
    /// Every append is synced to disk before it returns (the default).
    case durable
    /// Nothing is synced: a crash of the machine (not of the process) may lose
    /// recent appends or corrupt the log. Only for bulk loads that can be redone.
    case unsafeNoSync
}

/// The AEAD a log seals erasable payloads with (see `LogOptions.sealingCipher`).
public typealias SealingCipher = SingleUseAEAD.Cipher

/// Settings for opening an `EventLog`.
public struct LogOptions: Sendable {
    /// Sync every append to disk (default), or not at all for bulk loads.
    public var durability: Durability = .durable
    /// The initial LMDB map size; the map doubles whenever it fills up.
    public var initialMapSize: Int = 1 << 30
    /// The cipher new sealed payloads use. Records keep the cipher they were
    /// sealed with, so a log can hold both. Defaults to AES-256-GCM where the CPU
    /// accelerates it (about 2.5x faster on short payloads), else ChaCha20-Poly1305.
    public var sealingCipher: SealingCipher = .preferred
    /// Create an empty log when the directory holds none. Without it, a missing
    /// or empty log is `LogError.missing`, never silently a new log.
    public var create = true

    /// Settings for opening a log.
    public init(
        durability: Durability = .durable, initialMapSize: Int = 1 << 30, sealingCipher: SealingCipher = .preferred,
        create: Bool = true
    ) {
        self.durability = durability
        self.initialMapSize = initialMapSize
        self.sealingCipher = sealingCipher
        self.create = create
    }
}

/// What happened to one appended draft.
public enum AppendOutcome: Sendable, Equatable {
    /// Stored at `sequence` in this log.
    case appended(sequence: UInt64, id: EventID)
    /// The log already held an event with this ID; nothing changed.
    case duplicate(EventID)
}

/// The append-only event log: LMDB databases plus the key slot file.
///
/// Databases: `meta` (format, log ID, next key slot), `events` (local sequence →
/// record), `origins` (foreign event ID → local sequence), `vector` (origin →
/// highest origin sequence held), `subjects` (subject + sequence, for erasure),
/// `erased` (erased subjects), `steps` (subject → its current step), `scrub`
/// (key slots to zero after erasure), and one `local.<name>` database per kind of
/// this device's bookkeeping (`LocalTable`: never copied to another store or a
/// backup). `local` held that bookkeeping under string keys before; its values
/// move to the typed tables when their owners open. docs/LOG-FORMAT.md has the bytes.
public final class EventLog: Sendable {
    /// The log format this version writes (docs/LOG-FORMAT.md).
    public static let formatVersion: UInt32 = 1
    /// The log's random identity: the origin of every event written here.
    public let id: LogID
    /// The log's folder.
    public let directory: String
    /// How appends reach the disk.
    public let durability: Durability
    /// The cipher this log seals new payloads with.
    public let cipher: SealingCipher
    let env: LMDBEnvironment
    private let slots: KeySlotFile
    let db: Databases
    /// The device-local tables opened so far (`LocalTable`), by name.
    private let localDatabases = Mutex<[String: LMDBDatabase]>([:])
    /// Key slots of committed erasures that this process has zeroed since (and
    /// synced, when durable): the next append clears their `scrub` entries
    /// without zeroing and syncing them a second time.
    let scrubbedSlots = Mutex<Set<UInt64>>([])

    struct Databases: Sendable {
        let meta, events, origins, vector, subjects, erased, steps, scrub, local: LMDBDatabase
    }

    /// Opens the log in `directory`, creating an empty log there if it holds
    /// none and `options.create` allows it. The data file is checked before it
    /// is mapped (`LMDBFileCheck`), and the key slot file against the slots the
    /// log has handed out, so damage is an error, never a crash or lost events.
    public init(directory: String, options: LogOptions = LogOptions()) throws(LogError) {
        self.directory = directory
        self.durability = options.durability
        guard options.sealingCipher.isAvailable else {
            throw LogError.crypto(.cipherUnavailable(options.sealingCipher.description))
        }
        self.cipher = options.sealingCipher
        try Self.checkDataFile(directory: directory, create: options.create)
        let environment: LMDBEnvironment
        do {
            environment = try LMDBEnvironment(
                path: directory, mapSize: options.initialMapSize, maxDatabases: 32,
                durable: options.durability == .durable)
        } catch {
            throw LogError(error, path: directory)
        }
        env = environment
        do {
            func open(_ name: String) throws -> LMDBDatabase { try environment.openDatabase(name) }
            db = Databases(
                meta: try open("meta"), events: try open("events"), origins: try open("origins"),
                vector: try open("vector"), subjects: try open("subjects"), erased: try open("erased"),
                steps: try open("steps"), scrub: try open("scrub"), local: try open("local"))
        } catch {
            throw LogError(error, path: directory)
        }
        do {
            let (id, created) = try Self.readOrCreateIdentity(env: env, meta: db.meta, directory: directory, create: options.create)
            self.id = id
            let meta = db.meta
            let slotCount = try environment.read { txn in try txn.value(MetaKey.nextSlot, in: meta).map { UInt64(bigEndianBytes: $0) } ?? 0 }
            slots = try KeySlotFile(path: directory + "/keys.slots", slotsInUse: slotCount, create: created || slotCount == 0)
        } catch {
            throw LogError(error, path: directory)
        }
        try finishPendingScrubs()
    }

    /// Checks `data.mdb` before LMDB maps it: a missing or empty file is a
    /// missing log unless one may be created, and a damaged one is refused.
    private static func checkDataFile(directory: String, create: Bool) throws(LogError) {
        let path = directory + "/data.mdb"
        guard access(path, F_OK) == 0 else {
            if create { return }
            throw LogError.missing(path: directory, reason: "there is no data.mdb")
        }
        switch LMDBFileCheck.damage(of: path) {
        case nil: return
        case .empty? where create: return
        case .empty?: throw LogError.missing(path: directory, reason: "data.mdb is empty")
        case .notLMDB? where create: throw LogError.notALog(path: directory, reason: "data.mdb is not an LMDB file")
        case let .unreadable(code)?: throw LogError.io(operation: "read the log", path: path, errno: code)
        case let damage?: throw LogError.damaged(path: path, reason: damage.description)
        }
    }

    /// The log's ID, created with the log when the file is new (and allowed);
    /// also says whether it was created just now.
    private static func readOrCreateIdentity(
        env: LMDBEnvironment, meta: LMDBDatabase, directory: String, create: Bool
    ) throws -> (LogID, created: Bool) {
        try env.write { txn in
            let format = try txn.value(MetaKey.format, in: meta).map { UInt32(bigEndianBytes: $0) }
            let stored = try txn.value(MetaKey.logID, in: meta)
            let empty = try txn.count(meta) == 0
            switch (format, stored) {
            case let (format?, _) where format > formatVersion:
                throw LogError.newerFormat(path: directory, found: format, supported: formatVersion)
            case let (_?, bytes?):
                guard let id = LogID(bytes: bytes) else { throw LogError.damaged(path: directory, reason: "its log ID is not 16 bytes") }
                return (id, false)
            case (nil, nil) where empty && create:
                let id = LogID.random()
                try txn.put(MetaKey.format, formatVersion.bigEndianBytes, in: meta)
                try txn.put(MetaKey.logID, id.bytes, in: meta)
                return (id, true)
            case (nil, nil) where empty:
                throw LogError.missing(path: directory, reason: "data.mdb holds no log")
            default:
                throw LogError.notALog(path: directory, reason: "no log identity")
            }
        }
    }

    // MARK: - Appending

    /// Appends events in one write transaction: all of them or none.
    ///
    /// Drafts without an ID become new events of this log. Drafts with an ID
    /// already held are skipped (idempotent merge). Effects apply as they come:
    /// superseded steps and erased subjects lose their payloads, and their key
    /// slots are zeroed after the commit.
    @discardableResult
    public func append(_ drafts: [RecordDraft]) throws(LogError) -> [AppendOutcome] {
        try appendDetailed(drafts).outcomes
    }

    /// Like `append`, and also says which appended events were stored already
    /// erased (their subject was erased, or a newer step was held), so a caller
    /// projecting them directly treats them as the log does. `claim` must be the
    /// `ProvisionalClaim` standing on the log when one does (else
    /// `provisionallyClaimed`); appends under a claim may be discarded with it.
    public func appendDetailed(
        _ drafts: [RecordDraft], under claim: ProvisionalClaim? = nil
    ) throws(LogError) -> (outcomes: [AppendOutcome], storedErased: Set<UInt64>) {
        do { return try appendBatch(drafts, under: claim) } catch { throw LogError(error, path: directory) }
    }

    private func appendBatch(_ drafts: [RecordDraft], under claim: ProvisionalClaim?) throws -> (outcomes: [AppendOutcome], storedErased: Set<UInt64>) {
        let sealedCount = drafts.reduce(0) { $0 + ($1.sealed ? 1 : 0) }
        let keyBytes = KeySlotFile.slotSize
        let keys = try SecureBytes.random(count: sealedCount * keyBytes)
        let slotImage = try SecureBytes(count: sealedCount * keyBytes)
        var erasedSlots: [UInt64] = []
        var storedErased: Set<UInt64> = []
        let outcomes = try env.write { txn in
            if let standing = try txn.value(MetaKey.provisional, in: db.meta), standing != claim?.bytes {
                throw LogError.provisionallyClaimed(path: directory)
            }
            var batch = AppendBatch(log: self, txn: txn, keys: keys, slotImage: slotImage)
            try batch.drainScrubs()
            let result = try batch.run(drafts)
            try batch.writeSlotImage()
            erasedSlots = batch.erasedSlots
            storedErased = batch.storedErased
            return result
        }
        if !erasedSlots.isEmpty {
            try slots.zero(slots: erasedSlots)
            if durability == .durable { try slots.sync() }
            scrubbedSlots.withLock { $0.formUnion(erasedSlots) }
        }
        return (outcomes, storedErased)
    }

    /// Zeroes key slots whose erasure committed but whose scrub did not finish (a crash in between).
    private func finishPendingScrubs() throws(LogError) {
        let pending = try readTransaction { txn in try txn.count(db.scrub) }
        if pending > 0 { _ = try appendDetailed([], under: try standingClaim()) }
    }

    // MARK: - Reading

    /// The position after the last event: the log's head.
    public func head() throws(LogError) -> Cursor {
        Cursor(log: id, sequence: try readTransaction { txn in try lastSequence(txn) })
    }

    /// For each origin log, the highest origin sequence held (this log's entry is its head).
    public func versionVector() throws(LogError) -> VersionVector {
        try readTransaction { txn -> VersionVector in
            var vector = VersionVector()
            vector.advance(id, to: try lastSequence(txn))
            try txn.scan(db.vector) { k, v in
                vector.advance(LogID(bytes: k)!, to: UInt64(bigEndianBytes: v))
                return true
            }
            return vector
        }
    }

    /// Up to `limit` records with sequence > `sequence`, in log order, payloads
    /// unsealed. Records whose kind `include` rejects are skipped before unsealing
    /// and do not count towards `limit`.
    public func records(
        after sequence: UInt64, limit: Int, including include: (UInt32) -> Bool = { _ in true }
    ) throws(LogError) -> [LogRecord] {
        let key = try scratchKey()
        return try readTransaction { txn -> Result<[LogRecord], LogError> in
            var out: [LogRecord] = []
            out.reserveCapacity(min(limit, 4096))
            var failure: LogError?
            try txn.scan(db.events, from: sequenceKey(sequence + 1)) { k, v in
                guard out.count < limit else { return false }
                guard v.count >= 8, include(v.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian) else { return true }
                switch self.decodeRecord(sequence: UInt64(bigEndianBytes: k), bytes: Array(v), key: key) {
                case let .success(record): out.append(record)
                case let .failure(error): failure = error; return false
                }
                return true
            }
            return failure.map { .failure($0) } ?? .success(out)
        }.get()
    }

    /// The record at local `sequence`, or nil outside 1...head.
    public func record(at sequence: UInt64) throws(LogError) -> LogRecord? {
        guard sequence > 0 else { return nil }
        return try records(after: sequence - 1, limit: 1).first.flatMap { $0.sequence == sequence ? $0 : nil }
    }

    /// The local sequence of the event with this ID, or nil when the log does not hold it.
    public func sequence(of eventID: EventID) throws(LogError) -> UInt64? {
        try readTransaction { txn in
            guard eventID.origin == id else {
                return try txn.value(originKey(eventID), in: db.origins).map { UInt64(bigEndianBytes: $0) }
            }
            let last = try lastSequence(txn)
            return eventID.sequence > 0 && eventID.sequence <= last ? eventID.sequence : nil
        }
    }

    /// The newest step held for a subject with superseding events, with its sequence.
    public func currentStep(of subject: [UInt8]) throws(LogError) -> (sequence: UInt64, step: UInt64)? {
        try readTransaction { txn in
            try txn.withValue(subject, in: db.steps) { v in
                let entry = StepEntry(v)
                return (entry.sequence, entry.step)
            }
        }
    }

    /// The LMDB database of a device-local table, opened (and created) on first use.
    func localDatabase(_ name: String) throws(LogError) -> LMDBDatabase {
        if let open = localDatabases.withLock({ $0[name] }) { return open }
        do {
            let database = try env.openDatabase(name)
            localDatabases.withLock { $0[name] = database }
            return database
        } catch {
            throw LogError(error, path: directory)
        }
    }

    /// Gives back the resident pages of the log's memory map (`LMDBEnvironment.releaseMappedPages`).
    public func releaseMappedPages() {
        env.releaseMappedPages()
    }

    /// Flushes appends made in `.unsafeNoSync` mode to disk.
    public func sync() throws(LogError) {
        do {
            try env.sync()
            try slots.sync()
        } catch {
            throw LogError(error, path: directory)
        }
    }

    // MARK: - Internals shared with AppendBatch

    func lastSequence(_ txn: LMDBTransaction) throws -> UInt64 {
        try txn.withLast(db.events) { k, _ in UInt64(bigEndianBytes: k) } ?? 0
    }

    var databases: Databases { db }
    var keySlots: KeySlotFile { slots }

    func scratchKey() throws(LogError) -> SecureBytes {
        do { return try SecureBytes(count: KeySlotFile.slotSize) } catch { throw LogError(error, path: directory) }
    }

    /// Decodes a stored record and unseals its payload with its key slot.
    func decodeRecord(sequence: UInt64, bytes: [UInt8], key: SecureBytes) -> Result<LogRecord, LogError> {
        let stored: RecordCodec.Stored
        switch RecordCodec.decode(bytes) {
        case let .success(s): stored = s
        case let .failure(f): return .failure(.corruptRecord(sequence: sequence, reason: f.reason))
        }
        var payload: [UInt8]?
        if stored.flags.contains(.erased) {
            payload = nil
        } else if stored.flags.contains(.sealed) {
            do {
                try key.withUnsafeMutableBytes { try slots.read(slot: stored.keySlot, into: $0) }
                // A zeroed key means the record was erased (its key destroyed).
                payload = try key.withUnsafeBytes { k -> [UInt8]? in
                    guard k.contains(where: { $0 != 0 }) else { return nil }
                    return try stored.header[RecordCodec.associatedDataRange].withUnsafeBytes { ad in
                        try stored.body.withUnsafeBytes { body in
                            try SingleUseAEAD.open(body, associatedData: ad, key: k, cipher: stored.flags.cipher)
                        }
                    }
                }
            } catch CryptoError.cipherUnavailable(let name) {
                return .failure(.cipherUnavailable(sequence: sequence, cipher: name))
            } catch is CryptoError {
                return .failure(.corruptRecord(sequence: sequence, reason: "sealed payload does not authenticate with key slot \(stored.keySlot)"))
            } catch {
                return .failure(LogError(error, path: directory))
            }
        } else {
            payload = Array(stored.body)
        }
        return .success(LogRecord(
            sequence: sequence, id: stored.id, kind: stored.kind, time: stored.time,
            subject: stored.subject, effect: stored.effect, sealed: stored.flags.contains(.sealed), payload: payload))
    }

    func readTransaction<R>(_ body: (LMDBTransaction) throws -> R) throws(LogError) -> R {
        do { return try env.read(body) } catch { throw LogError(error, path: directory) }
    }
}

/// Keys of the `meta` database.
enum MetaKey {
    static let format = Array("format".utf8)
    static let logID = Array("log-id".utf8)
    static let nextSlot = Array("next-key-slot".utf8)
    static let provisional = Array("provisional".utf8)
}

func sequenceKey(_ sequence: UInt64) -> [UInt8] { sequence.bigEndianBytes }

func originKey(_ id: EventID) -> [UInt8] { id.origin.bytes + id.sequence.bigEndianBytes }

/// Key of the `subjects` index: the subject's length, the subject, then the
/// sequence (omitted for the prefix that finds all of a subject's events).
func subjectKey(_ subject: [UInt8], _ sequence: UInt64?) -> [UInt8] {
    var key = [UInt8]()
    key.reserveCapacity(subject.count + 10)
    key.appendBE(UInt16(subject.count))
    key.append(contentsOf: subject)
    if let sequence { key.appendBE(sequence) }
    return key
}

extension LMDBTransaction {
    func withValue<R>(_ key: [UInt8], in db: LMDBDatabase, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        try key.withUnsafeBytes { k in try withValue(k, in: db, body) }
    }

    func scan(_ db: LMDBDatabase, from start: [UInt8], _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        try start.withUnsafeBytes { s in try scan(db, from: s, body) }
    }

    @discardableResult
    func delete(_ key: [UInt8], in db: LMDBDatabase) throws -> Bool {
        try key.withUnsafeBytes { k in try delete(k, in: db) }
    }

    func value(_ key: [UInt8], in db: LMDBDatabase) throws -> [UInt8]? {
        try key.withUnsafeBytes { k in try value(k, in: db) }
    }

    func put(_ key: [UInt8], _ value: [UInt8], in db: LMDBDatabase, append: Bool = false) throws {
        try key.withUnsafeBytes { k in
            try value.withUnsafeBytes { v in try put(k, v, in: db, append: append) }
        }
    }
}

import KeepsakeCrypto

/// The work of one `EventLog.append` call inside its write transaction.
///
/// Runs again from scratch if LMDB retries the transaction after growing the
/// map, so it keeps all its state here and none in the log.
struct AppendBatch {
    let log: EventLog
    let txn: LMDBTransaction
    /// One random single-use key per sealed draft, in draft order.
    let keys: SecureBytes
    /// The keys as they go into consecutive slots from `firstSlot`.
    let slotImage: SecureBytes
    private(set) var erasedSlots: [UInt64] = []
    /// Sequences of events this batch stored already erased.
    private(set) var storedErased: Set<UInt64> = []
    private var firstSlot: UInt64 = 0
    private var nextSlot: UInt64 = 0
    private var last: UInt64 = 0
    private var vector: [LogID: UInt64] = [:]
    /// False while the `erased` database is empty, which saves a lookup per event.
    private var mayHoldErasedSubjects = true

    private var db: EventLog.Databases { log.databases }
    private static let keyBytes = KeySlotFile.slotSize

    init(log: EventLog, txn: LMDBTransaction, keys: SecureBytes, slotImage: SecureBytes) {
        self.log = log
        self.txn = txn
        self.keys = keys
        self.slotImage = slotImage
    }

    /// Zeroes the key slots left in `scrub` by an earlier erasure and forgets
    /// them. Slots this process zeroed right after that erasure committed (the
    /// usual case) are only forgotten; the others were left by a crash or another process.
    mutating func drainScrubs() throws {
        var pending: [UInt64] = []
        try txn.scan(db.scrub) { k, _ in
            pending.append(UInt64(bigEndianBytes: k))
            return true
        }
        guard !pending.isEmpty else { return }
        let unscrubbed = log.scrubbedSlots.withLock { scrubbed in pending.filter { scrubbed.remove($0) == nil } }
        if !unscrubbed.isEmpty {
            try log.keySlots.zero(slots: unscrubbed)
            if log.durability == .durable { try log.keySlots.sync() }
        }
        try txn.clear(db.scrub)
    }

    mutating func run(_ drafts: [RecordDraft]) throws -> [AppendOutcome] {
        last = try log.lastSequence(txn)
        mayHoldErasedSubjects = try txn.count(db.erased) > 0
        firstSlot = try txn.value(MetaKey.nextSlot, in: db.meta).map { UInt64(bigEndianBytes: $0) } ?? 0
        nextSlot = firstSlot
        var outcomes: [AppendOutcome] = []
        outcomes.reserveCapacity(drafts.count)
        var sealedOrdinal = 0
        for draft in drafts {
            let keyIndex = draft.sealed ? sealedOrdinal : nil
            if draft.sealed { sealedOrdinal += 1 }
            outcomes.append(try append(draft, keyIndex: keyIndex))
        }
        for (origin, sequence) in vector {
            let held = try txn.value(origin.bytes, in: db.vector).map { UInt64(bigEndianBytes: $0) } ?? 0
            if sequence > held { try txn.put(origin.bytes, sequence.bigEndianBytes, in: db.vector) }
        }
        if nextSlot != firstSlot {
            try txn.put(MetaKey.nextSlot, nextSlot.bigEndianBytes, in: db.meta)
        }
        for slot in erasedSlots { try txn.put(slot.bigEndianBytes, [], in: db.scrub) }
        return outcomes
    }

    /// Writes this batch's keys to their slots (before the commit that references them).
    func writeSlotImage() throws {
        let used = Int(nextSlot - firstSlot) * Self.keyBytes
        guard used > 0 else { return }
        try slotImage.withUnsafeBytes { image in
            try log.keySlots.write(keys: UnsafeRawBufferPointer(rebasing: image[0..<used]), firstSlot: firstSlot)
        }
        if log.durability == .durable { try log.keySlots.sync() }
    }

    private mutating func append(_ draft: RecordDraft, keyIndex: Int?) throws -> AppendOutcome {
        let id: EventID
        if let given = draft.id, given.origin != log.id {
            if try txn.value(originKey(given), in: db.origins) != nil { return .duplicate(given) }
            id = given
        } else if let given = draft.id {
            guard given.sequence <= last, given.sequence > 0 else { throw LogError.eventClaimsThisLog(given) }
            return .duplicate(given)
        } else {
            id = EventID(origin: log.id, sequence: last + 1)
        }
        let sequence = last + 1
        let erasedOnArrival = try draft.erased || arrivesErased(draft)
        if erasedOnArrival { storedErased.insert(sequence) }
        var slot: UInt64?
        if keyIndex != nil && !erasedOnArrival {
            slot = nextSlot
            nextSlot += 1
        }
        if !erasedOnArrival { try applyEffect(of: draft, at: sequence, slot: slot) }

        let flags: RecordCodec.Flags = slot != nil ? .sealed(with: log.cipher) : erasedOnArrival ? .erased : []
        let size = RecordCodec.size(flags: flags, subject: draft.subject, effect: draft.effect, payloadBytes: draft.payload.count)
        try withUnsafeBytes(of: sequence.bigEndian) { key in
            try txn.put(key, reserving: size, in: db.events, append: true) { out in
                func encode(keySlot: UInt64, sealingKey: UnsafeRawBufferPointer?) throws {
                    try RecordCodec.encode(
                        id: id, kind: draft.kind, time: draft.time, flags: flags, keySlot: keySlot, subject: draft.subject,
                        effect: draft.effect, payload: draft.payload, sealingKey: sealingKey, into: out)
                }
                if let keyIndex, let slot {
                    try withSealingKey(keyIndex, slot: slot) { try encode(keySlot: slot, sealingKey: $0) }
                } else {
                    try encode(keySlot: 0, sealingKey: nil)
                }
            }
        }
        if id.origin != log.id {
            try txn.put(originKey(id), sequence.bigEndianBytes, in: db.origins)
            vector[id.origin] = max(vector[id.origin] ?? 0, id.sequence)
        }
        last = sequence
        return .appended(sequence: sequence, id: id)
    }

    /// Whether the draft must be stored already erased: its subject was erased,
    /// or it is a step no newer than its subject's current step.
    private func arrivesErased(_ draft: RecordDraft) throws -> Bool {
        guard let subject = draft.subject, !subject.isEmpty else {
            guard draft.effect == .none else { throw LogError.effectWithoutSubject(kind: draft.kind) }
            return false
        }
        switch draft.effect {
        case .none:
            return try mayHoldErasedSubjects && txn.withValue(subject, in: db.erased, { _ in true }) != nil
        case let .supersedes(step):
            if try mayHoldErasedSubjects && txn.withValue(subject, in: db.erased, { _ in true }) != nil { return true }
            return try txn.withValue(subject, in: db.steps) { StepEntry($0).step >= step } ?? false
        case .erasesSubject:
            return false
        }
    }

    /// Applies the draft's effect on its subject and indexes it. `slot` is the
    /// draft's key slot when sealed: erasing it later only needs that slot.
    private mutating func applyEffect(of draft: RecordDraft, at sequence: UInt64, slot: UInt64?) throws {
        guard let subject = draft.subject, !subject.isEmpty else { return }
        switch draft.effect {
        case .none:
            try subjectKey(subject, sequence).withUnsafeBytes { key in
                var slotValue = (slot ?? 0).bigEndian
                try withUnsafeBytes(of: &slotValue) { value in
                    try txn.put(key, slot == nil ? UnsafeRawBufferPointer(rebasing: value[0..<0]) : value, in: db.subjects)
                }
            }
        case .supersedes(let step):
            if let current = try txn.withValue(subject, in: db.steps, StepEntry.init) {
                try erase(current.sequence, slot: current.slot)
            }
            try txn.put(subject, StepEntry(sequence: sequence, step: step, slot: slot).bytes, in: db.steps)
        case .erasesSubject:
            let prefix = subjectKey(subject, nil)
            var held: [(sequence: UInt64, slot: UInt64?)] = []
            try txn.scan(db.subjects, from: prefix) { key, value in
                guard key.count == prefix.count + 8, key.starts(with: prefix) else { return false }
                held.append((UInt64(bigEndianBytes: key.suffix(8)), value.isEmpty ? nil : UInt64(bigEndianBytes: value)))
                return true
            }
            for target in held {
                try erase(target.sequence, slot: target.slot)
                try txn.delete(subjectKey(subject, target.sequence), in: db.subjects)
            }
            // A stream of steps (a session) keeps only its newest step, in `steps`.
            if let current = try txn.withValue(subject, in: db.steps, StepEntry.init) {
                try erase(current.sequence, slot: current.slot)
                _ = try txn.delete(subject, in: db.steps)
            }
            try txn.put(subject, sequence.bigEndianBytes, in: db.erased)
            mayHoldErasedSubjects = true
        }
    }

    /// Lends key `keyIndex` of this batch to `body`, after placing it in the slot image at `slot`.
    private func withSealingKey<R>(_ keyIndex: Int, slot: UInt64, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let keyRange = keyIndex * Self.keyBytes..<(keyIndex + 1) * Self.keyBytes
        let imageOffset = Int(slot - firstSlot) * Self.keyBytes
        return try keys.withUnsafeBytes { all in
            let key = UnsafeRawBufferPointer(rebasing: all[keyRange])
            slotImage.withUnsafeMutableBytes { image in
                image.baseAddress!.advanced(by: imageOffset).copyMemory(from: key.baseAddress!, byteCount: Self.keyBytes)
            }
            return try body(key)
        }
    }

    /// Erases the record at `sequence`. A sealed record loses its key (zeroed
    /// after the commit, or never written when sealed in this batch); an
    /// unsealed one is rewritten without its payload.
    private mutating func erase(_ sequence: UInt64, slot: UInt64?) throws {
        if let slot {
            if slot >= firstSlot && slot < nextSlot {
                let offset = Int(slot - firstSlot) * Self.keyBytes
                slotImage.withUnsafeMutableBytes { secureZero(UnsafeMutableRawBufferPointer(rebasing: $0[offset..<offset + Self.keyBytes])) }
            } else {
                erasedSlots.append(slot)
            }
            return
        }
        let key = sequenceKey(sequence)
        guard let bytes = try txn.value(key, in: db.events) else { return }
        guard case let .success(stored) = RecordCodec.decode(bytes) else {
            throw LogError.corruptRecord(sequence: sequence, reason: "cannot decode the record an erasure targets")
        }
        guard !stored.flags.contains(.erased) else { return }
        let rewritten = try RecordCodec.encode(
            id: stored.id, kind: stored.kind, time: stored.time, flags: .erased, keySlot: 0,
            subject: stored.subject, effect: stored.effect, payload: [])
        try txn.put(key, rewritten, in: db.events)
    }
}

/// A `steps` value: the current step of a subject, where it is, and its key slot.
struct StepEntry {
    let sequence: UInt64
    let step: UInt64
    let slot: UInt64?

    init(sequence: UInt64, step: UInt64, slot: UInt64?) {
        self.sequence = sequence
        self.step = step
        self.slot = slot
    }

    init(_ bytes: UnsafeRawBufferPointer) {
        sequence = UInt64(bigEndianBytes: bytes.prefix(8))
        step = UInt64(bigEndianBytes: bytes.dropFirst(8).prefix(8))
        slot = bytes.count >= 24 ? UInt64(bigEndianBytes: bytes.dropFirst(16)) : nil
    }

    var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(24)
        out.appendBE(sequence)
        out.appendBE(step)
        if let slot { out.appendBE(slot) }
        return out
    }
}

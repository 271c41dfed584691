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
    private var firstSlot: UInt64 = 0
    private var nextSlot: UInt64 = 0
    private var last: UInt64 = 0
    private var vector: [LogID: UInt64] = [:]

    private var db: EventLog.Databases { log.databases }
    private static let keyBytes = KeySlotFile.slotSize

    init(log: EventLog, txn: LMDBTransaction, keys: SecureBytes, slotImage: SecureBytes) {
        self.log = log
        self.txn = txn
        self.keys = keys
        self.slotImage = slotImage
    }

    /// Zeroes the key slots left in `scrub` by an earlier erasure and forgets them.
    mutating func drainScrubs() throws {
        var pending: [UInt64] = []
        try txn.scan(db.scrub) { k, _ in
            pending.append(UInt64(bigEndianBytes: k))
            return true
        }
        guard !pending.isEmpty else { return }
        try log.keySlots.zero(slots: pending)
        try log.keySlots.sync()
        try txn.clear(db.scrub)
    }

    mutating func run(_ drafts: [RecordDraft]) throws -> [AppendOutcome] {
        last = try log.lastSequence(txn)
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
            try txn.put(origin.bytes, sequence.bigEndianBytes, in: db.vector)
        }
        if nextSlot != firstSlot {
            try txn.put(MetaKey.nextSlot, nextSlot.bigEndianBytes, in: db.meta)
        }
        if !erasedSlots.isEmpty {
            for slot in erasedSlots { try txn.put(slot.bigEndianBytes, [], in: db.scrub) }
        }
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
        let erasedOnArrival = try applyEffect(of: draft, at: sequence)

        var flags: RecordCodec.Flags = []
        var slot: UInt64 = 0
        if erasedOnArrival {
            flags.insert(.erased)
        } else if keyIndex != nil {
            flags.insert(.sealed)
            slot = nextSlot
            nextSlot += 1
        }
        let record = try RecordCodec.encode(
            id: id, kind: draft.kind, time: draft.time, flags: flags, keySlot: slot, subject: draft.subject,
            effect: draft.effect, payload: draft.payload, seal: keyIndex.map { index in
                { [keys, slotImage, firstSlot] ad, plaintext, out in
                    try Self.seal(plaintext, ad: ad, key: keys, keyIndex: index, image: slotImage, imageIndex: Int(slot - firstSlot), into: &out)
                }
            })
        try txn.put(sequenceKey(sequence), record, in: db.events, append: true)
        if id.origin != log.id {
            try txn.put(originKey(id), sequence.bigEndianBytes, in: db.origins)
            vector[id.origin] = max(vector[id.origin] ?? 0, id.sequence)
        }
        last = sequence
        return .appended(sequence: sequence, id: id)
    }

    /// Applies the draft's effect on its subject; returns true when the draft
    /// itself must be stored already erased.
    private mutating func applyEffect(of draft: RecordDraft, at sequence: UInt64) throws -> Bool {
        guard let subject = draft.subject, !subject.isEmpty else {
            guard draft.effect == .none else { throw LogError.effectWithoutSubject(kind: draft.kind) }
            return false
        }
        switch draft.effect {
        case .none:
            if try txn.value(subject, in: db.erased) != nil { return true }
            try txn.put(subjectKey(subject, sequence), [], in: db.subjects)
            return false
        case let .supersedes(step):
            let current = try txn.value(subject, in: db.steps)
            if let current, UInt64(bigEndianBytes: current.dropFirst(8)) >= step { return true }
            if let current { try erase(UInt64(bigEndianBytes: current.prefix(8))) }
            try txn.put(subject, sequence.bigEndianBytes + step.bigEndianBytes, in: db.steps)
            return false
        case .erasesSubject:
            let prefix = subjectKey(subject, nil)
            var held: [UInt64] = []
            try txn.scan(db.subjects, from: prefix) { key, _ in
                guard key.count == prefix.count + 8, key.starts(with: prefix) else { return false }
                held.append(UInt64(bigEndianBytes: key.suffix(8)))
                return true
            }
            for target in held {
                try erase(target)
                try txn.delete(subjectKey(subject, target), in: db.subjects)
            }
            try txn.put(subject, sequence.bigEndianBytes, in: db.erased)
            return false
        }
    }

    /// Seals `plaintext` with key `keyIndex` of `keys` and places that key at `imageIndex` of the slot image.
    private static func seal(
        _ plaintext: [UInt8], ad: ArraySlice<UInt8>, key keys: SecureBytes, keyIndex: Int,
        image slotImage: SecureBytes, imageIndex: Int, into out: inout [UInt8]
    ) throws {
        let keyRange = keyIndex * keyBytes..<(keyIndex + 1) * keyBytes
        let imageOffset = imageIndex * keyBytes
        try keys.withUnsafeBytes { all in
            let key = UnsafeRawBufferPointer(rebasing: all[keyRange])
            slotImage.withUnsafeMutableBytes { image in
                image.baseAddress!.advanced(by: imageOffset).copyMemory(from: key.baseAddress!, byteCount: keyBytes)
            }
            try Array(ad).withUnsafeBytes { adBytes in
                try plaintext.withUnsafeBytes { p in
                    try SingleUseAEAD.seal(p, associatedData: adBytes, key: key, into: &out)
                }
            }
        }
    }

    /// Rewrites the record at `sequence` without its payload and schedules its key slot for zeroing.
    private mutating func erase(_ sequence: UInt64) throws {
        let key = sequenceKey(sequence)
        guard let bytes = try txn.value(key, in: db.events) else { return }
        guard case let .success(stored) = RecordCodec.decode(bytes) else {
            throw LogError.corruptRecord(sequence: sequence, reason: "cannot decode the record an erasure targets")
        }
        guard !stored.flags.contains(.erased) else { return }
        var flags = stored.flags.intersection(.sealed)
        flags.insert(.erased)
        let rewritten = try RecordCodec.encode(
            id: stored.id, kind: stored.kind, time: stored.time, flags: flags, keySlot: stored.keySlot,
            subject: stored.subject, effect: stored.effect, payload: [], seal: nil)
        try txn.put(key, rewritten, in: db.events)
        guard stored.flags.contains(.sealed) else { return }
        if stored.keySlot >= firstSlot && stored.keySlot < nextSlot {
            // Sealed earlier in this batch: its key never reaches the file.
            let offset = Int(stored.keySlot - firstSlot) * Self.keyBytes
            slotImage.withUnsafeMutableBytes { secureZero(UnsafeMutableRawBufferPointer(rebasing: $0[offset..<offset + Self.keyBytes])) }
        } else {
            erasedSlots.append(stored.keySlot)
        }
    }
}

import Foundation
import KeepsakeCrypto

/// One writer's hold on an empty log for appends it may yet take back: a
/// restore that shows its first events before its files are fully verified.
///
/// While a claim stands, appends that do not carry it are refused
/// (`LogError.provisionallyClaimed`). It ends kept (`EventLog.keep`: the appends
/// stay) or discarded (`EventLog.discard`: the log is empty again). The claim
/// is stored in the log, so one whose writer died is found by the next opener
/// (`EventLog.standingClaim`) and discarded. docs/LOG-FORMAT.md has the bytes.
public struct ProvisionalClaim: Sendable, Equatable {
    /// Random: tells the claim's appends from everyone else's.
    let token: [UInt8]
    /// The first key slot the claim's appends could use; discarding zeroes from here on.
    let firstSlot: UInt64

    static let tokenBytes = 16

    var bytes: [UInt8] { token + firstSlot.bigEndianBytes }

    init(token: [UInt8], firstSlot: UInt64) {
        self.token = token
        self.firstSlot = firstSlot
    }

    init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.tokenBytes + 8 else { return nil }
        let bytes = Array(bytes)
        self.init(token: Array(bytes[..<Self.tokenBytes]), firstSlot: UInt64(bigEndianBytes: bytes[Self.tokenBytes...]))
    }
}

extension EventLog {
    /// Claims this log, which must hold no events and no other claim, for appends
    /// that may be discarded. The claim is durable before this returns.
    public func claimProvisionally() throws(LogError) -> ProvisionalClaim {
        do {
            return try env.write { txn in
                guard try txn.value(MetaKey.provisional, in: db.meta) == nil else { throw LogError.provisionallyClaimed(path: directory) }
                guard try lastSequence(txn) == 0 else { throw LogError.notEmpty(path: directory) }
                let firstSlot = try txn.value(MetaKey.nextSlot, in: db.meta).map { UInt64(bigEndianBytes: $0) } ?? 0
                let claim = ProvisionalClaim(token: Random.bytes(ProvisionalClaim.tokenBytes), firstSlot: firstSlot)
                try txn.put(MetaKey.provisional, claim.bytes, in: db.meta)
                return claim
            }
        } catch {
            throw LogError(error, path: directory)
        }
    }

    /// The claim standing on this log, or nil. One that no live writer holds was
    /// left by a writer that died, and is for its next opener to discard.
    public func standingClaim() throws(LogError) -> ProvisionalClaim? {
        let bytes = try readTransaction { txn in try txn.value(MetaKey.provisional, in: db.meta) }
        guard let bytes else { return nil }
        guard let claim = ProvisionalClaim(bytes: bytes) else {
            throw .damaged(path: directory, reason: "the provisional claim in meta is \(bytes.count) bytes long")
        }
        return claim
    }

    /// Ends `claim`, keeping everything appended under it. Nothing happens when it no longer stands.
    public func keep(_ claim: ProvisionalClaim) throws(LogError) {
        do {
            try env.write { txn in
                guard try txn.value(MetaKey.provisional, in: db.meta) == claim.bytes else { return }
                _ = try txn.delete(MetaKey.provisional, in: db.meta)
            }
            // A durable log synced the commit already; an unsynced one must not lose it
            // either, or a crash would bring the claim back and discard a verified restore.
            if durability == .unsafeNoSync { try env.sync() }
        } catch {
            throw LogError(error, path: directory)
        }
    }

    /// Ends `claim`, taking back everything appended under it: the log holds no
    /// events again, the keys of their sealed payloads are zeroed, and the local
    /// tables named in `localTables` (bookkeeping of those appends) are emptied.
    /// The claim goes last, so a crash midway leaves it standing for another try.
    /// Nothing happens when it no longer stands. The caller must have stopped appending under it.
    public func discard(_ claim: ProvisionalClaim, clearing localTables: [String]) throws(LogError) {
        guard try standingClaim() == claim else { return }
        let locals = try localTables.map { name throws(LogError) in try localDatabase(name) }
        do {
            let nextSlot = try env.read { txn in try txn.value(MetaKey.nextSlot, in: db.meta).map { UInt64(bigEndianBytes: $0) } ?? 0 }
            if nextSlot > claim.firstSlot {
                try keySlots.zero(range: claim.firstSlot..<nextSlot)
                try keySlots.sync()
            }
            try env.write { txn in
                for database in [db.events, db.origins, db.vector, db.subjects, db.erased, db.steps, db.scrub] + locals {
                    try txn.clear(database)
                }
                _ = try txn.delete(MetaKey.provisional, in: db.meta)
            }
            try env.sync()
        } catch {
            throw LogError(error, path: directory)
        }
    }
}

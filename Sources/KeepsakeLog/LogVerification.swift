import KeepsakeCrypto

/// One inconsistency `EventLog.verify()` found.
public struct LogProblem: Sendable, Equatable, CustomStringConvertible {
    /// The record concerned, when there is one.
    public let sequence: UInt64?
    /// What is wrong.
    public let message: String

    /// `record <sequence>: <message>`, or the message.
    public var description: String { sequence.map { "record \($0): \(message)" } ?? message }
}

/// What `EventLog.verify()` read and found.
public struct LogVerification: Sendable, Equatable {
    /// Records read.
    public var records = 0
    /// Records whose payload is sealed and readable (each one authenticated).
    public var sealed = 0
    /// Records whose payload was erased.
    public var erased = 0
    /// What was wrong.
    public var problems: [LogProblem] = []
    /// Problems beyond the first `EventLog.problemLimit`, counted but not listed.
    public var unlistedProblems = 0
}

extension EventLog {
    /// At most this many problems are listed by `verify()`; the rest are counted.
    public static let problemLimit = 1000

    /// Reads the whole log in one snapshot and checks it as `restic check`
    /// checks a repository: sequences run from 1 without gaps, every record
    /// decodes, every sealed payload authenticates with its key slot, every
    /// zeroed key slot belongs to an erased or superseded event, and the
    /// subject, step and origin indexes agree with the records.
    public func verify() throws(LogError) -> LogVerification {
        let key = try scratchKey()
        return try readTransaction { txn in
            var report = LogVerification()
            func problem(_ sequence: UInt64?, _ message: String) {
                if report.problems.count < Self.problemLimit {
                    report.problems.append(LogProblem(sequence: sequence, message: message))
                } else {
                    report.unlistedProblems += 1
                }
            }
            let slotsInUse = try txn.value(MetaKey.nextSlot, in: databases.meta).map { UInt64(bigEndianBytes: $0) } ?? 0
            var expected: UInt64 = 1
            try txn.scan(databases.events) { k, v in
                let sequence = UInt64(bigEndianBytes: k)
                if k.count != 8 { problem(nil, "an events key is \(k.count) bytes, not 8") }
                if sequence != expected { problem(sequence, "follows record \(expected - 1): records \(expected)...\(sequence - 1) are missing") }
                expected = sequence + 1
                report.records += 1
                let stored: RecordCodec.Stored
                let bytes = Array(v)
                switch RecordCodec.decode(bytes) {
                case let .success(s): stored = s
                case let .failure(f):
                    problem(sequence, "does not decode: \(f.reason)")
                    return true
                }
                if stored.flags.contains(.erased) {
                    report.erased += 1
                } else if stored.flags.contains(.sealed) {
                    switch try checkSealed(sequence, stored, bytes: bytes, slotsInUse: slotsInUse, key: key, txn) {
                    case .readable: report.sealed += 1
                    case .erased: report.erased += 1
                    case let .damaged(message): problem(sequence, message)
                    }
                }
                for message in try checkIndexed(sequence, stored, txn) { problem(sequence, message) }
                return true
            }
            try checkIndexes(txn, problem: problem)
            return report
        }
    }

    private enum SealedState {
        case readable, erased
        case damaged(String)
    }

    /// A sealed record's state: its payload authenticates, or its zeroed key
    /// slot is explained by an erasure, or it is damaged.
    private func checkSealed(
        _ sequence: UInt64, _ stored: RecordCodec.Stored, bytes: [UInt8], slotsInUse: UInt64, key: SecureBytes, _ txn: LMDBTransaction
    ) throws -> SealedState {
        guard stored.keySlot < slotsInUse else {
            return .damaged("its key slot \(stored.keySlot) was never handed out (the log has \(slotsInUse))")
        }
        switch decodeRecord(sequence: sequence, bytes: bytes, key: key) {
        case let .success(record) where record.payload != nil:
            return .readable
        case .success:  // a zeroed key slot: `decodeRecord` reads the record as erased
            guard try isErasedOrSuperseded(sequence, stored, txn) else {
                return .damaged("its key slot \(stored.keySlot) is zeroed, but no event erased or superseded it")
            }
            return .erased
        case let .failure(error):
            return .damaged("\(error)")
        }
    }

    /// Whether the log says this record's content is gone: its subject was
    /// erased, or (a step) its subject's current step is a later event.
    private func isErasedOrSuperseded(_ sequence: UInt64, _ stored: RecordCodec.Stored, _ txn: LMDBTransaction) throws -> Bool {
        guard let subject = stored.subject else { return false }
        if try txn.withValue(subject, in: databases.erased, { _ in true }) != nil { return true }
        guard case .supersedes = stored.effect else { return false }
        return try txn.withValue(subject, in: databases.steps) { StepEntry($0).sequence != sequence } ?? true
    }

    /// A live record with a subject is in the index its effect uses; an event of another log is in `origins`.
    private func checkIndexed(_ sequence: UInt64, _ stored: RecordCodec.Stored, _ txn: LMDBTransaction) throws -> [String] {
        var problems: [String] = []
        if stored.id.origin != id {
            let held = try txn.value(originKey(stored.id), in: databases.origins).map { UInt64(bigEndianBytes: $0) }
            if held != sequence { problems.append("event \(stored.id) is not indexed under its origin") }
        }
        guard let subject = stored.subject, !stored.flags.contains(.erased), stored.effect == .none,
              try txn.withValue(subject, in: databases.erased, { _ in true }) == nil else { return problems }
        if try txn.value(subjectKey(subject, sequence), in: databases.subjects) == nil {
            problems.append("its subject's index does not list it")
        }
        return problems
    }

    /// Every `subjects` and `steps` entry names a record that has that subject.
    private func checkIndexes(_ txn: LMDBTransaction, problem: (UInt64?, String) -> Void) throws {
        func subjectOf(_ sequence: UInt64) throws -> [UInt8]?? {
            guard let bytes = try txn.value(sequenceKey(sequence), in: databases.events),
                  case let .success(stored) = RecordCodec.decode(bytes) else { return .none }
            return .some(stored.subject)
        }
        try txn.scan(databases.subjects) { k, _ in
            let key = Array(k)
            guard key.count >= 10 else { problem(nil, "a subjects entry is too short"); return true }
            let length = Int(UInt16(bigEndianBytes: key.prefix(2)))
            guard key.count == 2 + length + 8 else { problem(nil, "a subjects entry has the wrong length"); return true }
            let sequence = UInt64(bigEndianBytes: key.suffix(8))
            if try subjectOf(sequence) != .some(Array(key[2..<2 + length])) {
                problem(sequence, "the subjects index lists it under a subject it does not have")
            }
            return true
        }
        try txn.scan(databases.steps) { k, v in
            let entry = StepEntry(v)
            if try subjectOf(entry.sequence) != .some(Array(k)) {
                problem(entry.sequence, "the steps index names it as its subject's current step, but its subject differs")
            }
            return true
        }
    }
}

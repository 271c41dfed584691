/// The log's entry point for the fuzz targets (`Fuzz/`): a stored record's
/// bytes, as read from LMDB, decoded (and, when they decode, encoded again).
package enum LogFuzzEntryPoints {
    package static func record(_ bytes: [UInt8]) {
        guard case let .success(stored) = RecordCodec.decode(bytes), !stored.flags.contains(.sealed) else { return }
        _ = try? RecordCodec.encode(
            id: stored.id, kind: stored.kind, time: stored.time, flags: stored.flags, keySlot: stored.keySlot,
            subject: stored.subject, effect: stored.effect, payload: Array(stored.body))
    }

    /// Records of a small log written with every flag and effect, as seeds.
    package static func seeds(directory: String) throws -> [[UInt8]] {
        let log = try EventLog(directory: directory)
        let subject: [UInt8] = [1, 2, 3]
        try log.append([
            RecordDraft(kind: 2, time: 1, subject: subject, sealed: true, payload: [1, 2, 3]),
            RecordDraft(kind: 7, time: 2, subject: [9], effect: .supersedes(step: 1), sealed: true, payload: [4]),
            RecordDraft(kind: 7, time: 3, subject: [9], effect: .supersedes(step: 2), sealed: true, payload: [5]),
            RecordDraft(kind: 5, time: 4, subject: subject, effect: .erasesSubject, payload: [6]),
            RecordDraft(kind: 11, time: 5, payload: Array("plain".utf8)),
            RecordDraft(id: EventID(origin: LogID.random(), sequence: 7), kind: 99, time: 6, payload: [0xff]),
        ])
        return try log.readTransaction { txn in
            var records: [[UInt8]] = []
            try txn.scan(log.databases.events) { _, value in
                records.append(Array(value))
                return true
            }
            return records
        }
    }
}

import Foundation

/// A key of a device-local table, as bytes that sort as the keys should.
package protocol LocalKey: Sendable {
    var localKeyBytes: [UInt8] { get }
    init?(localKeyBytes: [UInt8])
}

extension String: LocalKey {
    package var localKeyBytes: [UInt8] { Array(utf8) }
    package init?(localKeyBytes: [UInt8]) { self.init(decoding: localKeyBytes, as: UTF8.self) }
}

extension Int64: LocalKey {
    /// Big-endian with the sign bit flipped, so keys sort as the numbers do.
    package var localKeyBytes: [UInt8] { withUnsafeBytes(of: (UInt64(bitPattern: self) ^ (1 << 63)).bigEndian) { Array($0) } }

    package init?(localKeyBytes bytes: [UInt8]) {
        guard bytes.count == 8 else { return nil }
        self.init(bitPattern: UInt64(bigEndianBytes: bytes) ^ (1 << 63))
    }
}

/// One kind of this device's bookkeeping (an outbox entry, a relay cursor, a
/// restore's progress): records of one type in an LMDB database of their own,
/// beside the log, never copied to another store or into a backup.
///
/// Each table belongs to the module that declares it; records are stored as JSON.
package struct LocalTable<Key: LocalKey, Record: Codable & Sendable>: Sendable {
    /// The LMDB database's name: `local.<name>`.
    package let name: String

    package init(_ name: String) {
        self.name = "local.\(name)"
    }
}

extension EventLog {
    /// The record stored under `key`, or nil.
    package func record<Key, Record>(_ key: Key, in table: LocalTable<Key, Record>) throws(LogError) -> Record? {
        let database = try localDatabase(table.name)
        let bytes = try readTransaction { txn in try txn.value(key.localKeyBytes, in: database) }
        return try bytes.map { bytes throws(LogError) in try decode(Record.self, bytes, table: table.name) }
    }

    /// Every record of the table, in key order.
    package func records<Key, Record>(in table: LocalTable<Key, Record>) throws(LogError) -> [(key: Key, record: Record)] {
        let database = try localDatabase(table.name)
        let raw = try readTransaction { txn in
            var found: [([UInt8], [UInt8])] = []
            try txn.scan(database) { key, value in
                found.append((Array(key), Array(value)))
                return true
            }
            return found
        }
        var records: [(key: Key, record: Record)] = []
        for (key, value) in raw {
            guard let key = Key(localKeyBytes: key) else { throw .damaged(path: directory, reason: "a key of \(table.name) does not decode") }
            records.append((key, try decode(Record.self, value, table: table.name)))
        }
        return records
    }

    /// Stores `record` under `key` (nil removes it), durably.
    package func setRecord<Key, Record>(_ record: Record?, for key: Key, in table: LocalTable<Key, Record>) throws(LogError) {
        let database = try localDatabase(table.name)
        let value: [UInt8]?
        do { value = try record.map { Array(try JSONEncoder().encode($0)) } } catch {
            throw .damaged(path: directory, reason: "a record of \(table.name) does not encode: \(error)")
        }
        do {
            try env.write { txn in
                if let value { try txn.put(key.localKeyBytes, value, in: database) } else { try txn.delete(key.localKeyBytes, in: database) }
            }
        } catch {
            throw LogError(error, path: directory)
        }
    }

    /// Moves values a Keepsake before typed tables kept in the shared `local`
    /// database under `prefix` into `table`, in one transaction: `convert`
    /// turns each (key without the prefix, value) into a record, or nil to drop it.
    package func moveLegacyValues<Key, Record>(
        withPrefix prefix: String, into table: LocalTable<Key, Record>, _ convert: (String, [UInt8]) -> (Key, Record)?
    ) throws(LogError) {
        let database = try localDatabase(table.name)
        let start = Array(prefix.utf8)
        do {
            try env.write { txn in
                var legacy: [([UInt8], [UInt8])] = []
                try start.withUnsafeBytes { from in
                    try txn.scan(db.local, from: from) { key, value in
                        guard key.starts(with: start) else { return false }
                        legacy.append((Array(key), Array(value)))
                        return true
                    }
                }
                for (key, value) in legacy {
                    let suffix = String(decoding: key.dropFirst(start.count), as: UTF8.self)
                    if let (newKey, record) = convert(suffix, value) {
                        try txn.put(newKey.localKeyBytes, Array(try JSONEncoder().encode(record)), in: database)
                    }
                    try txn.delete(key, in: db.local)
                }
            }
        } catch {
            throw LogError(error, path: directory)
        }
    }

    private func decode<Record: Decodable>(_ type: Record.Type, _ bytes: [UInt8], table: String) throws(LogError) -> Record {
        do { return try JSONDecoder().decode(Record.self, from: Data(bytes)) } catch {
            throw .damaged(path: directory, reason: "a record of \(table) does not decode: \(error)")
        }
    }
}

import Foundation
import KeepsakeLog

/// This device's bookkeeping, kept beside the log in typed tables
/// (`LocalTable`) and never copied to another store or into a backup: the last
/// backup of each selection, restore progress, and extensions' tables
/// (messaging's outbox, relay cursors...).
extension Store {
    package func record<Key, Record>(_ key: Key, in table: LocalTable<Key, Record>) throws(KeepsakeError) -> Record? {
        do { return try log.record(key, in: table) } catch { throw .log(error) }
    }

    /// Stores (or with nil, removes) a record, durably.
    package func setRecord<Key, Record>(_ record: Record?, for key: Key, in table: LocalTable<Key, Record>) throws(KeepsakeError) {
        do { try log.setRecord(record, for: key, in: table) } catch { throw .log(error) }
    }

    /// Every record of a table, in key order.
    package func records<Key, Record>(in table: LocalTable<Key, Record>) throws(KeepsakeError) -> [(key: Key, record: Record)] {
        do { return try log.records(in: table) } catch { throw .log(error) }
    }

    /// Moves bookkeeping an older Keepsake kept under string keys starting with
    /// `prefix` into `table` (see `EventLog.moveLegacyValues`).
    package func moveLegacyValues<Key, Record>(
        withPrefix prefix: String, into table: LocalTable<Key, Record>, _ convert: (String, [UInt8]) -> (Key, Record)?
    ) throws(KeepsakeError) {
        do { try log.moveLegacyValues(withPrefix: prefix, into: table, convert) } catch { throw .log(error) }
    }
}

extension LocalTable where Key == String, Record == BackupRecord {
    /// The last backup of each kind and selection: what the next incremental extends.
    static let lastBackups = LocalTable("backups.last")
}

extension LocalTable where Key == String, Record == RestoreRecord {
    /// Each restored backup's progress, by backup ID.
    static let restores = LocalTable("restores")
}

extension Store {
    /// Moves the storage module's bookkeeping out of the string keyspace of older stores.
    func moveLegacyBackupRecords() throws(KeepsakeError) {
        try moveLegacyValues(withPrefix: "backup.last.", into: .lastBackups) { key, value in
            (try? JSONDecoder().decode(BackupRecord.self, from: Data(value))).map { (key, $0) }
        }
        try moveLegacyValues(withPrefix: "restore.", into: .restores) { key, value in
            (try? JSONDecoder().decode(RestoreRecord.self, from: Data(value))).map { (key, $0) }
        }
    }
}

import Foundation
import KeepsakeLog

/// This device's bookkeeping, kept beside the log and never copied to another
/// store or into a backup: relay cursors, the outbox, restore progress, the
/// last backup of each selection.
extension Store {
    package func localValue(_ key: String) throws(KeepsakeError) -> [UInt8]? {
        do { return try log.localValue(key) } catch { throw .log(error) }
    }

    /// Sets (or with nil, removes) the value of `key`, durably.
    package func setLocalValue(_ value: [UInt8]?, for key: String) throws(KeepsakeError) {
        do { try log.setLocalValue(value, for: key) } catch { throw .log(error) }
    }

    /// The values whose keys start with `prefix`, in key order.
    package func localValues(withPrefix prefix: String) throws(KeepsakeError) -> [(key: String, value: [UInt8])] {
        do { return try log.localValues(withPrefix: prefix) } catch { throw .log(error) }
    }

    /// A value stored as JSON; nil when absent or unreadable.
    package func localRecord<T: Decodable>(_ type: T.Type, _ key: String) throws(KeepsakeError) -> T? {
        try localValue(key).flatMap { try? JSONDecoder().decode(T.self, from: Data($0)) }
    }

    package func setLocalRecord<T: Encodable>(_ value: T?, _ key: String) throws(KeepsakeError) {
        try setLocalValue(value.flatMap { try? JSONEncoder().encode($0) }.map { [UInt8]($0) }, for: key)
    }
}

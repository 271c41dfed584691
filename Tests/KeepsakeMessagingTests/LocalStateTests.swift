import Foundation
import Testing
@testable import KeepsakeLog
@testable import KeepsakeMessaging
@testable import KeepsakeStore

/// Bookkeeping an older store kept under string keys moves into typed tables
/// when the store opens with messaging, once, and nothing of it is lost.
@Suite struct LocalStateTests {
    @Test func legacyBookkeepingMovesToTypedTables() throws {
        let scratch = Scratch()
        let folder = scratch.path("store")
        let message = MessageID.generate(), recipient = InstallationID.generate()
        do {
            let store = try Store.open(at: folder)
            let legacy: [(String, [UInt8])] = [
                ("relay.cursor.message-00112233445566778899aabbccddeeff", Array("42".utf8)),
                ("outbox.message-00112233445566778899aabbccddeeff.abcd", [9, 9, 9]),
                ("sent.abcd", message.bytes + recipient.bytes),
                ("deferred.00000000000000000007", withUnsafeBytes(of: Int64(1_700_000_000_000).littleEndian) { Array($0) } + [5, 5]),
                ("backup.last.soft.3.ffff", Array(#"{"id":"x","hash":"y","toSequence":3,"entries":{}}"#.utf8)),
            ]
            try store.log.env.write { txn in
                for (key, value) in legacy { try txn.put(Array(key.utf8), value, in: store.log.db.local) }
            }
        }
        let store = try Store.open(at: folder, options: StoreOptions(extensions: [MessagingExtension()]))
        #expect(try store.record("message-00112233445566778899aabbccddeeff", in: .relayCursors) == 42)
        #expect(try store.outbox().map(\.envelope) == [[9, 9, 9]])
        #expect(try store.sentMessage(envelope: [0xab, 0xcd]).map { [$0.message.description, $0.recipient.description] }
            == [message.description, recipient.description])
        #expect(try store.deferred().map { [$0.cursor, Int64($0.receivedAt!.timeIntervalSince1970)] } == [[7, 1_700_000_000]])
        #expect(try store.record("soft.3.ffff", in: .lastBackups)?.toSequence == 3)
        let left = try store.log.env.read { txn in
            var count = 0
            try txn.scan(store.log.db.local) { _, _ in count += 1; return true }
            return count
        }
        #expect(left == 0, "the old keyspace is empty")
    }
}

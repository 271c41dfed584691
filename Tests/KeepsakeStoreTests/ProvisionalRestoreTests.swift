import Foundation
import Synchronization
import Testing
@testable import KeepsakeStore
import KeepsakeLog
import KeepsakeMessaging

/// A restore into an empty store shows its first events before its files are
/// fully verified; a file found bad afterwards takes back everything it applied.
@Suite struct ProvisionalRestoreTests {
    let f = BackupFixture()
    let backup: BackupSummary
    let original: [UInt8]

    init() throws {
        let source = try f.store("source")
        try source.appendGenerated(messages: 1_500, conversations: 8)
        backup = try source.backup(into: f.backups, options: f.options(.hard, chunkSize: 2048))
        original = try [UInt8](Data(contentsOf: backup.file))
    }

    /// (offset, length) of each chunk after the header.
    private var chunks: [(offset: Int, length: Int)] {
        var out: [(Int, Int)] = []
        var offset = Int(UInt32(littleEndianAt: 10, in: original))
        while offset < original.count {
            let length = 4 + Int(UInt32(littleEndianAt: offset, in: original))
            out.append((offset, length))
            offset += length
        }
        return out
    }

    private func write(_ bytes: [UInt8]) throws -> URL {
        let url = f.backups.appendingPathComponent("bad.ksbak")
        try Data(bytes).write(to: url)
        return url
    }

    /// Restores `file` into `target`, returning the error and whether the head became visible first.
    private func restore(_ file: URL, into target: Store, onHead: @escaping () -> Void = {}) -> (error: BackupError?, headShown: Bool) {
        var headShown = false
        do {
            _ = try target.restore(from: [file], options: RestoreOptions(key: rawKey())) { update in
                if update == .headVisible {
                    headShown = true
                    onHead()
                }
            }
            return (nil, headShown)
        } catch {
            return (error, headShown)
        }
    }

    /// The store as an empty one is: no events, no rows, no restore progress,
    /// no claim, and every key slot its restore used zeroed.
    private func expectEmpty(_ target: Store) throws {
        #expect(try target.cursor().sequence == 0)
        #expect(try target.contentDump() == f.store("untouched").contentDump())
        #expect(try target.records(in: .restores).isEmpty, "no progress is left to resume from")
        #expect(try target.log.standingClaim() == nil)
        #expect(try target.check().isClean)
        let slots = try [UInt8](Data(contentsOf: target.directory.appendingPathComponent("log/keys.slots")))
        #expect(slots.count > 16, "the hard backup's sealed events used key slots")
        #expect(slots.dropFirst(16).allSatisfy { $0 == 0 }, "the keys of the taken-back events are gone")
    }

    @Test func aFlipInTheLastChunkShowsTheHeadThenLeavesTheStoreEmpty() throws {
        let last = try #require(chunks.last)
        #expect(chunks.count >= 8, "the file spans many chunks")
        var bad = original
        bad[last.offset + last.length - 3] ^= 0x01
        let target = try f.store("target")
        let outcome = restore(try write(bad), into: target)
        #expect(outcome.error == .corruptChunk(index: chunks.count - 1, reason: "it does not authenticate"))
        #expect(outcome.headShown, "the conversation list showed before the bad chunk was found")
        try expectEmpty(target)

        let clean = try f.store("clean")
        _ = try clean.restore(from: [backup.file], options: RestoreOptions(key: rawKey()))
        #expect(restore(backup.file, into: target).error == nil)
        // Installation claims name each store's own log; everything else is the same.
        let tables = target.projectedTables.filter { $0 != .installationClaims }
        #expect(try target.contentDump(tables: tables) == clean.contentDump(tables: tables), "the good file restores in full afterwards")
    }

    @Test func aMissingLastChunkLeavesTheStoreEmpty() throws {
        let last = try #require(chunks.last)
        let target = try f.store("target")
        let outcome = restore(try write(Array(original.prefix(last.offset))), into: target)
        #expect(outcome.error == .truncated(afterChunk: chunks.count - 2))
        try expectEmpty(target)
    }

    /// Another append while the files are being verified waits, then lands: in the
    /// empty store when the file was bad, after the restore's events when it was good.
    @Test(arguments: [false, true]) func anAppendDuringVerificationWaitsAndIsKept(fileIsGood: Bool) throws {
        var bytes = original
        if !fileIsGood { bytes[chunks.last!.offset + 6] ^= 0x01 }
        let file = try write(bytes)
        let target = try f.store("target")
        let appended = Mutex<Result<Event, KeepsakeError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let outcome = restore(file, into: target) {
            Thread.detachNewThread {
                let result = Result { () throws(KeepsakeError) in try target.append(conversationCreated(.generate(), title: "Meanwhile")) }
                appended.withLock { $0 = result }
                done.signal()
            }
        }
        done.wait()
        let event = try #require(try appended.withLock { $0 }?.get())
        #expect(try target.conversations().contains { $0.title == "Meanwhile" })
        #expect(try target.check().isClean)
        if fileIsGood {
            #expect(outcome.error == nil)
            #expect(try target.cursor().sequence == backup.events + 2, "the restore's events, its installation claim and the append, each once")
        } else {
            #expect(outcome.error == .corruptChunk(index: chunks.count - 1, reason: "it does not authenticate"))
            #expect(event.sequence == 1, "it waited for the restore's events to be taken back")
            #expect(try target.cursor().sequence == 1)
        }
        let projected = try target.contentDump()
        try target.rebuildProjections()
        #expect(try target.contentDump() == projected, "the projections are what the log gives, whatever interleaved")
    }

    /// A restore that died holding its claim leaves it in the log; the next
    /// opener finds no live restore and takes back what it applied.
    @Test func aClaimLeftByADeadRestoreIsDiscardedOnOpen() throws {
        let directory = f.dir.url.appendingPathComponent("target")
        do {
            let target = try f.store("target")
            let claim = try target.log.claimProvisionally()
            let reader = try BackupReader(url: backup.file)
            try reader.unlock(rawKey())
            let frames = try #require(try reader.nextChunk())
            let outcomes = try target.importDrafts(Store.drafts(in: frames), under: claim)
            #expect(!outcomes.isEmpty)
            #expect(try target.cursor().sequence > 0)
        }
        let reopened = try Store.open(at: directory, options: StoreOptions(extensions: [MessagingExtension()]))
        try expectEmpty(reopened)
    }
}

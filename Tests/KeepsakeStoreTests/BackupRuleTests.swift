import Foundation
import Testing
@testable import KeepsakeStore
import KeepsakeCrypto
import KeepsakeLog

/// Files whose signature and encryption are sound but which break a rule of
/// docs/BACKUP-FORMAT.md: each is refused with its own error, and the store a
/// restore was aimed at is left as it was.
@Suite struct BackupRuleTests {
    let f = BackupFixture()
    let key = rawKey()

    /// A small store with an installation and its hard backup.
    private func hardBackup() throws -> (store: Store, backup: BackupSummary) {
        let store = try f.store("source")
        _ = try store.createInstallation()
        try store.appendGenerated(messages: 30, conversations: 2)
        return (store, try store.backup(into: f.backups, options: f.options(.hard)))
    }

    /// Restores `forged` into a fresh store; returns the error and whether the store stayed empty.
    private func restore(_ forged: BackupForgery, name: String = #function) throws -> (error: BackupError?, untouched: Bool) {
        let url = f.backups.appendingPathComponent("forged-\(name.prefix(20)).ksbak")
        try forged.write(to: url, key: key)
        let target = try f.store("target-\(UUID().uuidString.prefix(8))")
        var error: BackupError?
        do { _ = try target.restore(from: [url], options: RestoreOptions(key: key)) } catch let failure {
            error = failure
        }
        return (error, try target.cursor().sequence == 0)
    }

    @Test func aFileReSignedByAnotherKeyIsRefused() throws {
        let (_, backup) = try hardBackup()
        let forged = try BackupForgery(of: backup.file, key: key)
        let outcome = try restore(forged)
        let keys = try keysEvent(backup.file)
        #expect(outcome.error == .invalidContent(chunk: keys.chunk, reason: "event \(keys.id) holds the keys of another installation than the one that signed the header"))
        #expect(outcome.untouched)
    }

    @Test func aHardFileLabelledSoftIsRefused() throws {
        let (_, backup) = try hardBackup()
        var forged = try BackupForgery(of: backup.file, key: key)
        forged.header.kind = .soft
        forged.header.elements = .soft
        let outcome = try restore(forged)
        guard case let .invalidContent(_, reason)? = outcome.error else {
            Issue.record("expected invalidContent, got \(String(describing: outcome.error))")
            return
        }
        #expect(reason.contains("which the header does not select"), "\(reason)")
        #expect(outcome.untouched)
    }

    @Test func headerClaimsThatContradictEachOtherAreRefused() throws {
        let (_, backup) = try hardBackup()
        var soft = try BackupForgery(of: backup.file, key: key)
        soft.header.kind = .soft
        #expect(try restore(soft).error == .corruptHeader("a soft backup selects sessions, identity or unknown kinds (elements conversations,messages,contacts,consent,preferences,sessions,identity,unknown-kinds)"))

        var argon = try BackupForgery(of: backup.file, key: key)
        argon.header.opsLimit = 3
        argon.header.memLimit = 1 << 20
        #expect(try restore(argon).error == .corruptHeader("it names Argon2id parameters, but its key is not a passphrase"))

        var fromNowhere = try BackupForgery(of: backup.file, key: key)
        fromNowhere.header.fromSequence = 5
        #expect(try restore(fromNowhere).error == .corruptHeader("a full backup (zero base ID) must have a zero base hash, from sequence 0 and an empty from vector"))
    }

    @Test func framesTheFormatDoesNotAllowAreRefused() throws {
        let (store, backup) = try hardBackup()
        let original = try BackupForgery(of: backup.file, key: key, signer: try store.signingKey().1)
        let events = original.chunks.flatMap(\.frames).filter { if case .event = $0 { true } else { false } }

        var compressed = original
        compressed.header.compressed = false
        compressed.chunks[1].compressed = true
        #expect(try restore(compressed).error == .invalidContent(chunk: 1, reason: "it is compressed, but the header says chunks are never compressed"))

        var empty = original
        empty.chunks.insert(([], false), at: 1)
        #expect(try restore(empty).error == .invalidContent(chunk: 1, reason: "it holds no frames"))

        let head = try #require(original.chunks.firstIndex { $0.frames.contains(.headEnd) })
        var twoHeads = original
        twoHeads.chunks.insert(([.headEnd], false), at: head + 1)
        #expect(try restore(twoHeads).error == .invalidContent(chunk: head + 1, reason: "a second head end"))

        var headInside = original
        headInside.chunks[head].frames.append(events[0])
        #expect(try restore(headInside).error == .invalidContent(chunk: head, reason: "the head end does not end its chunk"))

        guard case let .event(first) = events[0] else { return }
        var repeated = original
        repeated.chunks[repeated.chunks.count - 1].frames.insert(.event(first), at: 0)
        if case let .trailer(count)? = repeated.chunks.last?.frames.last {
            repeated.chunks[repeated.chunks.count - 1].frames[repeated.chunks.last!.frames.count - 1] = .trailer(events: count + 1)
        }
        #expect(try restore(repeated).error == .repeatedEvent(first.id!))

        var beyond = original
        beyond.header.to = VersionVector([first.id!.origin: 1])
        let outcome = try restore(beyond)
        guard case let .invalidContent(_, reason)? = outcome.error else {
            Issue.record("expected invalidContent, got \(String(describing: outcome.error))")
            return
        }
        #expect(reason.hasSuffix("lies beyond the header's to vector"))
        #expect(outcome.untouched)
    }

    @Test func aFullHardBackupMustHoldItsSignersKeys() throws {
        let (store, backup) = try hardBackup()
        var keyless = try BackupForgery(of: backup.file, key: key, signer: try store.signingKey().1)
        keyless.chunks = keyless.chunks.map { chunk in
            (chunk.frames.filter { if case let .event(draft) = $0 { draft.kind != 13 } else { true } }, chunk.compressed)
        }
        let last = keyless.chunks.count - 1
        if case let .trailer(count)? = keyless.chunks[last].frames.last {
            keyless.chunks[last].frames[keyless.chunks[last].frames.count - 1] = .trailer(events: count - 1)
        }
        #expect(try restore(keyless).error == .invalidContent(chunk: last, reason: "a full hard backup without the keys of the installation that signed it"))
    }

    @Test func anIncrementalIsSealedWithItsBasesKindOfKey() throws {
        let (store, _) = try hardBackup()
        try store.append(conversationCreated(.generate(), title: "Later"))
        let mnemonic = BackupKey.mnemonic(try BackupKey.generateMnemonic())
        #expect(throws: BackupError.chainKeySource(base: .rawKey, given: .mnemonic)) {
            try store.backup(into: f.backups, options: f.options(.hard, incremental: true, key: mnemonic))
        }
    }

    @Test func aPassphraseReadsTheSameInEveryUnicodeSpelling() throws {
        let store = try f.store("source")
        try store.append(conversationCreated(.generate(), title: "Café"))
        let composed = "caf\u{E9} cr\u{E8}me", decomposed = "cafe\u{301} cre\u{300}me"
        #expect(Array(composed.utf8) != Array(decomposed.utf8), "two spellings of one text")
        let backup = try store.backup(into: f.backups, options: f.options(.soft, key: .passphrase(composed)))
        let verified = try Backup.verify([backup.file], key: .passphrase(decomposed))
        #expect(verified.map(\.events) == [backup.events])
    }

    /// The installation-keys event in `file`: its chunk and ID.
    private func keysEvent(_ file: URL) throws -> (chunk: Int, id: EventID) {
        for (chunk, frames) in try BackupForgery.frames(of: file, key: key).enumerated() {
            for case let .event(draft) in frames where draft.kind == 13 { return (chunk, draft.id!) }
        }
        throw BackupError.notABackup
    }
}

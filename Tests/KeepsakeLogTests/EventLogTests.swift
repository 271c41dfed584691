import Foundation
import Testing
@testable import KeepsakeLog

@Suite struct EventLogTests {
    @Test func appendsAssignSequencesAndIDsOfThisLog() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        let outcomes = try log.append([text("a"), text("b"), text("c")])
        #expect(outcomes == (1...3).map { .appended(sequence: $0, id: EventID(origin: log.id, sequence: $0)) })
        #expect(try log.head() == Cursor(log: log.id, sequence: 3))
        #expect(try log.records(after: 0, limit: 10).map(\.text) == ["a", "b", "c"])
        #expect(try log.records(after: 2, limit: 10).map(\.sequence) == [3])
        #expect(try log.versionVector() == VersionVector([log.id: 3]))
    }

    /// Giving back the map's resident pages loses nothing: records read the same
    /// afterwards, and appends go on. The pages do leave this process's memory.
    @Test func releasingMappedPagesKeepsEveryRecord() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        try log.append((0..<2_000).map { text("record \($0) " + String(repeating: "x", count: 500)) })
        let before = try log.records(after: 0, limit: 5_000).map(\.text)
        let resident = try residentKiB(of: dir.path + "/data.mdb")
        #expect(resident >= 1_000, "reading a megabyte of records maps its pages in")
        log.releaseMappedPages()
        #expect(try residentKiB(of: dir.path + "/data.mdb") < resident / 10)
        #expect(try log.records(after: 0, limit: 5_000).map(\.text) == before)
        try log.append([text("after")])
        log.releaseMappedPages()
        #expect(try log.record(at: 2_001)?.text == "after")
    }

    @Test func logIdentitySurvivesReopening() throws {
        let dir = TemporaryDirectory()
        let first = try EventLog(directory: dir.path)
        try first.append([text("a")])
        let id = first.id
        let reopened = try EventLog(directory: dir.path)
        #expect(reopened.id == id)
        #expect(try reopened.record(at: 1)?.text == "a")
    }

    @Test func copiedEventsKeepTheirIDAndAreMergedOnce() throws {
        let sourceDir = TemporaryDirectory()
        let source = try EventLog(directory: sourceDir.path)
        try source.append([text("x"), text("y")])
        let copies = try source.records(after: 0, limit: 10).compactMap(\.draft)

        let dir = TemporaryDirectory()
        let target = try EventLog(directory: dir.path)
        try target.append([text("local")])
        let first = try target.append(copies)
        #expect(first == [.appended(sequence: 2, id: copies[0].id!), .appended(sequence: 3, id: copies[1].id!)])
        let again = try target.append(copies + copies)
        #expect(again == (copies + copies).map { .duplicate($0.id!) })
        #expect(try target.head().sequence == 3)
        #expect(try target.versionVector() == VersionVector([target.id: 3, source.id: 2]))
        #expect(try target.sequence(of: copies[1].id!) == 3)
    }

    @Test func erasedCopiesKeepTheirIDButNoContentAndNoEffect() throws {
        let source = TemporaryDirectory(), target = TemporaryDirectory()
        let a = try EventLog(directory: source.path)
        let stream = Array("s".utf8)
        try a.append([text("old", sealed: true, subject: stream, effect: .supersedes(step: 1)),
                      text("new", sealed: true, subject: stream, effect: .supersedes(step: 2)),
                      text("kept")])
        let copies = try a.records(after: 0, limit: 10)
        #expect(copies.map(\.isErased) == [true, false, false])

        let b = try EventLog(directory: target.path)
        try b.append(copies.map(\.draft))
        let copied = try b.records(after: 0, limit: 10)
        #expect(copied.map(\.id) == copies.map(\.id))
        #expect(copied.map(\.text) == [nil, "new", "kept"])
        #expect(try b.currentStep(of: stream)! == (sequence: 2, step: 2))
        #expect(try b.versionVector()[a.id] == 3)
        #expect(try b.append(copies.map(\.draft)) == copies.map { .duplicate($0.id) })
    }

    @Test func localTablesKeepTypedRecordsInKeyOrder() throws {
        struct Note: Codable, Sendable, Equatable { let text: String }
        let notes = LocalTable<Int64, Note>("test.notes")
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        #expect(try log.record(1, in: notes) == nil)
        for key: Int64 in [300, -5, 2] { try log.setRecord(Note(text: "\(key)"), for: key, in: notes) }
        #expect(try EventLog(directory: dir.path).records(in: notes).map(\.key) == [-5, 2, 300], "durable, and in numeric order")
        try log.setRecord(nil, for: 2, in: notes)
        #expect(try log.records(in: notes).map(\.record) == [Note(text: "-5"), Note(text: "300")])

        let other = LocalTable<Int64, String>("test.notes")
        #expect(throws: LogError.self, "a record of another type is damage, not a trap") { try log.record(-5, in: other) }
    }

    @Test func legacyLocalValuesMoveToTheirTableOnce() throws {
        let table = LocalTable<String, Int64>("test.cursors")
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        try log.env.write { txn in
            try txn.put(Array("cursor.a".utf8), Array("7".utf8), in: log.db.local)
            try txn.put(Array("cursor.b".utf8), Array("x".utf8), in: log.db.local)
            try txn.put(Array("other".utf8), [1], in: log.db.local)
        }
        try log.moveLegacyValues(withPrefix: "cursor.", into: table) { key, value in
            Int64(String(decoding: value, as: UTF8.self)).map { (key, $0) }
        }
        #expect(try log.records(in: table).map { "\($0.key)=\($0.record)" } == ["a=7"], "what does not convert is dropped")
        let left = try log.env.read { txn in try [Array("cursor.a".utf8), Array("other".utf8)].map { try txn.value($0, in: log.db.local) } }
        #expect(left == [nil, [1]], "moved values leave the old keyspace; others stay")
    }

    @Test func readsCanSkipKindsBeforeUnsealing() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        try log.append([text("a", kind: 1), text("b", kind: 2, sealed: true), text("c", kind: 1)])
        #expect(try log.records(after: 0, limit: 1, including: { $0 == 1 }).map(\.text) == ["a"])
        #expect(try log.records(after: 1, limit: 5, including: { $0 == 1 }).map(\.text) == ["c"])
    }

    @Test func olderCopiesNeverLowerTheVersionVector() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        let origin = LogID.random()
        try log.append([text("newer", id: EventID(origin: origin, sequence: 10))])
        try log.append([text("older", id: EventID(origin: origin, sequence: 5))])
        #expect(try log.versionVector()[origin] == 10)
    }

    @Test func positionZeroHoldsNoRecord() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        try log.append([text("a")])
        #expect(try log.record(at: 0) == nil)
        #expect(try log.record(at: 2) == nil)
    }

    @Test func ownEventsComingBackAreDuplicatesAndForgedOnesAreRefused() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        try log.append([text("a")])
        #expect(try log.append([text("a", id: EventID(origin: log.id, sequence: 1))]) == [.duplicate(EventID(origin: log.id, sequence: 1))])
        let forged = EventID(origin: log.id, sequence: 9)
        #expect(throws: LogError.eventClaimsThisLog(forged)) { try log.append([text("z", id: forged)]) }
        #expect(try log.head().sequence == 1)
    }

    @Test(arguments: [SealingCipher.aes256GCM, .chaCha20Poly1305].filter(\.isAvailable))
    func sealedPayloadsReadBackAndAreNotStoredInTheClear(cipher: SealingCipher) throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path, options: LogOptions(sealingCipher: cipher))
        try log.append([text("secret-chain-key-0001", sealed: true)])
        #expect(try log.record(at: 1)?.text == "secret-chain-key-0001")
        let data = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/data.mdb"))
        #expect(data.range(of: Data("secret-chain-key-0001".utf8)) == nil)
    }

    @Test func eachRecordNamesItsCipherSoOneLogHoldsBoth() throws {
        guard SealingCipher.aes256GCM.isAvailable else { return }
        let dir = TemporaryDirectory()
        try EventLog(directory: dir.path, options: LogOptions(sealingCipher: .chaCha20Poly1305)).append([text("old-cipher", sealed: true)])
        let log = try EventLog(directory: dir.path, options: LogOptions(sealingCipher: .aes256GCM))
        try log.append([text("new-cipher", sealed: true)])
        #expect(try log.records(after: 0, limit: 10).map(\.text) == ["old-cipher", "new-cipher"])

        // Relabel the AES-256-GCM record as ChaCha20-Poly1305: it no longer authenticates.
        let url = URL(fileURLWithPath: dir.path + "/data.mdb")
        var data = try Data(contentsOf: url)
        let header = Data([RecordCodec.version, 0x11, 0, 0, 1, 0, 0, 0] + log.id.bytes)
        let at = try #require(data.range(of: header)).lowerBound
        data[at + 1] = 0x01
        try data.write(to: url)
        #expect(throws: LogError.corruptRecord(sequence: 2, reason: "sealed payload does not authenticate with key slot 1")) {
            try EventLog(directory: dir.path).records(after: 1, limit: 1)
        }
    }

    @Test func aNewerStepErasesTheOlderOneBeyondRecovery() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        let stream = Array("session-1".utf8)
        try log.append([text("state-1", sealed: true, subject: stream, effect: .supersedes(step: 1))])
        let slotsBefore = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/keys.slots"))
        try log.append([text("state-2", sealed: true, subject: stream, effect: .supersedes(step: 2))])

        let records = try log.records(after: 0, limit: 10)
        #expect(records.map(\.text) == [nil, "state-2"])
        #expect(try log.currentStep(of: stream)! == (sequence: 2, step: 2))
        // The first key slot is now zeros: the old ciphertext can never be opened.
        let slots = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/keys.slots"))
        #expect(slotsBefore[16..<48] != Data(count: 32))
        #expect(slots[16..<48] == Data(count: 32))
        #expect(slots[48..<80] != Data(count: 32))
    }

    @Test func anErasureWhoseKeyZeroingWasLostIsFinishedWhenTheLogOpens() throws {
        let dir = TemporaryDirectory()
        let slotsPath = dir.path + "/keys.slots"
        let stream = Array("session-1".utf8)
        var slotsBefore = Data()
        do {
            let log = try EventLog(directory: dir.path)
            try log.append([text("state-1", sealed: true, subject: stream, effect: .supersedes(step: 1))])
            slotsBefore = try Data(contentsOf: URL(fileURLWithPath: slotsPath))
            try log.append([text("state-2", sealed: true, subject: stream, effect: .supersedes(step: 2))])
        }
        // A crash after the erasure committed but before its zeroed slot reached
        // the disk: the old key is back, and only the log's scrub list remembers it.
        var slots = try Data(contentsOf: URL(fileURLWithPath: slotsPath))
        slots[16..<48] = slotsBefore[16..<48]
        try slots.write(to: URL(fileURLWithPath: slotsPath))

        let reopened = try EventLog(directory: dir.path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: slotsPath))[16..<48] == Data(count: 32))
        #expect(try reopened.records(after: 0, limit: 10).map(\.text) == [nil, "state-2"])
    }

    @Test func aStreamNeverRollsBack() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        let stream = Array("session-1".utf8)
        let foreign = LogID.random()
        try log.append([text("state-5", sealed: true, subject: stream, effect: .supersedes(step: 5))])
        try log.append([text("state-3", sealed: true, subject: stream, effect: .supersedes(step: 3), id: EventID(origin: foreign, sequence: 1))])
        #expect(try log.records(after: 0, limit: 10).map(\.text) == ["state-5", nil])
        #expect(try log.currentStep(of: stream)! == (sequence: 1, step: 5))
    }

    @Test func closingAStreamErasesItsCurrentStepAndEveryLaterOne() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        let stream = Array("session-1".utf8), other = Array("session-2".utf8)
        try log.append([text("state-1", sealed: true, subject: stream, effect: .supersedes(step: 1)),
                        text("other-1", sealed: true, subject: other, effect: .supersedes(step: 1))])
        try log.append([text("closed", subject: stream, effect: .erasesSubject)])
        try log.append([text("state-9", sealed: true, subject: stream, effect: .supersedes(step: 9), id: EventID(origin: LogID.random(), sequence: 1))])
        #expect(try log.records(after: 0, limit: 10).map(\.text) == [nil, "other-1", "closed", nil], "closed: the state and a late copy are unreadable")
        #expect(try log.currentStep(of: stream) == nil)
        let slots = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/keys.slots"))
        #expect(slots[16..<48] == Data(count: 32), "the closed session's key slot is zeroed")
        #expect(slots[48..<80] != Data(count: 32))
    }

    @Test func stepsSupersededInsideOneBatchNeverReachTheKeyFile() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        let stream = Array("s".utf8)
        try log.append((1...3).map { text("state-\($0)", sealed: true, subject: stream, effect: .supersedes(step: UInt64($0))) })
        #expect(try log.records(after: 0, limit: 10).map(\.text) == [nil, nil, "state-3"])
        let slots = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/keys.slots"))
        #expect(slots[16..<80] == Data(count: 64))
    }

    @Test func erasingASubjectRemovesItsContentAndCatchesEventsThatArriveLater() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        let message = Array("message-1".utf8)
        let other = Array("message-2".utf8)
        try log.append([text("hello", sealed: true, subject: message), text("keep", sealed: true, subject: other)])
        try log.append([text("hello, edited", sealed: true, subject: message)])
        try log.append([text("delete", kind: 5, subject: message, effect: .erasesSubject)])
        #expect(try log.records(after: 0, limit: 10).map(\.text) == [nil, "keep", nil, "delete"])
        // An edit from another device arrives after the deletion: stored without content.
        let late = EventID(origin: LogID.random(), sequence: 7)
        #expect(try log.append([text("late edit", sealed: true, subject: message, id: late)]) == [.appended(sequence: 5, id: late)])
        #expect(try log.record(at: 5)?.isErased == true)
        #expect(try log.append([text("late edit", sealed: true, subject: message, id: late)]) == [.duplicate(late)])
    }

    @Test func erasingAnUnsealedSubjectRewritesItsRecords() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        let subject = Array("note".utf8)
        try log.append([text("plain words", subject: subject)])
        try log.append([text("erase", kind: 5, subject: subject, effect: .erasesSubject)])
        #expect(try log.record(at: 1)?.isErased == true)
        #expect(try log.record(at: 1)?.subject == subject)
    }

    @Test func anEffectNeedsASubject() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        #expect(throws: LogError.effectWithoutSubject(kind: 5)) { try log.append([text("x", kind: 5, effect: .erasesSubject)]) }
        #expect(try log.head().sequence == 0)
    }

    @Test func aFullMapGrowsInsteadOfFailing() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path, options: LogOptions(initialMapSize: 64 * 1024))
        let payload = String(repeating: "x", count: 2000)
        for _ in 0..<20 { try log.append((0..<50).map { _ in text(payload) }) }
        #expect(try log.head().sequence == 1000)
        #expect(try log.records(after: 999, limit: 1).first?.text == payload)
    }

    @Test func aDirectoryWithAnotherFileIsNotALog() throws {
        let dir = TemporaryDirectory()
        try Data("not lmdb at all, just some text that is long enough to be read".utf8).write(to: URL(fileURLWithPath: dir.path + "/data.mdb"))
        #expect(throws: LogError.notALog(path: dir.path, reason: "data.mdb is not an LMDB file")) {
            try EventLog(directory: dir.path)
        }
    }

    @Test func aCorruptRecordIsReportedWithItsSequence() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        try log.append([text("fine", sealed: true)])
        // Flip the key slot: the sealed payload no longer authenticates.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: dir.path + "/keys.slots"))
        try handle.seek(toOffset: 16)
        try handle.write(contentsOf: Data(repeating: 0xAB, count: 32))
        try handle.close()
        #expect(throws: LogError.corruptRecord(sequence: 1, reason: "sealed payload does not authenticate with key slot 0")) {
            try log.records(after: 0, limit: 1)
        }
    }

    @Test func cursorsAndEventIDsRoundTripThroughText() throws {
        let id = LogID.random()
        let cursor = Cursor(log: id, sequence: 42)
        #expect(try Cursor(parsing: cursor.description) == cursor)
        #expect(EventID(EventID(origin: id, sequence: 3).description) == EventID(origin: id, sequence: 3))
        #expect(throws: CursorParseError.unknownVersion("c9")) { try Cursor(parsing: "c9.\(id.hex).1") }
        #expect(throws: CursorParseError.malformed("c1.zz.1")) { try Cursor(parsing: "c1.zz.1") }
    }

    @Test func vectorsCompareByCoverage() {
        let a = LogID.random(), b = LogID.random()
        let big = VersionVector([a: 5, b: 2])
        #expect(big.covers(VersionVector([a: 5])))
        #expect(!big.covers(VersionVector([a: 6])))
        #expect(!VersionVector([a: 9]).covers(big))
    }
}

/// KiB of `file` this process holds resident through its memory maps (`/proc/self/smaps`).
private func residentKiB(of file: String) throws -> Int {
    var info = stat()
    guard stat(file, &info) == 0 else { throw CocoaError(.fileNoSuchFile) }
    // /proc files report no size: read to the end rather than by their length.
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps"))
    defer { try? handle.close() }
    let smaps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
    var total = 0
    var inFile = false
    for line in smaps.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if fields.first?.contains("-") == true, fields.count >= 5, !fields[0].hasSuffix(":") {
            inFile = UInt64(fields[4]) == UInt64(info.st_ino)
        } else if inFile, fields.first == "Rss:", fields.count >= 2, let kib = Int(fields[1]) {
            total += kib
        }
    }
    return total
}

import Foundation
import Testing
@testable import KeepsakeLog

/// A provisional claim on an empty log: only its holder appends while it stands;
/// kept, the appends stay; discarded, the log is empty again and their keys are gone.
@Suite struct ProvisionalClaimTests {
    private let progress = LocalTable<String, Int>("test.progress")

    @Test func onlyTheHolderAppendsWhileTheClaimStands() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        let claim = try log.claimProvisionally()
        #expect(throws: LogError.provisionallyClaimed(path: dir.path)) { try log.append([text("other")]) }
        #expect(throws: LogError.provisionallyClaimed(path: dir.path)) { try log.claimProvisionally() }
        let otherDir = TemporaryDirectory()
        let other = try EventLog(directory: otherDir.path).claimProvisionally()
        #expect(throws: LogError.provisionallyClaimed(path: dir.path)) { try log.appendDetailed([text("other")], under: other) }
        #expect(try log.head().sequence == 0, "refused appends left nothing")

        _ = try log.appendDetailed([text("mine")], under: claim)
        #expect(try EventLog(directory: dir.path).standingClaim() == claim, "the claim is in the log, for the next opener")
        try log.keep(claim)
        #expect(try log.standingClaim() == nil)
        try log.append([text("other")])
        #expect(try log.records(after: 0, limit: 10).map(\.text) == ["mine", "other"])
    }

    @Test func onlyAnEmptyLogCanBeClaimed() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        try log.append([text("a")])
        #expect(throws: LogError.notEmpty(path: dir.path)) { try log.claimProvisionally() }
        #expect(try log.standingClaim() == nil)
    }

    @Test func discardingEmptiesTheLogZeroesItsKeysAndClearsTheNamedTables() throws {
        let dir = TemporaryDirectory()
        let log = try EventLog(directory: dir.path)
        let claim = try log.claimProvisionally()
        let foreign = EventID(origin: LogID.random(), sequence: 9)
        _ = try log.appendDetailed(
            [text("sealed", sealed: true, subject: [1], effect: .supersedes(step: 1)), text("copied", id: foreign), text("plain", subject: [2])], under: claim)
        try log.setRecord(3, for: "chunks", in: progress)
        let slotsFile = dir.path + "/keys.slots"
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: slotsFile))).dropFirst(16).contains { $0 != 0 })

        try log.discard(claim, clearing: [progress.name])
        #expect(try log.head().sequence == 0)
        #expect(try log.records(after: 0, limit: 10).isEmpty)
        #expect(try log.versionVector() == VersionVector([log.id: 0]))
        #expect(try log.sequence(of: foreign) == nil)
        #expect(try log.currentStep(of: [1]) == nil)
        #expect(try log.record("chunks", in: progress) == nil)
        #expect(try log.standingClaim() == nil)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: slotsFile))).dropFirst(16).allSatisfy { $0 == 0 })
        #expect(try log.verify().problems.isEmpty, "the emptied log checks clean")

        try log.discard(claim, clearing: [])
        try log.append([text("again")])
        #expect(try log.records(after: 0, limit: 10).map(\.text) == ["again"], "a discarded claim is gone for good")
    }
}

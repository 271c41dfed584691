import Foundation
import Testing
import KeepsakeFuzzTargets

/// Replays the committed fuzz corpus and every crash `make fuzz` ever found
/// (Fuzz/corpus, Fuzz/crashes) through the same entry points libFuzzer drives:
/// none may trap, and the relay still answers after the hostile requests.
@Suite struct FuzzCorpusTests {
    static let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz").standardized

    private func inputs(_ folder: String, _ target: FuzzTarget) throws -> [URL] {
        let directory = Self.fuzz.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
        guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
    }

    @Test(arguments: FuzzTarget.allCases)
    func theCorpusAndEveryCrashFoundReplayWithoutATrap(target: FuzzTarget) async throws {
        let corpus = try inputs("corpus", target)
        #expect(!corpus.isEmpty, "Fuzz/corpus/\(target.rawValue) holds seeds")
        let inputs = try (corpus + (try inputs("crashes", target))).map { [UInt8](try Data(contentsOf: $0)) }
        // On a thread of its own, as libFuzzer runs it: the relay target waits for its
        // in-process relay and its answers, which must not hold up the concurrency pool.
        let relayHealthy = await withCheckedContinuation { done in
            Thread.detachNewThread {
                for input in inputs { target.run(input) }
                done.resume(returning: target == .relayRequest ? FuzzTarget.relay?.isHealthy() == true : true)
            }
        }
        #expect(relayHealthy, "the relay started and answers after the corpus")
    }

    @Test func seedsAreMadeForEveryTarget() throws {
        let seeds = try FuzzTarget.seeds()  // what `make fuzz-seeds` writes to Fuzz/corpus
        #expect(Set(seeds.keys) == Set(FuzzTarget.allCases))
        #expect(seeds.values.allSatisfy { !$0.isEmpty })
    }
}

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
    func theCorpusAndEveryCrashFoundReplayWithoutATrap(target: FuzzTarget) throws {
        let corpus = try inputs("corpus", target)
        #expect(!corpus.isEmpty, "Fuzz/corpus/\(target.rawValue) holds seeds")
        for file in corpus + (try inputs("crashes", target)) {
            target.run([UInt8](try Data(contentsOf: file)))
        }
        if target == .relayRequest {
            #expect(FuzzTarget.relay?.isHealthy() == true, "the relay answers after the corpus")
        }
    }

    @Test func seedsAreMadeForEveryTarget() throws {
        let seeds = try FuzzTarget.seeds()  // what `make fuzz-seeds` writes to Fuzz/corpus
        #expect(Set(seeds.keys) == Set(FuzzTarget.allCases))
        #expect(seeds.values.allSatisfy { !$0.isEmpty })
    }
}

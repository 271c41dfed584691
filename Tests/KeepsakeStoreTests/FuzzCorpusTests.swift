import Foundation
import Testing
import KeepsakeFuzzTargets

/// Replays the committed fuzz corpus and every crash `make fuzz` ever found
/// (Fuzz/corpus, Fuzz/crashes) through the same entry points libFuzzer drives:
/// none may trap, and the relay still answers after the hostile requests.
@Suite struct FuzzCorpusTests {
    static let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz").standardized

    /// The files of `Fuzz/<folder>/<target>` (corpus or crashes).
    static func inputs(_ folder: String, _ target: FuzzTarget) throws -> [URL] {
        let directory = Self.fuzz.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
        guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
    }

    /// The relay's requests are replayed against a relay process (RelayHardeningTests):
    /// one inside this test process would wait for a concurrency pool busy with other tests.
    @Test(arguments: FuzzTarget.allCases.filter { $0 != .relayRequest })
    func theCorpusAndEveryCrashFoundReplayWithoutATrap(target: FuzzTarget) throws {
        let corpus = try Self.inputs("corpus", target)
        #expect(!corpus.isEmpty, "Fuzz/corpus/\(target.rawValue) holds seeds")
        for file in corpus + (try Self.inputs("crashes", target)) {
            target.run([UInt8](try Data(contentsOf: file)))
        }
    }

    @Test func seedsAreMadeForEveryTarget() throws {
        let seeds = try FuzzTarget.seeds()  // what `make fuzz-seeds` writes to Fuzz/corpus
        #expect(Set(seeds.keys) == Set(FuzzTarget.allCases))
        #expect(seeds.values.allSatisfy { !$0.isEmpty })
    }
}

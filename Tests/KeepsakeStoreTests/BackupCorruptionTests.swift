import Foundation
import Testing
@testable import KeepsakeStore
import KeepsakeCrypto

/// Bad backup files: each fault gets its own error, and the store a restore was
/// aimed at stays byte for byte as it was.
@Suite struct BackupCorruptionTests {
    let f = BackupFixture()
    let target: Store
    let backup: BackupSummary
    let original: [UInt8]

    init() throws {
        let source = try f.store("source")
        try source.appendGenerated(messages: 120, conversations: 3)
        var options = f.options(.soft, chunkSize: 1024)
        options.compress = true
        backup = try source.backup(into: f.backups, options: options)
        original = try [UInt8](Data(contentsOf: backup.file))
        target = try f.store("target")
        try target.append(conversationCreated(.generate(), title: "Already here"))
    }

    /// Every file of the target store, by path: all but the restore lock and
    /// SQLite's shared-memory index, which every read touches and which holds no content.
    private func snapshot() throws -> [String: Data] {
        let root = target.directory
        var files: [String: Data] = [:]
        for case let path as String in FileManager.default.enumerator(atPath: root.path)!
        where !path.hasSuffix("backup.lock") && !path.hasSuffix("-shm") {
            var isDirectory: ObjCBool = false
            let url = root.appendingPathComponent(path)
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files[path] = try Data(contentsOf: url)
            }
        }
        return files
    }

    private func restore(_ bytes: [UInt8], key: BackupKey = rawKey(), sizeLimit: Int? = nil) -> BackupError? {
        let url = f.backups.appendingPathComponent("bad.ksbak")
        try! Data(bytes).write(to: url)
        var options = RestoreOptions(key: key)
        options.sizeLimit = sizeLimit
        do {
            _ = try target.restore(from: [url], options: options)
            return nil
        } catch {
            return error
        }
    }

    /// (offset, length) of each chunk after the header.
    private var chunks: [(offset: Int, length: Int)] {
        var out: [(Int, Int)] = []
        var offset = Int(original[10]) | Int(original[11]) << 8 | Int(original[12]) << 16 | Int(original[13]) << 24
        while offset < original.count {
            let length = 4 + (Int(original[offset]) | Int(original[offset + 1]) << 8 | Int(original[offset + 2]) << 16 | Int(original[offset + 3]) << 24)
            out.append((offset, length))
            offset += length
        }
        return out
    }

    @Test func everySingleByteFlipIsCaughtAndChangesNothing() throws {
        let before = try snapshot()
        let headerLength = chunks[0].offset
        #expect(chunks.count >= 4, "the file should span several chunks")
        for index in original.indices {
            var bad = original
            bad[index] ^= 0x40
            let error = try #require(restore(bad), "flipping byte \(index) went unnoticed")
            switch (index, error) {
            case (0..<8, .notABackup), (8..<10, .unsupportedVersion), (10..<14, .truncatedHeader):
                break
            case (10..<headerLength, .badSignature), (10..<headerLength, .corruptHeader):
                break
            case (headerLength..., .corruptChunk), (headerLength..., .truncated):
                break
            default:
                Issue.record("flipping byte \(index) gave \(error)")
            }
        }
        #expect(try snapshot() == before)
        #expect(try target.conversations().map(\.title) == ["Already here"])
    }

    @Test func truncationAtEveryChunkBoundaryIsNamed() throws {
        let before = try snapshot()
        #expect(restore(Array(original.prefix(chunks[0].offset))) == .truncated(afterChunk: -1))
        for (index, chunk) in chunks.enumerated().dropLast() {
            #expect(restore(Array(original.prefix(chunk.offset + chunk.length))) == .truncated(afterChunk: index))
        }
        let last = chunks.last!
        #expect(restore(Array(original.prefix(last.offset + last.length - 1))) == .truncated(afterChunk: chunks.count - 2))
        #expect(try snapshot() == before)
    }

    @Test func swappedAndForeignChunksFailAuthentication() throws {
        let before = try snapshot()
        let (a, b) = (chunks[0], chunks[1])
        var swapped = Array(original.prefix(a.offset))
        swapped += original[b.offset..<b.offset + b.length]
        swapped += original[a.offset..<a.offset + a.length]
        swapped += original[(b.offset + b.length)...]
        #expect(restore(swapped) == .corruptChunk(index: 0, reason: "it does not authenticate"))

        // A chunk from another backup made with the same key does not fit either.
        let other = try [UInt8](Data(contentsOf: try f.store("source").backup(into: f.backups, options: f.options(.soft, chunkSize: 1024)).file))
        let otherFirst = Int(other[10]) | Int(other[11]) << 8 | Int(other[12]) << 16 | Int(other[13]) << 24
        var mixed = Array(original.prefix(a.offset))
        mixed += other[otherFirst..<otherFirst + a.length]
        mixed += original[(a.offset + a.length)...]
        #expect(restore(mixed) == .corruptChunk(index: 0, reason: "it does not authenticate"))
        #expect(try snapshot() == before)
    }

    @Test func wrongKeysAreToldApartFromCorruptFiles() throws {
        let before = try snapshot()
        #expect(restore(original, key: rawKey(8)) == .wrongKey(.rawKey))
        #expect(restore(original, key: .mnemonic(try BackupKey.generateMnemonic())) == .keySourceMismatch(needs: .rawKey, given: .mnemonic))

        let phrase = try BackupKey.generateMnemonic()
        let byMnemonic = try f.store("source").backup(into: f.backups, options: f.options(.soft, key: .mnemonic(phrase)))
        let bytes = try [UInt8](Data(contentsOf: byMnemonic.file))
        #expect(restore(bytes, key: .mnemonic(try BackupKey.generateMnemonic())) == .wrongKey(.mnemonic))
        var typed = phrase.words
        typed[3] = String(typed[3].dropLast())
        #expect(throws: MnemonicError.self) { try Mnemonic(parsing: typed.joined(separator: " ")) }
        #expect(restore(bytes, key: .mnemonic(phrase)) == nil)
        #expect(try snapshot() != before, "the right phrase restores")
    }

    @Test func versionsLimitsAndMissingBasesAreRefusedUpFront() throws {
        let before = try snapshot()
        var newer = original
        newer[8] = 3
        #expect(restore(newer) == .unsupportedVersion(found: 3, supported: 2))
        #expect(restore(original, sizeLimit: 1000) == .tooLarge(bytes: original.count, limit: 1000))
        #expect(restore(Array("SQLite format 3\0 and more bytes".utf8)) == .notABackup)

        let source = try f.store("source")
        try source.append(conversationCreated(.generate(), title: "Later"))
        let increment = try source.backup(into: f.backups, options: f.options(.soft, incremental: true))
        #expect(restore(try [UInt8](Data(contentsOf: increment.file))) == .missingBase(backup: increment.header.id, missing: backup.header.id))
        #expect(try snapshot() == before)
    }

    @Test func aPassphraseProtectsTheFile() throws {
        let source = try f.store("source")
        let file = try source.backup(into: f.backups, options: f.options(.soft, key: .passphrase("correct horse battery staple"))).file
        let bytes = try [UInt8](Data(contentsOf: file))
        #expect(restore(bytes, key: .passphrase("correct horse battery stapler")) == .wrongKey(.passphrase))
        #expect(restore(bytes, key: .passphrase("correct horse battery staple")) == nil)
    }
}

import Foundation
import Testing
import KeepsakeRelay
@testable import KeepsakeMessaging
@testable import KeepsakeStore
import KeepsakeCrypto

/// Backups meet the protocol: a hard restore continues the sessions; a soft
/// restore's conversations stay read-only until a member reaches the new installation.
@Suite struct RestoreMessagingTests {
    let relay: InMemoryRelay
    let scratch = Scratch()
    let alice: AccountKey, bob: AccountKey
    let alicePhone: Device, bobPhone: Device
    let key: BackupKey

    init() async throws {
        relay = try InMemoryRelay()
        alice = try AccountKey.generate()
        bob = try AccountKey.generate()
        alicePhone = try Device("alice-phone", in: scratch, relay: relay)
        bobPhone = try Device("bob-phone", in: scratch, relay: relay)
        try await alicePhone.messenger.join(alice)
        try await bobPhone.messenger.join(bob)
        key = .raw(try SecureBytes.random(count: 32))
    }

    /// Alice and Bob exchange a few messages; returns their conversation.
    func converse() async throws -> ConversationID {
        let hello = try await alicePhone.messenger.send("hello", toAccount: bob.id)
        _ = try await bobPhone.messenger.sync()
        _ = try await bobPhone.messenger.send("hi", to: hello.conversation)
        _ = try await alicePhone.messenger.sync()
        return hello.conversation
    }

    func backup(_ kind: BackupKind) throws -> URL {
        let folder = scratch.path("backups-\(kind)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return try alicePhone.store.backup(into: folder, options: BackupOptions(kind: kind, key: key)).file
    }

    @Test func aHardRestoreOnANewDeviceContinuesTheSessions() async throws {
        let conversation = try await converse()
        let file = try backup(.hard)
        let newPhone = try Device("alice-new-phone", in: scratch, relay: relay)
        _ = try newPhone.store.restore(from: [file], options: RestoreOptions(key: key))
        #expect(try newPhone.store.membership()?.installation == alicePhone.store.membership()?.installation)

        let catchUp = try await newPhone.messenger.sync()
        #expect(catchUp.received.isEmpty && catchUp.rejected.isEmpty, "what the backup holds comes back as duplicates: \(catchUp)")
        let fromBob = try await bobPhone.messenger.send("are you on the new phone?", to: conversation)
        #expect(try await newPhone.messenger.sync().received == [fromBob.message])
        let reply = try await newPhone.messenger.send("yes", to: conversation)
        #expect(reply.envelopes == 1)
        #expect(try await bobPhone.messenger.sync().received == [reply.message])
        #expect(try bobPhone.texts(in: conversation) == ["hello", "hi", "are you on the new phone?", "yes"])
    }

    /// A backup names the account whose installation wrote it, as the account
    /// signed it; a store of another account refuses it unless forced.
    @Test func aBackupIsSignedByAnInstallationOfItsAccount() async throws {
        _ = try await converse()
        let file = try backup(.soft)
        let header = try Backup.header(of: file)
        let membership = try #require(try alicePhone.store.membership())
        #expect(header.version == 2)
        #expect(header.credential?.account == membership.account && header.credential?.installation == membership.installation)

        let messaging = MessagingExtension().eventKinds
        let verified = try Backup.verify([file], key: key, expectedAccount: membership.account, eventKinds: messaging)
        #expect(verified.map(\.signedBy) == ["installation \(membership.installation) of account \(membership.account)"])
        #expect(throws: BackupError.otherAccount(expected: bob.id, found: membership.account)) {
            try Backup.verify([file], key: key, expectedAccount: bob.id, eventKinds: messaging)
        }

        // The independent reader, written from docs/BACKUP-FORMAT.md, reads the credential alike.
        if let python = try? readBackupWithPython(file) {
            #expect(python.status == 0, "\(python.output)")
            #expect(python.output.contains("signed by installation \(membership.installation) of account \(membership.account)"))
        }

        let before = try bobPhone.store.cursor()
        #expect(throws: BackupError.otherAccount(expected: bob.id, found: membership.account)) {
            try bobPhone.store.restore(from: [file], options: RestoreOptions(key: key))
        }
        #expect(try bobPhone.store.cursor() == before, "nothing was restored")
        var forced = RestoreOptions(key: key)
        forced.force = true
        #expect(try bobPhone.store.restore(from: [file], options: forced).appended > 0)
    }

    /// Runs scripts/read-backup.py on `file` with this suite's key; throws where
    /// Python's `cryptography` package is missing.
    func readBackupWithPython(_ file: URL) throws -> (status: Int32, output: String) {
        guard case let .raw(secret) = key else { throw BackupError.keyHasNoLocator }
        let keyFile = scratch.path("python.key")
        try Data(secret.withUnsafeBytes { Array($0) }).write(to: keyFile)
        let script = URL(fileURLWithPath: #filePath).appendingPathComponent("../../../scripts/read-backup.py").standardized
        let env = URL(fileURLWithPath: "/usr/bin/env")
        guard try runProcess(env, ["python3", "-c", "import cryptography"]).status == 0 else { throw BackupError.notABackup }
        let reader = try runProcess(env, ["python3", script.path, keyFile.path, file.path])
        return (reader.status, reader.output + reader.error)
    }

    @Test func aSoftRestoreIsReadOnlyUntilAMemberReachesTheNewInstallation() async throws {
        let conversation = try await converse()
        let file = try backup(.soft)
        let tablet = try Device("alice-tablet", in: scratch, relay: relay)
        _ = try tablet.store.restore(from: [file], options: RestoreOptions(key: key))
        #expect(try tablet.texts(in: conversation) == ["hello", "hi"])
        #expect(try tablet.store.membership() == nil, "a soft backup carries no keys")
        try await tablet.messenger.join(alice, role: "tablet")
        #expect(try !tablet.store.isWritable(#require(try tablet.store.conversation(conversation))))
        await #expect(throws: MessagingError.readOnly(conversation)) { try await tablet.messenger.send("can I?", to: conversation) }

        let fromBob = try await bobPhone.messenger.send("welcome, tablet", to: conversation)
        #expect(fromBob.envelopes == 2, "alice's phone and her new tablet")
        #expect(try await tablet.messenger.sync().received == [fromBob.message])
        #expect(try tablet.store.isWritable(#require(try tablet.store.conversation(conversation))))
        let reply = try await tablet.messenger.send("thanks", to: conversation)
        #expect(try await bobPhone.messenger.sync().received == [reply.message])
        #expect(try await alicePhone.messenger.sync().received == [fromBob.message, reply.message])
    }

    @Test func aHardRestoreTakesTheOldDeviceOfflineWithinOneSyncAndErasesItsKeys() async throws {
        let conversation = try await converse()
        let file = try backup(.hard)
        let newPhone = try Device("alice-new-phone", in: scratch, relay: relay)
        _ = try newPhone.store.restore(from: [file], options: RestoreOptions(key: key))
        _ = try await newPhone.messenger.sync()

        let installation = try #require(try alicePhone.store.installation())
        do {
            _ = try await alicePhone.messenger.sync()
            Issue.record("the old device kept running")
        } catch let KeepsakeError.installationSuperseded(superseded) {
            #expect(superseded.id == installation.id && superseded.holder.generation == 2 && superseded.generation == 1)
        }
        let events = try alicePhone.store.events(after: .start(of: alicePhone.store.logID), limit: 10_000)
        #expect(!events.contains { if case .installationKeys = $0.payload { true } else { false } }, "the signing key is erased")
        #expect(!events.contains { if case .accountJoined? = MessagingEvent($0.payload) { true } else { false } }, "the identity key is erased")
        #expect(!events.contains { if case .prekeyCreated? = MessagingEvent($0.payload) { true } else { false } }, "every prekey is erased")
        #expect(!events.contains { if case .ratchetStep? = MessagingEvent($0.payload) { true } else { false } }, "every session is erased: \(events.map(\.payload.kindName))")
        await #expect(throws: KeepsakeError.self) { try await alicePhone.messenger.send("still me?", to: conversation) }

        let fromBob = try await bobPhone.messenger.send("which phone?", to: conversation)
        #expect(try await newPhone.messenger.sync().received == [fromBob.message], "the new device carries on")
    }
}

import Foundation
import GRDB
import Testing
@testable import KeepsakeStore
@testable import KeepsakeMessaging
import KeepsakeCrypto
import KeepsakeLog

/// The backup conformance corpus, `Tests/Fixtures/backup-corpus`: valid files
/// that exercise every event kind, cipher, compression setting, key source,
/// kind, selection and chain, and named invalid files, each with the exact
/// error a reader must give. `manifest.json` lists them; this suite and
/// `scripts/read-backup.py --corpus` both read all of it.
///
/// `make backup-corpus` writes it again (KEEPSAKE_WRITE_BACKUP_CORPUS=1). Its
/// files are committed and must keep reading as the manifest says in every
/// later version, like the other fixtures.
@Suite(.serialized) struct BackupCorpusTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/backup-corpus").standardized

    @Test func everyCaseReadsAsTheManifestSays() throws {
        let manifest = try CorpusManifest.load(from: Self.folder)
        #expect(manifest.cases.count >= 30)
        for entry in manifest.cases {
            let files = entry.files.map { Self.folder.appendingPathComponent($0) }
            let key = try manifest.key(entry.key)
            do {
                let verified = try Backup.verify(files, key: key, eventKinds: MessagingExtension().eventKinds)
                #expect(entry.error == nil, "\(entry.name): read, but the manifest expects \(entry.error ?? "")")
                #expect(verified.map(\.events) == entry.events, "\(entry.name)")
                #expect(verified.map(\.signedBy) == entry.signedBy, "\(entry.name)")
            } catch {
                #expect(entry.error == error.code, "\(entry.name): \(error)")
                #expect(entry.message == error.description, "\(entry.name)")
            }
        }
    }

    @Test func everyValidCaseRestoresIntoAFreshStore() throws {
        let manifest = try CorpusManifest.load(from: Self.folder)
        for entry in manifest.cases where entry.error == nil {
            let dir = TemporaryDirectory()
            let store = try Store.open(at: dir.store, options: StoreOptions(extensions: [MessagingExtension()]))
            let summary = try store.restore(
                from: entry.files.map { Self.folder.appendingPathComponent($0) }, options: RestoreOptions(key: try manifest.key(entry.key)))
            #expect(summary.appended == entry.events.reduce(0) { $0 + Int($1) }, "\(entry.name)")
            #expect(try store.check().isClean, "\(entry.name)")
        }
    }

    @Test(.enabled(if: FixtureTests.independentReaderAvailable)) func theIndependentReaderAgreesWithTheCorpus() throws {
        let root = Self.folder.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let result = try CLI.runTool("/usr/bin/env", "python3", root.appendingPathComponent("scripts/read-backup.py").path, "--corpus", Self.folder.path)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("corpus: every case as the manifest says"), "\(result.output)")
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["KEEPSAKE_WRITE_BACKUP_CORPUS"] == "1"))
    func writeTheCorpus() throws {
        var writer = CorpusWriter(into: Self.folder)
        try writer.write()
    }
}

/// `manifest.json`: the keys, and each case's files, key and expected outcome.
struct CorpusManifest: Codable {
    struct Case: Codable {
        var name: String
        var files: [String]
        var key: String
        /// Events per file, in chain order (valid cases).
        var events: [UInt64]
        /// Who signed each file, as `VerifiedBackup.signedBy` says (valid cases).
        var signedBy: [String]
        /// The `BackupError.code` a reader must give (invalid cases), and its message.
        var error: String?
        var message: String?
        /// Whether a reader of single files can see the fault (chain links need all the files).
        var singleFile: Bool
    }
    /// Keys by name: `raw:<64 hex digits>`, `passphrase:<text>` or `mnemonic:<24 words>`.
    var keys: [String: String]
    var cases: [Case]

    static func load(from folder: URL) throws -> CorpusManifest {
        try JSONDecoder().decode(CorpusManifest.self, from: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
    }

    func key(_ name: String) throws -> BackupKey {
        let spec = try #require(keys[name], "no key \(name)")
        if spec.hasPrefix("raw:") { return .raw(try SecureBytes(copying: try #require(Hex.decode(spec.dropFirst(4))))) }
        if spec.hasPrefix("passphrase:") { return .passphrase(String(spec.dropFirst(11))) }
        return .mnemonic(try Mnemonic(parsing: String(spec.dropFirst(9))))
    }
}

/// Writes the corpus: real stores backed up by the real writer for the valid
/// cases, and files forged from them (`BackupForgery`) for the invalid ones.
struct CorpusWriter {
    let folder: URL
    let work = TemporaryDirectory()
    static let rawKey = (0..<32).map { UInt8($0) }
    var keys: [String: String] = [
        "raw": "raw:" + Hex.encode(rawKey),
        "other-raw": "raw:" + Hex.encode((0..<32).map { UInt8(255 - $0) }),
        "passphrase": "passphrase:Gr\u{FC}\u{DF}e, J\u{FC}rgen",
        "passphrase-nfd": "passphrase:Gru\u{308}\u{DF}e, Ju\u{308}rgen",
        "mnemonic": "mnemonic:" + (try! Mnemonic(key: try! SecureBytes(copying: (0..<32).map { UInt8($0 * 7 % 256) }))).description,
    ]
    var cases: [CorpusManifest.Case] = []

    init(into folder: URL) { self.folder = folder }

    func key(_ name: String) throws -> BackupKey {
        try CorpusManifest(keys: keys, cases: []).key(name)
    }

    mutating func write() throws {
        try? FileManager.default.removeItem(at: folder)
        for sub in ["valid", "invalid"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        let account = try SigningKey.generate()
        let store = try everyKind(account: account)
        let plain = try Store.open(at: work.url.appendingPathComponent("no-account"), options: StoreOptions(extensions: [MessagingExtension()]))
        _ = try plain.createInstallation()
        try plain.append(conversationCreated(.generate(), title: "No account here"))

        /// Only the raw-key soft backups form the chain below.
        func options(_ kind: BackupKind, _ key: String, chunk: Int = 1024) throws -> BackupOptions {
            var options = BackupOptions(kind: kind, key: try self.key(key))
            options.chunkSize = chunk
            options.startsChain = kind == .soft && key == "raw"
            return options
        }
        let softAES = try valid("full-soft-aes-zstd", store, options(.soft, "raw"))
        var xchacha = try options(.hard, "raw", chunk: 2048)
        xchacha.cipher = .xChaCha20Poly1305
        xchacha.compress = false
        let hard = try valid("full-hard-xchacha-uncompressed", store, xchacha)
        let hardAESFile = try valid("full-hard-aes-zstd", store, options(.hard, "raw"))
        _ = try valid("full-soft-mnemonic", store, options(.soft, "mnemonic", chunk: 64 << 10))
        let passphrase = try valid("full-soft-passphrase", store, options(.soft, "passphrase", chunk: 64 << 10))
        cases.append(.init(name: "full-soft-passphrase-nfd-spelling", files: [passphrase.file], key: "passphrase-nfd",
                           events: passphrase.events, signedBy: passphrase.signedBy, singleFile: true))
        var selection = try options(.soft, "raw")
        selection.elements = [.conversations, .messages]
        selection.conversations = [try #require(try store.conversations().first).id]
        _ = try valid("selection-one-conversation", store, selection)
        var groups = try options(.soft, "raw")
        groups.conversationKinds = [.group]
        _ = try valid("selection-group-conversations", store, groups)
        _ = try valid("no-account-credential", plain, options(.soft, "raw"))

        // A chain: the full soft backup above, then two incrementals.
        try store.append(.messageReceived(MessagePost(conversation: try store.conversations()[0].id, sender: "bob", text: "after the full backup")))
        var incremental = try options(.soft, "raw")
        incremental.incremental = true
        let first = try store.backup(into: folder.appendingPathComponent("valid"), options: rename(incremental, "chain-incremental-1"))
        try store.append(.preferenceChanged(PreferenceChange(key: "theme", value: Array("dark".utf8))))
        let second = try store.backup(into: folder.appendingPathComponent("valid"), options: rename(incremental, "chain-incremental-2"))
        let chain = [softAES.file, "valid/chain-incremental-1.ksbak", "valid/chain-incremental-2.ksbak"]
        cases.append(.init(name: "chain-full-and-two-incrementals", files: chain, key: "raw",
                           events: softAES.events + [first.events, second.events],
                           signedBy: Array(repeating: softAES.signedBy[0], count: 3), singleFile: true))

        try forgeries(soft: softAES.file, hard: hardAESFile.file, hardXChaCha: hard.file, store: store, account: account, chain: chain)
        let manifest = CorpusManifest(keys: keys, cases: cases)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(manifest).write(to: folder.appendingPathComponent("manifest.json"))
    }

    /// A store holding every event kind (1 to 21), its installation joined to `account`.
    private func everyKind(account: SigningKey) throws -> Store {
        let store = try Store.open(at: work.url.appendingPathComponent("every-kind"), options: StoreOptions(extensions: [MessagingExtension()]))
        let installation = try store.createInstallation()
        let credential = try Self.credential(account: account, installation: installation)
        try store.install(CorpusAccount(credential: credential))
        let me = AccountID(credential.account.rawValue)
        let direct = ConversationStart(kind: .direct, title: "Bob", members: [me, "bob"], createdBy: me)
        let group = ConversationStart(kind: .group, title: "Climbing", members: [me, "bob", "carol"], createdBy: me)
        let hello = MessagePost(conversation: direct.id, sender: me, text: "hello bob", sentAt: Date(timeIntervalSince1970: 1_800_000_000))
        let reply = MessagePost(conversation: direct.id, sender: "bob", text: "hi! caf\u{E9}?", sentAt: Date(timeIntervalSince1970: 1_800_000_060))
        let gone = MessagePost(conversation: group.id, sender: "carol", text: "oops", sentAt: Date(timeIntervalSince1970: 1_800_000_120))
        let contents: [EventContent] = [
            .conversationCreated(direct), .conversationCreated(group),
            .messageSent(hello), .messageReceived(reply), .messageReceived(gone),
            .messageEdited(MessageEdit(message: hello.id, conversation: direct.id, text: "hello, bob")),
            .messageDeleted(MessageDeletion(message: gone.id, conversation: group.id)),
            .membershipCommitted(MembershipChange(conversation: group.id, epoch: 1, added: ["dave"], committer: me)),
            .contactAdded(ContactEntry(account: "bob", displayName: "Bob")), .contactAdded(ContactEntry(account: "eve", displayName: "Eve")),
            .contactRemoved("eve"), .consentChanged(ConsentChange(subject: .account("bob"), state: .allowed)),
            .preferenceChanged(PreferenceChange(key: "locale", value: Array("de".utf8))),
            .conversationRead(ReadMarker(conversation: direct.id, upTo: reply.id)),
        ]
        try store.append(contentsOf: contents.map { EventDraft($0) })
        let peer = InstallationID.generate()
        var joined = AccountJoined()
        joined.installationID = Data(installation.id.bytes)
        joined.account = credential.account.rawValue
        joined.signedBundle = Data(credential.bundle)
        joined.identitySecret = Data(Random.bytes(32))
        joined.identityKey = Data(Random.bytes(32))
        var prekey = PrekeyCreated()
        prekey.installationID = Data(installation.id.bytes)
        prekey.prekeyID = 1
        prekey.secret = Data(Random.bytes(32))
        prekey.signedPrekey = Data(Random.bytes(100))
        var fallback = prekey
        fallback.prekeyID = 2
        fallback.fallback = true
        var used = PrekeyUsed()
        used.installationID = prekey.installationID
        used.prekeyID = 1
        var known = PeerInstallation()
        known.installationID = Data(peer.bytes)
        known.account = "bob"
        known.signingKey = Data(Random.bytes(32))
        known.identityKey = Data(Random.bytes(32))
        known.createdAtMs = 1_800_000_000_000
        known.role = "phone"
        var closed = SessionClosed()
        closed.streamID = Data("old-session".utf8)
        closed.reason = "replaced"
        var history = HistoryRequestChanged()
        history.requestID = Data(Random.bytes(16))
        history.role = .requester
        history.peerInstallation = peer.description
        history.verificationPin = 123_456
        history.status = .pending
        let messaging: [MessagingEvent] = [
            .accountJoined(joined), .prekeyCreated(prekey), .prekeyCreated(fallback), .prekeyUsed(used), .peerInstallation(known),
        ]
        try store.append(contentsOf: messaging.map { EventDraft($0) })
        for step in 1...3 { try store.append(ratchetStep(stream: "session-bob", peer: "bob", step: UInt64(step), state: "state \(step)")) }
        try store.append(ratchetStep(stream: "old-session", peer: "bob", step: 1, state: "old"))
        try store.append(contentsOf: [EventDraft(MessagingEvent.sessionClosed(closed)), EventDraft(MessagingEvent.historyRequest(history))])
        var restored = InstallationRestored()
        restored.installationID = Data(peer.bytes)
        restored.generation = 2
        restored.restoredByLog = Data(Random.bytes(16))
        restored.backupID = Data(BackupID.generate().bytes)
        var retired = InstallationRetired()
        retired.installationID = Data(peer.bytes)
        retired.supersededByGeneration = 2
        try store.append(contentsOf: [EventDraft(.installationRestored(restored)), EventDraft(.installationRetired(retired))])
        return store
    }

    /// A contact bundle for `installation`, signed by `account` (the three fields a credential reads).
    static func credential(account: SigningKey, installation: Installation) throws -> AccountCredential {
        var fields = InstallationCredential()
        fields.accountKey = Data(account.publicKey)
        fields.installationID = Data(installation.id.bytes)
        fields.signingKey = Data(installation.publicKey)
        let bundle: [UInt8] = try fields.serializedBytes()
        return try AccountCredential(bundle: bundle, signature: account.sign(Array(AccountCredential.label.utf8) + [0] + bundle))
    }

    private func rename(_ options: BackupOptions, _ name: String) -> BackupOptions {
        var renamed = options
        renamed.fileName = "\(name).ksbak"
        return renamed
    }

    /// Writes a valid case with the real writer and records it.
    private mutating func valid(_ name: String, _ store: Store, _ options: BackupOptions) throws -> (file: String, events: [UInt64], signedBy: [String]) {
        let summary = try store.backup(into: folder.appendingPathComponent("valid"), options: rename(options, name))
        let keyName = keys.first { (try? self.key($0.key).source) == options.key.source }!.key
        let verified = try Backup.verify([summary.file], key: options.key, eventKinds: MessagingExtension().eventKinds)
        let entry = CorpusManifest.Case(name: name, files: ["valid/\(name).ksbak"], key: keyName, events: verified.map(\.events),
                                        signedBy: verified.map(\.signedBy), singleFile: true)
        cases.append(entry)
        return (entry.files[0], entry.events, entry.signedBy)
    }

    /// Writes an invalid case from `forgery` (or raw bytes) and records the error the library gives.
    private mutating func invalid(_ name: String, key: String = "raw", bytes: [UInt8]? = nil, forgery: BackupForgery? = nil,
                                  files: [String]? = nil, singleFile: Bool = true) throws {
        let path = "invalid/\(name).ksbak"
        let url = folder.appendingPathComponent(path)
        if let bytes { try Data(bytes).write(to: url) }
        if let forgery { try forgery.write(to: url, key: try self.key("raw")) }
        let list = files ?? [path]
        do {
            _ = try Backup.verify(list.map { folder.appendingPathComponent($0) }, key: try self.key(key), eventKinds: MessagingExtension().eventKinds)
            Issue.record("\(name) reads; it should not")
        } catch let error as BackupError {
            cases.append(.init(name: name, files: list, key: key, events: [], signedBy: [], error: error.code, message: error.description,
                               singleFile: singleFile))
        }
    }

    private mutating func forgeries(soft: String, hard: String, hardXChaCha: String, store: Store, account: SigningKey, chain: [String]) throws {
        let raw = try key("raw")
        let softURL = folder.appendingPathComponent(soft), hardURL = folder.appendingPathComponent(hard)
        let original = [UInt8](try Data(contentsOf: softURL))
        let signer = try store.signingKey().1
        let softCopy = try BackupForgery(of: softURL, key: raw, signer: signer)
        let hardCopy = try BackupForgery(of: hardURL, key: raw, signer: signer)

        var bytes = original
        bytes[0] = 0x88
        try invalid("not-a-backup", bytes: bytes)
        bytes = original
        bytes[8] = 3
        try invalid("version-3", bytes: bytes)
        try invalid("truncated-header", bytes: Array(original.prefix(100)))
        let headerLength = Int(original[10]) | Int(original[11]) << 8 | Int(original[12]) << 16
        bytes = original
        bytes[headerLength - 1] ^= 0x01
        try invalid("bad-signature", bytes: bytes)
        bytes = original
        bytes[headerLength + 40] ^= 0x01
        try invalid("altered-chunk", bytes: bytes)
        try invalid("truncated-after-first-chunk", bytes: Array(original.prefix(headerLength + 4 + Int(original[headerLength]) + Int(original[headerLength + 1]) << 8)))
        try invalid("wrong-key", key: "other-raw", bytes: original)
        try invalid("wrong-key-source", key: "mnemonic", bytes: original)

        var forged = softCopy
        forged.header.elements = .hard
        try invalid("soft-selects-secrets", forgery: forged)
        forged = softCopy
        forged.header.opsLimit = 2
        forged.header.memLimit = 1 << 20
        try invalid("argon2id-limits-with-a-raw-key", forgery: forged)
        forged = softCopy
        forged.header.fromSequence = 3
        try invalid("full-backup-with-a-from-sequence", forgery: forged)
        forged = softCopy
        forged.header.conversations = [ConversationID(bytes: [UInt8](repeating: 2, count: 16))!, ConversationID(bytes: [UInt8](repeating: 1, count: 16))!]
        try invalid("conversations-out-of-order", forgery: forged)
        forged = softCopy
        forged.header.credential = try Self.credential(account: account, installation: Installation(
            id: .generate(), publicKey: try SigningKey.generate().publicKey, generation: 1, holder: (1, store.logID)))
        try invalid("credential-for-another-key", forgery: forged)

        try invalid("hard-file-re-signed-keeping-its-credential", forgery: try BackupForgery(of: hardURL, key: raw))
        forged = try BackupForgery(of: hardURL, key: raw)
        forged.header.credential = nil
        try invalid("hard-file-re-signed-without-credential", forgery: forged)
        forged = hardCopy
        forged.header.kind = .soft
        forged.header.elements = .soft
        try invalid("hard-file-labelled-soft", forgery: forged)
        forged = hardCopy
        forged.chunks = forged.chunks.map { ($0.frames.filter { if case let .event(d) = $0 { d.kind != 13 } else { true } }, $0.compressed) }
        let last = forged.chunks.count - 1
        if case let .trailer(count)? = forged.chunks[last].frames.last { forged.chunks[last].frames[forged.chunks[last].frames.count - 1] = .trailer(events: count - 1) }
        try invalid("full-hard-without-installation-keys", forgery: forged)

        forged = softCopy
        forged.header.compressed = false
        forged.chunks[1].compressed = true
        try invalid("compressed-chunk-when-the-header-says-never", forgery: forged)
        forged = softCopy
        forged.chunks.insert(([], false), at: 1)
        try invalid("empty-chunk", forgery: forged)
        let head = try #require(softCopy.chunks.firstIndex { $0.frames.contains(.headEnd) })
        forged = softCopy
        forged.chunks.insert(([.headEnd], false), at: head + 1)
        try invalid("second-head-end", forgery: forged)
        let events = softCopy.chunks.flatMap(\.frames).filter { if case .event = $0 { true } else { false } }
        forged = softCopy
        forged.chunks[head].frames.append(events[events.count - 1])
        try invalid("head-end-not-ending-its-chunk", forgery: forged)
        forged = softCopy
        forged.chunks[forged.chunks.count - 1].frames.insert(events[0], at: 0)
        if case let .trailer(count)? = forged.chunks[forged.chunks.count - 1].frames.last {
            forged.chunks[forged.chunks.count - 1].frames[forged.chunks[forged.chunks.count - 1].frames.count - 1] = .trailer(events: count + 1)
        }
        try invalid("repeated-event", forgery: forged)
        forged = softCopy
        if case let .event(first) = events[0] { forged.header.to = VersionVector([first.id!.origin: 1]) }
        try invalid("event-beyond-the-to-vector", forgery: forged)
        forged = softCopy
        forged.chunks[forged.chunks.count - 1].frames.removeLast()
        try invalid("no-trailer", forgery: forged)

        forged = try BackupForgery(of: folder.appendingPathComponent(chain[1]), key: raw, signer: signer)
        forged.header.base?.hash = [UInt8](repeating: 0xAB, count: 32)
        try invalid("chain-link-with-a-wrong-base-hash", forgery: forged,
                    files: [chain[0], "invalid/chain-link-with-a-wrong-base-hash.ksbak"], singleFile: false)
    }
}

/// Vouches for a store's installation with a fixed credential, as messaging does once joined.
private struct CorpusAccount: StoreExtension {
    let credential: AccountCredential
    var name: String { "corpus-account" }
    var migrations: [ProjectionMigration] { [] }
    var tables: [ProjectedTable] { [] }
    func projector(for db: GRDB.Database, bulk: Bool) -> any ExtensionProjector { NoTables() }
    func accountCredential(in store: Store) throws(KeepsakeError) -> AccountCredential? { credential }

    struct NoTables: ExtensionProjector {
        mutating func apply(_ event: Event) throws {}
        mutating func finish() throws {}
        var changedTables: Set<ProjectedTable> { [] }
    }
}

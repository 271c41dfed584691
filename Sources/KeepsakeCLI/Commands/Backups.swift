import ArgumentParser
import Foundation
import Keepsake
import KeepsakeCrypto
import KeepsakeRelayClient

/// How the backup key is given: a key file, a passphrase, or a 24-word recovery phrase.
struct KeyOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "A file holding the 32-byte key (raw, or 64 hex digits). Make one with: head -c 32 /dev/urandom > backup.key",
        valueName: "file"))
    var keyFile: String?

    @Flag(help: "Use a passphrase: from $KEEPSAKE_PASSPHRASE, or asked for on the terminal.")
    var passphrase = false

    @Flag(help: """
        Use a 24-word recovery phrase: from $KEEPSAKE_MNEMONIC, or asked for on the terminal. \
        When backing up without one, a new phrase is generated and printed once: write it down.
        """)
    var mnemonic = false

    func validate() throws {
        guard [keyFile != nil, passphrase, mnemonic].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --key-file, --passphrase, --mnemonic")
        }
    }

    /// The key; `generating` lets --mnemonic make a new phrase (printed to standard error) when none is given.
    /// A key of the kind the options name, for a dry run: what a backup would be
    /// sealed with matters (a chain keeps one kind of key), the key itself does not.
    func kindOfKey() throws -> BackupKey {
        if keyFile != nil { return try key(generating: false) }
        if passphrase { return .passphrase("dry run") }
        if let words = ProcessInfo.processInfo.environment["KEEPSAKE_MNEMONIC"] { return .mnemonic(try Mnemonic(parsing: words)) }
        return .mnemonic(try BackupKey.generateMnemonic())
    }

    func key(generating: Bool) throws -> BackupKey {
        let environment = ProcessInfo.processInfo.environment
        if let keyFile { return try BackupKey.fromFile(URL(fileURLWithPath: keyFile)) }
        if passphrase {
            if let text = environment["KEEPSAKE_PASSPHRASE"] {
                guard !text.isEmpty else { throw ValidationError("KEEPSAKE_PASSPHRASE is set but empty; set it to the passphrase, or unset it to be asked") }
                return .passphrase(text)
            }
            guard let typed = getpass("Passphrase: ").map({ String(cString: $0) }), !typed.isEmpty else {
                throw ValidationError("no passphrase given")
            }
            return .passphrase(typed)
        }
        if let words = environment["KEEPSAKE_MNEMONIC"] { return .mnemonic(try Mnemonic(parsing: words)) }
        if generating {
            let phrase = try BackupKey.generateMnemonic()
            FileHandle.standardError.write(Data("""
                New recovery phrase for this backup. Write it down and keep it offline; \
                without it the backup cannot be restored:

                    \(phrase)

                Set KEEPSAKE_MNEMONIC to it for later backups and restores.

                """.utf8))
            return .mnemonic(phrase)
        }
        guard let typed = getpass("Recovery phrase (24 words): ").map({ String(cString: $0) }) else {
            throw ValidationError("no recovery phrase given")
        }
        return .mnemonic(try Mnemonic(parsing: typed))
    }
}

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write an encrypted, signed backup of the store.",
        discussion: """
        A backup is a snapshot of the log up to now. A soft backup (the default) holds \
        conversations, members, messages, contacts, consent and preferences: restored \
        conversations are read-only until another device re-adds this installation. A hard \
        backup also holds the installation's keys and session states: restoring it makes the \
        new device the installation and the old one must go offline. With --incremental, only \
        the events since the last backup of the same kind and selection are written, and the \
        file names the one it extends.
        """)

    @OptionGroup var location: StoreLocation
    @OptionGroup var keyOptions: KeyOptions
    @Flag(help: "Soft backup (default) or hard backup.") var kind: Kind = .soft
    @Flag(help: "Only the events since the last backup of the same kind and selection.") var incremental = false
    @Flag(help: "Say what the backup would hold and how large its file would be; write nothing.") var dryRun = false
    @Flag(help: "Write one archive per conversation, each its own chain (with --incremental, each extends its last).")
    var eachConversation = false
    @Option(help: ArgumentHelp(
        "Element kinds to include: conversations,messages,contacts,consent,preferences (hard also: sessions,identity).",
        valueName: "kinds"))
    var only: String?
    @Option(name: .customLong("conversation"), help: "Only this conversation (repeatable).") var conversations: [ConversationID] = []
    @Option(name: .customLong("conversation-kind"), help: ArgumentHelp("""
        Only conversations of this kind, direct or group (repeatable); also covers conversations \
        created later, in incremental backups.
        """, valueName: "kind"))
    var conversationKinds: [ConversationKindOption] = []
    @Option(help: ArgumentHelp("Directory to write the backup file into.", valueName: "dir")) var to = "."
    @Option(help: ArgumentHelp("Plaintext bytes per encrypted chunk (1024 to 16777216).", valueName: "bytes"), transform: bounded(1024...(16 << 20)))
    var chunkSize = 1 << 20
    @OptionGroup var output: OutputFormat

    enum Kind: String, EnumerableFlag {
        case soft, hard
    }

    func run() throws {
        let store = try location.open()
        var options = BackupOptions(kind: kind == .hard ? .hard : .soft, key: try dryRun ? keyOptions.kindOfKey() : keyOptions.key(generating: true))
        options.incremental = incremental
        if let only {
            guard let elements = BackupElements(names: only) else { throw ValidationError("unknown element kind in --only \(only)") }
            options.elements = elements
        }
        options.conversations = conversations
        options.conversationKinds = Set(conversationKinds.map(\.kind))
        options.chunkSize = chunkSize
        if dryRun { return try report(store.estimateBackup(options: options)) }
        try FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true)
        if eachConversation {
            let archives = try store.backupEachConversation(into: URL(fileURLWithPath: to), options: options)
            if output.json {
                printJSON(archives.map { $0.header.json(file: $0.file, hash: $0.hash, events: $0.events, bytes: $0.fileBytes) })
            } else {
                for archive in archives { print("wrote \(archive.file.path): \(archive.events) events, \(archive.fileBytes) bytes") }
                print("\(archives.count) conversation archive(s)")
            }
            return
        }
        let terminal = isatty(STDERR_FILENO) == 1
        let summary = try store.backup(into: URL(fileURLWithPath: to), options: options) { estimate in
            if terminal { FileHandle.standardError.write(Data("\rbacking up: \(estimate.text)   ".utf8)) }
        }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
        if output.json {
            printJSON(summary.header.json(file: summary.file, hash: summary.hash, events: summary.events, bytes: summary.fileBytes))
        } else {
            let base = summary.header.base.map { ", extends \($0.id)" } ?? ""
            print("wrote \(summary.file.path): \(summary.header.kind) backup \(summary.header.id)\(base)")
            print("\(summary.events) events, sequences \(summary.header.fromSequence + 1)...\(summary.header.toSequence), \(summary.fileBytes) bytes (\(summary.plaintextBytes) before compression and encryption)")
        }
    }

    private func report(_ estimate: BackupEstimate) {
        if output.json {
            printJSON([
                "dryRun": true, "kind": "\(estimate.kind)", "base": estimate.base?.description as Any, "from": estimate.fromSequence,
                "to": estimate.toSequence, "events": estimate.events, "eventsByElement": estimate.eventsByElement,
                "chunks": estimate.chunks, "plaintextBytes": estimate.plaintextBytes, "bytes": estimate.fileBytes,
            ])
            return
        }
        let base = estimate.base.map { "incremental backup extending \($0)" } ?? "full backup"
        print("would write a \(estimate.kind) \(base): \(estimate.events) events, sequences \(estimate.fromSequence + 1)...\(estimate.toSequence)")
        for (element, count) in estimate.eventsByElement.sorted(by: { $0.key < $1.key }) { print("  \(element): \(count)") }
        print("\(estimate.fileBytes) bytes in \(estimate.chunks) chunks (\(estimate.plaintextBytes) before compression and encryption); nothing was written")
    }
}

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore backup files into the store.",
        discussion: """
        Give a full backup and its incrementals in any order, or incrementals that extend a \
        backup restored here before. Every file is verified before anything is applied; events \
        the store already holds are skipped, and session states never move backwards. An \
        interrupted restore finishes when run again.
        """)

    @OptionGroup var location: StoreLocation
    @OptionGroup var keyOptions: KeyOptions
    @Argument(help: "Backup files.") var files: [String]
    @Flag(help: """
        Let a hard backup replace the installation this store already runs, and accept files \
        of another account than the store's (or of none).
        """) var force = false
    @Option(help: ArgumentHelp("""
        Accept only files written by an installation of this account (default: the account \
        the store belongs to, if any).
        """, valueName: "account-id")) var account: String?
    @Option(help: ArgumentHelp("Refuse files larger than this many bytes.", valueName: "bytes"), transform: bounded(1...Int.max)) var maxSize: Int?
    @OptionGroup var output: OutputFormat

    func run() throws {
        let store = try location.open(create: true)
        var options = RestoreOptions(key: try keyOptions.key(generating: false))
        options.force = force
        options.expectedAccount = account.map { AccountID($0) }
        options.sizeLimit = maxSize
        let terminal = isatty(STDERR_FILENO) == 1
        var stage = ""
        let summary = try store.restore(from: files.map { URL(fileURLWithPath: $0) }, options: options) { progress in
            guard terminal else { return }
            switch progress {
            case let .verifying(file, chunk): stage = "verifying file \(file + 1), chunk \(chunk)"
            case .headVisible: FileHandle.standardError.write(Data("\rconversation list and newest messages restored\n".utf8))
            case let .applying(file, chunk, events): stage = "applying file \(file + 1), chunk \(chunk): \(events) new events"
            case let .estimated(estimate): FileHandle.standardError.write(Data("\r\(stage); \(estimate.text)   ".utf8))
            }
        }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
        if output.json {
            printJSON([
                "appended": summary.appended, "duplicates": summary.duplicates, "nothingNew": summary.nothingNew,
                "seconds": summary.elapsed.seconds, "headVisibleSeconds": summary.headVisibleAfter.map(\.seconds) as Any,
                "backups": summary.backups.map { $0.header.json(file: $0.file, hash: $0.hash, events: $0.events, bytes: nil) },
            ])
        } else if summary.nothingNew {
            print("nothing new: the store already holds every event of \(summary.backups.count) backup file(s)")
        } else {
            print("restored \(summary.backups.count) backup file(s): \(summary.appended) new events, \(summary.duplicates) already here, in \(String(format: "%.2f", summary.elapsed.seconds)) s")
        }
        if !output.json {
            for signer in Set(summary.backups.map(\.signedBy)).sorted() { print("signed by \(signer)") }
        }
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check backup files without restoring them.",
        discussion: """
        Checks each file's header and its rules, its account credential and signature (before \
        any decryption), the key, every chunk against the format's rules, the totals, and the \
        links of a chain. Reports who signed each file: an installation of an account, or a \
        bare signing key for files of stores that joined no account.
        """)

    @OptionGroup var keyOptions: KeyOptions
    @Argument(help: "Backup files.") var files: [String]
    @Option(help: ArgumentHelp("Refuse files not written by an installation of this account.", valueName: "account-id"))
    var account: String?
    @Option(help: ArgumentHelp("Refuse files larger than this many bytes.", valueName: "bytes"), transform: bounded(1...Int.max)) var maxSize: Int?
    @OptionGroup var output: OutputFormat

    func run() throws {
        let verified = try Backup.verify(
            files.map { URL(fileURLWithPath: $0) }, key: try keyOptions.key(generating: false), sizeLimit: maxSize,
            expectedAccount: account.map { AccountID($0) }, eventKinds: MessagingExtension().eventKinds)
        if output.json {
            printJSON(verified.map { $0.header.json(file: $0.file, hash: $0.hash, events: $0.events, bytes: nil) })
            return
        }
        for backup in verified {
            let link = switch backup.baseChecked {
            case nil: "full"
            case true?: "extends \(backup.header.base!.id) (link checked)"
            case false?: "extends \(backup.header.base!.id) (not among the files: link not checked)"
            }
            print("ok  \(backup.file.lastPathComponent)  \(backup.header.kind) \(backup.header.id)  \(link)  \(backup.events) events in \(backup.chunks) chunks  hash \(backup.hash ?? "-")")
            print("    signed by \(backup.signedBy)")
        }
    }
}

struct BackupsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backups",
        abstract: "List backup files, and keep them on a relay's backup provider.",
        subcommands: [ListBackups.self, PushBackups.self, PullBackups.self],
        defaultSubcommand: ListBackups.self)
}

struct ListBackups: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the backups in a folder as chains, with their cursors (the default).",
        discussion: "Reads only the headers (signatures are checked); no key is needed.")

    @Argument(help: "The folder holding .ksbak files.") var directory = "."
    @OptionGroup var output: OutputFormat

    func run() throws {
        let url = URL(fileURLWithPath: directory)
        let files = try FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: [.fileSizeKey])
            .filter { $0.pathExtension == "ksbak" }
        var headers: [(URL, BackupHeader)] = []
        for file in files {
            do { headers.append((file, try Backup.header(of: file))) } catch {
                FileHandle.standardError.write(Data("skipping \(file.lastPathComponent): \(error)\n".utf8))
            }
        }
        headers.sort { ($0.1.toSequence, $0.1.createdAt) < ($1.1.toSequence, $1.1.createdAt) }
        if output.json {
            printJSON(headers.map { $0.1.json(file: $0.0, hash: nil, events: nil, bytes: nil) })
            return
        }
        for (file, header) in headers {
            let link = header.base.map { "extends \($0.id)" } ?? "full"
            print("\(file.lastPathComponent)  \(header.kind) \(header.id)  \(link)  c1.\(header.sourceLog.hex).\(header.fromSequence) → c1.\(header.sourceLog.hex).\(header.toSequence)  \(header.createdAt.iso8601)")
        }
    }
}

extension BackupHeader {
    func json(file: URL, hash: String?, events: UInt64?, bytes: Int?) -> [String: Any] {
        var out: [String: Any] = [
            "file": file.path, "id": id.description, "kind": "\(kind)", "sourceLog": sourceLog.hex,
            "from": "c1.\(sourceLog.hex).\(fromSequence)", "to": "c1.\(sourceLog.hex).\(toSequence)",
            "createdAt": createdAt.iso8601, "cipher": cipher.description, "keySource": "\(keySource)",
            "elements": elements.names, "version": version, "signer": Hex.encode(signer),
        ]
        if let credential {
            out["account"] = credential.account.rawValue
            out["installation"] = credential.installation.description
        }
        if let base { out["base"] = base.id.description }
        if let hash { out["hash"] = hash }
        if let events { out["events"] = events }
        if let bytes { out["bytes"] = bytes }
        return out
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension ProgressEstimate {
    /// `45% done, about 12 s left`, for a progress line.
    var text: String {
        let done = "\(Int(fraction * 100))% done"
        guard let remaining, fraction < 1 else { return done }
        return done + ", about \(Int(remaining.seconds.rounded(.up))) s left"
    }
}

struct PushBackups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Upload backup files to the relay's backup provider, listed under their key.",
        discussion: """
        The store's installation signs the uploads (it must have joined an account). Files the \
        provider already holds for this key are skipped. Fetch them back on any device with \
        `keepsake backups pull` and the same key file or recovery phrase.
        """)

    @OptionGroup var location: StoreLocation
    @OptionGroup var relay: RelayLocation
    @OptionGroup var keyOptions: KeyOptions
    @Option(help: "Days the provider keeps the files (1 to 30).", transform: bounded(1...30)) var days = 30
    @Argument(help: "The .ksbak files.") var files: [String]

    func run() async throws {
        let store = try location.open()
        let key = try keyOptions.key(generating: false)
        let provider = try relay.client()
        let held = Set(try await provider.listBackups(locator: try key.locator() ?? []).map(\.digest))
        for path in files {
            let file = URL(fileURLWithPath: path)
            if held.contains(try Blake2b.hash(contentsOf: file)) {
                print("\(file.lastPathComponent): already on the provider")
                continue
            }
            let stored = try await ProviderBackups.upload(file, key: key, store: store, provider: provider, lifetime: .seconds(Int64(days) * 86_400))
            print("\(file.lastPathComponent): uploaded as \(stored.id), kept until \(stored.expiresAt.iso8601)")
        }
    }
}

struct PullBackups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Download every backup a key made from the relay's backup provider.",
        discussion: """
        Needs only the key file or recovery phrase (a mistyped word is caught before anything is \
        asked). Then restore them: keepsake restore --store <new> --mnemonic <folder>/*.ksbak
        """)

    @OptionGroup var relay: RelayLocation
    @OptionGroup var keyOptions: KeyOptions
    @Option(help: ArgumentHelp("Where to put the files.", valueName: "dir")) var to = "."

    func run() async throws {
        let key = try keyOptions.key(generating: false)
        let files = try await ProviderBackups.download(key: key, from: try relay.client(), into: URL(fileURLWithPath: to))
        for file in files { print(file.path) }
    }
}

/// `--conversation-kind direct|group`.
enum ConversationKindOption: String, ExpressibleByArgument, CaseIterable {
    case direct, group

    var kind: ConversationKind { self == .direct ? .direct : .group }
}

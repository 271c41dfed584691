import Foundation
import KeepsakeCrypto
import KeepsakeLog

/// One verified backup file: its header, the hash of the whole file and its totals.
public struct VerifiedBackup: Sendable {
    /// The file.
    public let file: URL
    /// Its header, signature checked.
    public let header: BackupHeader
    /// BLAKE2b-256 of the whole file, hex (nil where a restore had no need to compute it).
    public let hash: String?
    /// How many events it holds.
    public let events: UInt64
    /// How many chunks it has.
    public let chunks: Int
    /// Whether the backup this one extends was among the files checked (nil for a full backup).
    public let baseChecked: Bool?

    /// The account whose installation wrote the file, as its credential proves; nil when it carries none.
    public var account: AccountID? { header.credential?.account }
    /// The installation that wrote the file, as its account vouches; nil when it carries no credential.
    public var installation: InstallationID? { header.credential?.installation }
    /// Who signed the file, in words: "installation X of account Y", or the bare signing key.
    public var signedBy: String {
        guard let credential = header.credential else { return "signing key \(Hex.encode(header.signer)) (no account credential)" }
        return "installation \(credential.installation) of account \(credential.account)"
    }

    func with(events: UInt64, hash: String?) -> VerifiedBackup {
        VerifiedBackup(file: file, header: header, hash: hash ?? self.hash, events: events, chunks: chunks, baseChecked: baseChecked)
    }
}

/// Checks backup files without restoring them.
public enum Backup {
    /// Verifies each file (size limit, header and its rules, account credential and
    /// signature before any decryption, key, every chunk against the format's
    /// content rules, totals) and the links between them: given a full backup and
    /// its incrementals in any order, they are put in chain order and each link's
    /// ID, hash, key source and cursors are checked. Returns the files in chain order.
    ///
    /// - Parameters:
    ///   - expectedAccount: when set, every file must carry a credential of this
    ///     account (`otherAccount` otherwise).
    ///   - eventKinds: event kinds of extensions beyond those the format names
    ///     (the store's and messaging's are in its table); other kinds count as
    ///     unknown, which soft backups never carry.
    public static func verify(
        _ files: [URL], key: BackupKey, sizeLimit: Int? = nil, expectedAccount: AccountID? = nil,
        eventKinds: [ExtensionEventKind] = []
    ) throws(BackupError) -> [VerifiedBackup] {
        let chain = try BackupChain(files: files, sizeLimit: sizeLimit, known: { _ in nil })
        if let expectedAccount { try chain.check(account: expectedAccount) }
        return try chain.verify(key: key, extensionKinds: ExtensionEventKind.byNumber(eventKinds))
    }
}

extension Backup {
    /// A file's header, after checking its magic, version and signature (nothing is decrypted).
    public static func header(of file: URL) throws(BackupError) -> BackupHeader {
        try BackupReader(url: file).header
    }
}

/// Backup files put in chain order (each incremental after the backup it extends).
struct BackupChain {
    let readers: [BackupReader]
    /// The whole-file hash of a backup restored here before, by ID (bases a chain may extend).
    private let known: (BackupID) -> String?

    /// Opens every file (checking limits, headers and signatures) and orders them.
    /// An incremental whose base is neither among the files nor `known` is refused.
    init(files: [URL], sizeLimit: Int?, known: @escaping (BackupID) -> String?, allowMissingBases: Bool = true) throws(BackupError) {
        var remaining: [BackupReader] = []
        for file in files { remaining.append(try BackupReader(url: file, sizeLimit: sizeLimit)) }
        let given = Set(remaining.map(\.header.id))
        if !allowMissingBases, let orphan = remaining.first(where: { $0.header.base.map { !given.contains($0.id) && known($0.id) == nil } ?? false }) {
            throw .missingBase(backup: orphan.header.id, missing: orphan.header.base!.id)
        }
        var ordered: [BackupReader] = []
        var placed: Set<BackupID> = []
        while !remaining.isEmpty {
            let next = remaining.firstIndex { reader in
                guard let base = reader.header.base else { return true }
                return placed.contains(base.id) || !given.contains(base.id)
            }
            guard let next else { throw .baseMismatch(backup: remaining[0].header.id, reason: "the files extend each other in a loop") }
            placed.insert(remaining[next].header.id)
            ordered.append(remaining.remove(at: next))
        }
        readers = ordered
        self.known = known
    }

    /// Reads every chunk of every file and checks each link. Nothing is applied.
    /// With `decode` false chunks are only authenticated, on all cores (a restore
    /// decodes them as it applies them): event counts are left at zero, and only
    /// files that others here extend are hashed (their hash is part of the link).
    /// Authenticates every file (and with `decode`, decodes every chunk);
    /// `shouldStop` is asked between chunks, and a yes throws `cancelled`.
    /// `progress` gets the file, its chunks checked, and the bytes of all files checked so far.
    func verify(
        key: BackupKey, extensionKinds: [UInt32: ExtensionEventKind], decode: Bool = true,
        stoppingWhen shouldStop: @escaping @Sendable () -> Bool = { false }, progress: (_ file: Int, _ chunk: Int, _ bytes: Int) -> Void = { _, _, _ in }
    ) throws(BackupError) -> [VerifiedBackup] {
        let bases = Set(readers.compactMap { $0.header.base?.id })
        var verified: [VerifiedBackup] = []
        var bytesBefore = 0
        for (index, reader) in readers.enumerated() {
            try reader.unlock(key)
            let rules = BackupContentRules(header: reader.header, extensionKinds: extensionKinds)
            var hash: String?
            var chunks = 0
            var events: UInt64 = 0
            if decode || bases.contains(reader.header.id) {
                reader.rules = rules
                while try reader.nextChunk() != nil {
                    guard !shouldStop() else { throw .cancelled }
                    progress(index, reader.chunkIndex, bytesBefore + reader.bytesRead)
                }
                hash = Hex.encode(reader.fileHash())
                chunks = reader.chunkIndex
                events = reader.events
            } else {
                (chunks, events) = try reader.verifyAll(rules: rules, stoppingWhen: shouldStop)
                progress(index, chunks, bytesBefore + reader.fileSize)
            }
            var baseChecked: Bool?
            if let base = reader.header.base {
                if let parent = verified.first(where: { $0.header.id == base.id }), let parentHash = parent.hash {
                    try Self.checkLink(reader.header, extends: parent.header, hash: parentHash)
                    baseChecked = true
                } else if let remembered = known(base.id) {
                    try Self.checkLink(reader.header, extends: nil, hash: remembered)
                    baseChecked = true
                } else {
                    baseChecked = false
                }
            }
            bytesBefore += reader.fileSize
            verified.append(VerifiedBackup(
                file: reader.url, header: reader.header, hash: hash, events: events, chunks: chunks,
                baseChecked: baseChecked))
        }
        return verified
    }

    /// Checks that every file carries a credential of `account`.
    func check(account: AccountID) throws(BackupError) {
        for reader in readers where reader.header.credential?.account != account {
            throw .otherAccount(expected: account, found: reader.header.credential?.account)
        }
    }

    /// Checks that `header` extends the backup whose file hash is `hash` and, when its
    /// header is at hand (`parent`), that it has the same source, kind and selection
    /// and ends where `header` starts.
    static func checkLink(_ header: BackupHeader, extends parent: BackupHeader?, hash: String) throws(BackupError) {
        guard let base = header.base else { return }
        func fail(_ reason: String) -> BackupError { .baseMismatch(backup: header.id, reason: reason) }
        guard Hex.encode(base.hash) == hash else { throw fail("backup \(base.id) has a different hash than the one recorded") }
        guard let parent else { return }
        guard parent.sourceLog == header.sourceLog else { throw fail("it comes from another store") }
        guard parent.kind == header.kind, parent.elements == header.elements, parent.conversations == header.conversations,
              parent.conversationKinds == header.conversationKinds else {
            throw fail("it selects other events than its base")
        }
        guard parent.keySource == header.keySource else {
            throw fail("it is sealed with \(header.keySource), its base with \(parent.keySource); a chain uses one kind of key")
        }
        guard parent.toSequence == header.fromSequence, parent.to == header.from else {
            throw fail("it starts at \(header.fromSequence), its base ends at \(parent.toSequence)")
        }
    }
}

import Foundation
import KeepsakeCrypto
import KeepsakeLog

/// Tags `Identifier` as a backup ID.
public enum BackupTag {}
/// Identifies one backup file (random, 16 bytes).
public typealias BackupID = Identifier<BackupTag>

/// What a backup holds (XIP-56).
public enum BackupKind: UInt8, Sendable, CustomStringConvertible {
    /// Conversations, members, messages, contacts, consent and preferences: no keys, no session secrets.
    case soft = 1
    /// Everything, including the installation's keys and current session states.
    case hard = 2

    /// `soft` or `hard`.
    public var description: String { self == .soft ? "soft" : "hard" }
}

/// Where a backup's key comes from; recorded so a restore asks for the right thing.
public enum BackupKeySource: UInt8, Sendable, CustomStringConvertible {
    case rawKey = 1
    case passphrase = 2
    case mnemonic = 3

    /// How the key is named in messages: passphrase, recovery phrase or key file.
    public var description: String {
        switch self {
        case .rawKey: "a 32-byte key"
        case .passphrase: "a passphrase"
        case .mnemonic: "a 24-word recovery phrase"
        }
    }
}

/// The kinds of elements a backup can select (the soft set plus, for hard backups, secrets).
public struct BackupElements: OptionSet, Sendable, Hashable {
    /// The bit set as the header stores it.
    public let rawValue: UInt16
    /// The elements whose bits are set.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Conversation creation, membership commits and read markers.
    public static let conversations = BackupElements(rawValue: 1 << 0)
    /// Messages, edits and deletions.
    public static let messages = BackupElements(rawValue: 1 << 1)
    /// Address book changes (and peer installations).
    public static let contacts = BackupElements(rawValue: 1 << 2)
    /// Consent changes.
    public static let consent = BackupElements(rawValue: 1 << 3)
    /// Preference changes.
    public static let preferences = BackupElements(rawValue: 1 << 4)
    /// Session (ratchet) states. Hard backups only.
    public static let sessions = BackupElements(rawValue: 1 << 5)
    /// Installation keys and generation claims. Hard backups only.
    public static let identity = BackupElements(rawValue: 1 << 6)
    /// Event kinds this version does not know. Hard backups only: they may hold secrets.
    public static let unknownKinds = BackupElements(rawValue: 1 << 7)

    /// Everything a soft backup may carry: no secrets.
    public static let soft: BackupElements = [.conversations, .messages, .contacts, .consent, .preferences]
    /// Everything: a hard backup's default.
    public static let hard: BackupElements = [.soft, .sessions, .identity, .unknownKinds]

    static let names: [(String, BackupElements)] = [
        ("conversations", .conversations), ("messages", .messages), ("contacts", .contacts), ("consent", .consent),
        ("preferences", .preferences), ("sessions", .sessions), ("identity", .identity), ("unknown-kinds", .unknownKinds),
    ]

    /// Parses a comma-separated list such as `messages,conversations`.
    public init?(names list: String) {
        var elements: BackupElements = []
        for name in list.split(separator: ",") {
            guard let match = Self.names.first(where: { $0.0 == name.trimmingCharacters(in: .whitespaces) }) else { return nil }
            elements.insert(match.1)
        }
        self = elements
    }

    /// The elements' names, as `init(names:)` reads them.
    public var names: [String] { Self.names.filter { contains($0.1) }.map(\.0) }
}

/// A backup's header: everything a reader needs before the first chunk, signed
/// by the installation that wrote it and authenticated as every chunk's
/// associated data. docs/BACKUP-FORMAT.md gives the bytes.
public struct BackupHeader: Sendable, Equatable {
    /// The file's first 8 bytes.
    public static let magic: [UInt8] = [0x89, 0x4B, 0x53, 0x42, 0x41, 0x4B, 0x0D, 0x0A]
    /// The format version this Keepsake writes (docs/BACKUP-FORMAT.md).
    public static let formatVersion: UInt16 = 2
    /// The versions it reads.
    public static let readableVersions: ClosedRange<UInt16> = 1...2
    /// Headers larger than this are refused before they are read.
    public static let maxSize = 1 << 20
    /// Bytes up to the conversation list.
    static let fixedSize = 244
    static let signatureSize = 64

    /// The file's format version: 2 for files this Keepsake writes, 1 for older ones.
    public var version: UInt16 = formatVersion
    /// Hard or soft.
    public var kind: BackupKind
    /// The chunk cipher.
    public var cipher: NoncedAEAD.Cipher
    /// Whether chunks may be zstd-compressed (each chunk says whether it is).
    public var compressed: Bool
    /// What kind of key encrypts the file.
    public var keySource: BackupKeySource
    /// The backup's random, time-ordered ID.
    public var id: BackupID
    /// When the backup was written, by the writer's clock: informational only.
    public var createdAt: Date
    /// The log the events were read from.
    public var sourceLog: LogID
    /// Ed25519 public key of the installation that signed the header.
    public var signer: [UInt8]
    /// The account's statement that `signer` is one of its installations (version 2;
    /// nil when the writing store had joined no account, and in version 1 files).
    public var credential: AccountCredential?
    /// The backup this one extends (nil for a full backup): its ID and the BLAKE2b-256 of its whole file.
    public var base: (id: BackupID, hash: [UInt8])?
    /// Most plaintext bytes per chunk (one larger event gets a chunk of its own).
    public var chunkSize: UInt32
    /// Random per file: mixed into the file key, so no two files share a key (or a nonce sequence).
    public var fileSalt: [UInt8]
    /// Keyed BLAKE2b-128 of a fixed label under the backup key: tells a wrong key from a corrupt file.
    public var keyCheck: [UInt8]
    /// Argon2id parameters when `keySource` is `.passphrase` (zeros otherwise).
    public var passphraseSalt: [UInt8]
    /// Argon2id's operations limit (passphrase keys only).
    public var opsLimit: UInt64
    /// Argon2id's memory limit in bytes (passphrase keys only).
    public var memLimit: UInt64
    /// Source log positions: the backup holds the selected events with from < sequence <= to.
    public var fromSequence: UInt64
    /// The source log's sequence the backup goes up to.
    public var toSequence: UInt64
    /// What the backup carries.
    public var elements: BackupElements
    /// Only these conversations (empty: all of them).
    public var conversations: [ConversationID]
    /// Only conversations of these kinds (empty: every kind). Version 2.
    public var conversationKinds: Set<ConversationKind> = []
    /// The source's version vector at `fromSequence` (the base's `to`) and at `toSequence`.
    public var from: VersionVector
    /// The source's version vector at `toSequence`.
    public var to: VersionVector

    /// True when the backup extends another.
    public var isIncremental: Bool { base != nil }

    /// A header for a new file, in the current format version.
    init(
        kind: BackupKind, cipher: NoncedAEAD.Cipher, compressed: Bool, keySource: BackupKeySource, id: BackupID,
        createdAt: Date, sourceLog: LogID, signer: [UInt8], credential: AccountCredential?, base: (id: BackupID, hash: [UInt8])?,
        chunkSize: UInt32, fileSalt: [UInt8], keyCheck: [UInt8], passphraseSalt: [UInt8], opsLimit: UInt64, memLimit: UInt64,
        fromSequence: UInt64, toSequence: UInt64, elements: BackupElements, conversations: [ConversationID],
        from: VersionVector, to: VersionVector
    ) {
        self.kind = kind
        self.cipher = cipher
        self.compressed = compressed
        self.keySource = keySource
        self.id = id
        self.createdAt = createdAt
        self.sourceLog = sourceLog
        self.signer = signer
        self.credential = credential
        self.base = base
        self.chunkSize = chunkSize
        self.fileSalt = fileSalt
        self.keyCheck = keyCheck
        self.passphraseSalt = passphraseSalt
        self.opsLimit = opsLimit
        self.memLimit = memLimit
        self.fromSequence = fromSequence
        self.toSequence = toSequence
        self.elements = elements
        self.conversations = conversations
        self.from = from
        self.to = to
    }

    /// Equal when their signed bytes are.
    public static func == (a: Self, b: Self) -> Bool { a.encoded(signature: []) == b.encoded(signature: []) }

    /// The header bytes: fields, then `signature` (64 bytes, or empty to get the signed part).
    func encoded(signature: [UInt8]) -> [UInt8] {
        var out = ByteWriter()
        out.bytes(Self.magic)
        out.u16(version)
        let vectorBytes = 8 + 24 * (from.entries.count + to.entries.count)
        let credentialBytes = version >= 2 ? 1 + 4 + (credential.map { $0.bundle.count + AccountCredential.signatureSize } ?? 0) : 0
        out.u32(UInt32(Self.fixedSize + 16 * conversations.count + vectorBytes + credentialBytes + Self.signatureSize))
        out.u8(kind.rawValue)
        out.u8(cipher.rawValue)
        out.u8(compressed ? 1 : 0)
        out.u8(keySource.rawValue)
        out.bytes(id.bytes)
        out.i64(createdAt.millis)
        out.bytes(sourceLog.bytes)
        out.bytes(signer)
        out.bytes(base?.id.bytes ?? [UInt8](repeating: 0, count: 16))
        out.bytes(base?.hash ?? [UInt8](repeating: 0, count: 32))
        out.u32(chunkSize)
        out.bytes(fileSalt)
        out.bytes(keyCheck)
        out.bytes(passphraseSalt)
        out.u64(opsLimit)
        out.u64(memLimit)
        out.u64(fromSequence)
        out.u64(toSequence)
        out.u16(elements.rawValue)
        out.u32(UInt32(conversations.count))
        for conversation in conversations { out.bytes(conversation.bytes) }
        if version >= 2 { out.u8(Self.kindBits(conversationKinds)) }
        for vector in [from, to] {
            out.u32(UInt32(vector.entries.count))
            for (log, sequence) in vector.entries.sorted(by: { $0.key < $1.key }) {
                out.bytes(log.bytes)
                out.u64(sequence)
            }
        }
        if version >= 2 {
            out.u32(UInt32(credential?.bundle.count ?? 0))
            if let credential {
                out.bytes(credential.bundle)
                out.bytes(credential.signature)
            }
        }
        out.bytes(signature)
        return out.data
    }

    /// Parses header bytes (the whole header, signature included). Checks the
    /// magic, the version, every field's range and the rules between fields
    /// (docs/BACKUP-FORMAT.md, "Header rules"); not the signature.
    static func decode(_ bytes: [UInt8]) throws(BackupError) -> (header: BackupHeader, signature: [UInt8]) {
        var r = ByteReader(bytes)
        guard r.take(8) == magic else { throw .notABackup }
        guard let version = r.u16Checked() else { throw .truncatedHeader }
        guard readableVersions.contains(version) else { throw .unsupportedVersion(found: version, supported: formatVersion) }
        guard let length = r.u32Checked(), Int(length) == bytes.count, bytes.count >= fixedSize + 8 + signatureSize else { throw .truncatedHeader }
        func field<T>(_ name: String, _ value: T?) throws(BackupError) -> T {
            guard let value else { throw .corruptHeader("\(name) is out of range or missing") }
            return value
        }
        let kind = try field("kind", r.u8Checked().flatMap(BackupKind.init(rawValue:)))
        let cipher = try field("cipher", r.u8Checked().flatMap(NoncedAEAD.Cipher.init(rawValue:)))
        let compression = try field("compression", r.u8Checked().flatMap { $0 <= 1 ? $0 : nil })
        let keySource = try field("key source", r.u8Checked().flatMap(BackupKeySource.init(rawValue:)))
        let id = try field("backup ID", r.take(16).flatMap { BackupID(bytes: $0) })
        let createdAt = try field("creation time", r.u64Checked().map { Int64(bitPattern: $0) })
        let sourceLog = try field("source log", r.take(16).flatMap { LogID(bytes: $0) })
        let signer = try field("signer", r.take(32))
        let baseID = try field("base ID", r.take(16))
        let baseHash = try field("base hash", r.take(32))
        let chunkSize = try field("chunk size", r.u32Checked().flatMap { $0 >= 1024 && $0 <= BackupFile.maxChunkPlaintext ? $0 : nil })
        let fileSalt = try field("file salt", r.take(32))
        let keyCheck = try field("key check", r.take(16))
        let passphraseSalt = try field("passphrase salt", r.take(16))
        let opsLimit = try field("ops limit", r.u64Checked())
        let memLimit = try field("memory limit", r.u64Checked())
        let fromSequence = try field("from sequence", r.u64Checked())
        let toSequence = try field("to sequence", r.u64Checked().flatMap { $0 >= fromSequence ? $0 : nil })
        let elements = try field("elements", r.u16Checked().flatMap { $0 != 0 && $0 & ~BackupElements.hard.rawValue == 0 ? BackupElements(rawValue: $0) : nil })
        let count = try field("conversation count", r.u32Checked().flatMap { Int($0) <= bytes.count / 16 ? Int($0) : nil })
        var conversations: [ConversationID] = []
        for _ in 0..<count {
            let conversation = try field("conversation", r.take(16).flatMap { ConversationID(bytes: $0) })
            guard conversations.last.map({ $0 < conversation }) ?? true else { throw .corruptHeader("the conversation IDs are not in ascending order, or repeat") }
            conversations.append(conversation)
        }
        var conversationKinds: Set<ConversationKind> = []
        if version >= 2 {
            let bits = try field("conversation kinds", r.u8Checked().flatMap { $0 & ~0x03 == 0 ? $0 : nil })
            conversationKinds = Set([ConversationKind.direct, .group].filter { bits & kindBits([$0]) != 0 })
        }
        var vectors: [VersionVector] = []
        for name in ["from vector", "to vector"] {
            let entries = try field(name, r.u32Checked().flatMap { Int($0) <= bytes.count / 24 ? Int($0) : nil })
            var vector = VersionVector()
            var previous: LogID?
            for _ in 0..<entries {
                let log = try field(name, r.take(16).flatMap { LogID(bytes: $0) })
                guard previous.map({ $0 < log }) ?? true else { throw .corruptHeader("the \(name)'s log IDs are not in ascending order, or repeat") }
                previous = log
                vector.advance(log, to: try field(name, r.u64Checked().flatMap { $0 > 0 ? $0 : nil }))
            }
            vectors.append(vector)
        }
        var credential: AccountCredential?
        if version >= 2 {
            let bundleLength = try field("credential length", r.u32Checked().flatMap { Int($0) <= bytes.count ? Int($0) : nil })
            if bundleLength > 0 {
                let bundle = try field("credential", r.take(bundleLength))
                let accountSignature = try field("credential signature", r.take(AccountCredential.signatureSize))
                credential = try AccountCredential(bundle: bundle, signature: accountSignature)
            }
        }
        let signature = try field("signature", r.take(signatureSize))
        guard r.isAtEnd else { throw .corruptHeader("the header is longer than its fields") }
        let isFull = baseID.allSatisfy { $0 == 0 }
        var header = BackupHeader(
            kind: kind, cipher: cipher, compressed: compression == 1, keySource: keySource, id: id,
            createdAt: Date(timeIntervalSince1970: Double(createdAt) / 1000), sourceLog: sourceLog, signer: signer,
            credential: credential, base: isFull ? nil : (BackupID(bytes: baseID)!, baseHash), chunkSize: chunkSize,
            fileSalt: fileSalt, keyCheck: keyCheck, passphraseSalt: passphraseSalt, opsLimit: opsLimit, memLimit: memLimit,
            fromSequence: fromSequence, toSequence: toSequence, elements: elements, conversations: conversations,
            from: vectors[0], to: vectors[1])
        header.version = version
        header.conversationKinds = conversationKinds
        try header.checkRules(baseHash: baseHash)
        return (header, signature)
    }

    /// The conversation-kinds byte: bit 0 direct, bit 1 group; 0 for every kind.
    static func kindBits(_ kinds: Set<ConversationKind>) -> UInt8 {
        kinds.reduce(0) { bits, kind in kind == .unspecified ? bits : bits | UInt8(1 << (kind.rawValue - 1)) }
    }

    /// The rules between fields that every header keeps (docs/BACKUP-FORMAT.md, "Header rules").
    private func checkRules(baseHash: [UInt8]) throws(BackupError) {
        func broken(_ rule: String) -> BackupError { .corruptHeader(rule) }
        if kind == .soft && !BackupElements.soft.isSuperset(of: elements) {
            throw broken("a soft backup selects sessions, identity or unknown kinds (elements \(elements.names.joined(separator: ",")))")
        }
        if keySource == .passphrase {
            guard PasswordKey.opsLimits.contains(opsLimit), PasswordKey.memLimits.contains(memLimit) else {
                throw broken("its Argon2id limits (ops \(opsLimit), memory \(memLimit) bytes) are outside ops \(PasswordKey.opsLimits) and memory \(PasswordKey.memLimits)")
            }
        } else if opsLimit != 0 || memLimit != 0 || passphraseSalt.contains(where: { $0 != 0 }) {
            throw broken("it names Argon2id parameters, but its key is not a passphrase")
        }
        if base == nil {
            guard baseHash.allSatisfy({ $0 == 0 }), fromSequence == 0, from.entries.isEmpty else {
                throw broken("a full backup (zero base ID) must have a zero base hash, from sequence 0 and an empty from vector")
            }
        } else if baseHash.allSatisfy({ $0 == 0 }) {
            throw broken("an incremental backup names its base by ID but not by hash")
        }
        guard to.covers(from) else { throw broken("its to vector is behind its from vector") }
        if let credential, credential.signingKey != signer {
            throw .invalidCredential("the account vouches for another signing key than the one that signed the header")
        }
    }
}

/// Little-endian writes into a growing byte array.
struct ByteWriter {
    var data: [UInt8] = []
    mutating func u8(_ v: UInt8) { data.append(v) }
    mutating func u16(_ v: UInt16) { data.appendLE(v) }
    mutating func u32(_ v: UInt32) { data.appendLE(v) }
    mutating func u64(_ v: UInt64) { data.appendLE(v) }
    mutating func i64(_ v: Int64) { data.appendLE(v) }
    mutating func bytes(_ b: some Collection<UInt8>) { data.append(contentsOf: b) }
}

extension ByteReader {
    /// The next `n` bytes as an array, or nil when fewer remain.
    mutating func take(_ n: Int) -> [UInt8]? { bytes(n).map(Array.init) }
}

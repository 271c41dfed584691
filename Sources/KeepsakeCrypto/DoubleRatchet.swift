import CSodium

/// The Double Ratchet (Signal's specification, revision 4) over X25519,
/// HKDF-SHA-256 and HMAC-SHA-256, with single-use AEAD per message key
/// (ChaCha20-Poly1305: the peer may run on a CPU without AES-NI).
///
/// A value type: every operation works on a copy and replaces `self` only when
/// it succeeds, so a message that fails to decrypt leaves the session as it was.
/// Superseded chain and root keys are dropped as the ratchet turns (their
/// secure memory is wiped when released).
public struct DoubleRatchet: Sendable {
    /// Skipped message keys kept at most, per session, for out-of-order delivery.
    public static let maxSkip = 1000

    /// What travels in the clear with each message (sealed sender hides it on the wire).
    public struct Header: Sendable, Equatable {
        /// The sender's current ratchet public key.
        public let ratchetKey: [UInt8]
        /// Messages the sender sent in its previous sending chain.
        public let previousChainLength: UInt32
        /// This message's number in the current sending chain.
        public let number: UInt32

        /// A message header.
        public init(ratchetKey: [UInt8], previousChainLength: UInt32, number: UInt32) {
            self.ratchetKey = ratchetKey
            self.previousChainLength = previousChainLength
            self.number = number
        }

        /// ratchet key (32) ‖ previous chain length (u32 LE) ‖ number (u32 LE).
        public var bytes: [UInt8] {
            var out = ratchetKey
            withUnsafeBytes(of: previousChainLength.littleEndian) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: number.littleEndian) { out.append(contentsOf: $0) }
            return out
        }

        /// Parses `bytes`; nil unless exactly 40 bytes.
        public init?(bytes: some Collection<UInt8>) {
            let bytes = Array(bytes)
            guard bytes.count == 40 else { return nil }
            func u32(_ at: Int) -> UInt32 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) }.littleEndian }
            self.init(ratchetKey: Array(bytes[0..<32]), previousChainLength: u32(32), number: u32(36))
        }
    }

    /// Why a message was refused. The session is unchanged when one is thrown.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// More messages were skipped than `maxSkip` allows.
        case tooManySkipped(Int)
        /// The message does not authenticate under the key its header selects
        /// (altered, replayed, or for another session).
        case undecryptable
        /// The message was already decrypted in this session (a replay or a duplicate delivery).
        case replayed
        /// Stored session bytes are not a version-1 session.
        case corruptState

        /// What failed.
        public var description: String {
            switch self {
            case let .tooManySkipped(n): return "the message skips \(n) messages, more than \(DoubleRatchet.maxSkip); ask the sender to resend on a new session"
            case .replayed: return "the message was already received in this session (a duplicate or a replay)"
            case .undecryptable: return "the message does not decrypt in this session (altered, replayed or for another session); ask the sender to resend"
            case .corruptState: return "the stored session state is not a version-1 Double Ratchet session; start a new session"
            }
        }
    }

    private var sendingRatchet: KeyAgreementKey
    private var receivingRatchetKey: [UInt8]?
    private var rootKey: SecureBytes
    private var sendingChain: SecureBytes?
    private var receivingChain: SecureBytes?
    private var sent: UInt32 = 0
    private var received: UInt32 = 0
    private var previousChainLength: UInt32 = 0
    private var skipped: [SkippedKey: SecureBytes] = [:]
    /// Ratchet public keys of the newest finished receiving chains (public
    /// values, no secret): a message on one of them whose key was not kept as
    /// skipped was already received, so it is told apart as a replay.
    private var finishedChains: [[UInt8]] = []
    /// How many past receiving chains a session keeps skipped keys for.
    public static let maxFinishedChains = 64

    private struct SkippedKey: Hashable, Sendable {
        let ratchetKey: [UInt8]
        let number: UInt32
    }

    /// The initiator's session, from the shared secret of the key agreement and
    /// the responder's ratchet (signed prekey) public key.
    public static func initiator(sharedSecret: SecureBytes, responderRatchetKey: [UInt8]) throws -> DoubleRatchet {
        try initiator(sharedSecret: sharedSecret, responderRatchetKey: responderRatchetKey, ratchet: KeyAgreementKey.generate())
    }

    /// `initiator` with a given first ratchet key pair (the protocol's test vectors).
    static func initiator(sharedSecret: SecureBytes, responderRatchetKey: [UInt8], ratchet: KeyAgreementKey) throws -> DoubleRatchet {
        let (root, chain) = try rootStep(sharedSecret, try ratchet.sharedSecret(with: responderRatchetKey))
        var session = DoubleRatchet(sendingRatchet: ratchet, rootKey: root)
        session.receivingRatchetKey = responderRatchetKey
        session.sendingChain = chain
        return session
    }

    /// The responder's session, from the same shared secret and its own ratchet key pair.
    public static func responder(sharedSecret: SecureBytes, ratchet: KeyAgreementKey) throws -> DoubleRatchet {
        DoubleRatchet(sendingRatchet: ratchet, rootKey: try sharedSecret.copy())
    }

    private init(sendingRatchet: KeyAgreementKey, rootKey: SecureBytes) {
        self.sendingRatchet = sendingRatchet
        self.rootKey = rootKey
    }

    /// Encrypts `plaintext`, authenticating `associatedData` and the header.
    public mutating func encrypt(_ plaintext: [UInt8], associatedData: [UInt8]) throws -> (header: Header, ciphertext: [UInt8]) {
        var next = self
        guard let chain = next.sendingChain else { throw Failure.undecryptable }
        let (nextChain, messageKey) = try Self.chainStep(chain)
        next.sendingChain = nextChain
        let header = Header(ratchetKey: next.sendingRatchet.publicKey, previousChainLength: next.previousChainLength, number: next.sent)
        next.sent += 1
        var ciphertext: [UInt8] = []
        try plaintext.withUnsafeBytes { p in
            try (associatedData + header.bytes).withUnsafeBytes { ad in
                try messageKey.withUnsafeBytes { k in
                    try SingleUseAEAD.seal(p, associatedData: ad, key: k, cipher: .chaCha20Poly1305, into: &ciphertext)
                }
            }
        }
        self = next
        return (header, ciphertext)
    }

    /// Decrypts a message; on any failure the session is left as it was.
    public mutating func decrypt(header: Header, ciphertext: [UInt8], associatedData: [UInt8]) throws -> [UInt8] {
        var next = self
        let messageKey: SecureBytes
        if let key = next.skipped.removeValue(forKey: SkippedKey(ratchetKey: header.ratchetKey, number: header.number)) {
            messageKey = key
        } else {
            if next.finishedChains.contains(header.ratchetKey)
                || (header.ratchetKey == next.receivingRatchetKey && header.number < next.received) {
                throw Failure.replayed
            }
            if header.ratchetKey != next.receivingRatchetKey {
                try next.skip(until: header.previousChainLength)
                try next.turn(towards: header.ratchetKey)
            }
            try next.skip(until: header.number)
            guard let chain = next.receivingChain else { throw Failure.undecryptable }
            let (nextChain, key) = try Self.chainStep(chain)
            next.receivingChain = nextChain
            next.received += 1
            messageKey = key
        }
        let plaintext: [UInt8]
        do {
            plaintext = try ciphertext.withUnsafeBytes { c in
                try (associatedData + header.bytes).withUnsafeBytes { ad in
                    try messageKey.withUnsafeBytes { k in try SingleUseAEAD.open(c, associatedData: ad, key: k, cipher: .chaCha20Poly1305) }
                }
            }
        } catch {
            throw Failure.undecryptable
        }
        self = next
        return plaintext
    }

    /// Keeps the keys of messages `received..<until` of the receiving chain for later.
    private mutating func skip(until number: UInt32) throws {
        guard let chain = receivingChain, number > received else { return }
        let gap = Int(number - received)
        guard skipped.count + gap <= Self.maxSkip else { throw Failure.tooManySkipped(gap) }
        var current = chain
        while received < number {
            let (nextChain, key) = try Self.chainStep(current)
            skipped[SkippedKey(ratchetKey: receivingRatchetKey ?? [], number: received)] = key
            current = nextChain
            received += 1
        }
        receivingChain = current
    }

    /// A DH ratchet step: a new receiving chain from the peer's new key, then a new sending chain from a new key pair.
    private mutating func turn(towards peerKey: [UInt8]) throws {
        if let finished = receivingRatchetKey {
            finishedChains.append(finished)
            if finishedChains.count > Self.maxFinishedChains { finishedChains.removeFirst() }
        }
        previousChainLength = sent
        sent = 0
        received = 0
        receivingRatchetKey = peerKey
        (rootKey, receivingChain) = try Self.rootStep(rootKey, try sendingRatchet.sharedSecret(with: peerKey))
        sendingRatchet = try KeyAgreementKey.generate()
        (rootKey, sendingChain) = try Self.rootStep(rootKey, try sendingRatchet.sharedSecret(with: peerKey))
    }

    /// KDF_RK: HKDF-SHA-256 with the root key as salt; 64 bytes: new root key, new chain key.
    static func rootStep(_ root: SecureBytes, _ dhOutput: SecureBytes) throws -> (root: SecureBytes, chain: SecureBytes) {
        let derived = try root.withUnsafeBytes { salt in
            try HKDF.derive(secret: dhOutput, salt: salt, info: Array("Keepsake ratchet root".utf8), length: 64)
        }
        return (try derived.slice(0..<32), try derived.slice(32..<64))
    }

    /// KDF_CK: message key = HMAC(chain, 0x01), next chain key = HMAC(chain, 0x02).
    static func chainStep(_ chain: SecureBytes) throws -> (chain: SecureBytes, messageKey: SecureBytes) {
        let nextChain = try SecureBytes(count: 32), messageKey = try SecureBytes(count: 32)
        chain.withUnsafeBytes { key in
            [UInt8(0x01)].withUnsafeBytes { one in messageKey.withUnsafeMutableBytes { HMACSHA256.mac(key: key, one, into: $0) } }
            [UInt8(0x02)].withUnsafeBytes { two in nextChain.withUnsafeMutableBytes { HMACSHA256.mac(key: key, two, into: $0) } }
        }
        return (nextChain, messageKey)
    }
}

extension SecureBytes {
    /// A copy of `range` in fresh secure memory.
    func slice(_ range: Range<Int>) throws -> SecureBytes {
        let part = try SecureBytes(count: range.count)
        withUnsafeBytes { all in part.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: all[range])) } }
        return part
    }
}

extension DoubleRatchet {
    static let stateVersion: UInt8 = 2
    private static let entrySize = 32 + 4 + 32

    /// The session as bytes, to keep in a sealed ratchet-step event. Layout,
    /// version 2: version (1) ‖ sending ratchet secret (32) ‖ root key (32) ‖
    /// receiving ratchet key, sending chain, receiving chain (each a presence
    /// byte then 32 bytes, zeros when absent) ‖ sent, received, previous chain
    /// length (u32 LE each) ‖ skipped-key count (u16 LE) ‖ per skipped key:
    /// ratchet key (32) ‖ number (u32 LE) ‖ message key (32) ‖ finished-chain
    /// count (u16 LE) ‖ their ratchet public keys (32 each), oldest first.
    /// Version 1 is version 2 without the finished chains; it still reads.
    public func serialized() throws -> SecureBytes {
        let out = try SecureBytes(count: 1 + 64 + 3 * 33 + 12 + 2 + skipped.count * Self.entrySize + 2 + 32 * finishedChains.count)
        let ratchetSecret = try sendingRatchet.secretKey()
        out.withUnsafeMutableBytes { buffer in
            var writer = SecretWriter(buffer: buffer)
            writer.put([Self.stateVersion])
            writer.put(ratchetSecret)
            writer.put(rootKey)
            writer.putOptional(receivingRatchetKey)
            writer.putOptional(sendingChain)
            writer.putOptional(receivingChain)
            for value in [sent, received, previousChainLength] { writer.put(value) }
            writer.put(UInt16(skipped.count))
            for (slot, key) in skipped {
                writer.put(slot.ratchetKey)
                writer.put(slot.number)
                writer.put(key)
            }
            writer.put(UInt16(finishedChains.count))
            for key in finishedChains { writer.put(key) }
        }
        return out
    }

    /// A session from `serialized()` bytes; throws `corruptState` for anything else.
    public init(serialized state: SecureBytes) throws {
        var reader = SecretReader(state)
        let version = try reader.bytes(1)
        guard version == [1] || version == [Self.stateVersion] else { throw Failure.corruptState }
        sendingRatchet = try KeyAgreementKey(secret: try reader.secret(32))
        rootKey = try reader.secret(32)
        receivingRatchetKey = try reader.optional(32).map { $0.withUnsafeBytes { Array($0) } }
        sendingChain = try reader.optional(32)
        receivingChain = try reader.optional(32)
        sent = try reader.integer()
        received = try reader.integer()
        previousChainLength = try reader.integer()
        let count: UInt16 = try reader.integer()
        guard Int(count) <= Self.maxSkip else { throw Failure.corruptState }
        for _ in 0..<count {
            let slot = SkippedKey(ratchetKey: try reader.bytes(32), number: try reader.integer())
            skipped[slot] = try reader.secret(32)
        }
        if version == [Self.stateVersion] {
            let finished: UInt16 = try reader.integer()
            guard Int(finished) <= Self.maxFinishedChains else { throw Failure.corruptState }
            for _ in 0..<finished { finishedChains.append(try reader.bytes(32)) }
        }
        guard reader.isAtEnd else { throw Failure.corruptState }
    }
}

/// Writes secrets and integers into secure memory, in order.
private struct SecretWriter {
    let buffer: UnsafeMutableRawBufferPointer
    var offset = 0

    mutating func put(_ bytes: UnsafeRawBufferPointer) {
        UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + bytes.count]).copyMemory(from: bytes)
        offset += bytes.count
    }

    mutating func put(_ bytes: [UInt8]) { bytes.withUnsafeBytes { put($0) } }
    mutating func put(_ secret: SecureBytes) { secret.withUnsafeBytes { put($0) } }
    mutating func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { put($0) } }

    /// A presence byte, then the 32 bytes or zeros.
    mutating func putOptional(_ value: [UInt8]?) {
        put([value == nil ? 0 : 1])
        put(value ?? [UInt8](repeating: 0, count: 32))
    }

    mutating func putOptional(_ secret: SecureBytes?) {
        put([secret == nil ? 0 : 1])
        if let secret { put(secret) } else { put([UInt8](repeating: 0, count: 32)) }
    }
}

/// Reads what `SecretWriter` wrote; every read past the end throws `corruptState`.
private struct SecretReader {
    let state: SecureBytes
    var offset = 0

    init(_ state: SecureBytes) { self.state = state }

    var isAtEnd: Bool { offset == state.count }

    private mutating func range(_ count: Int) throws -> Range<Int> {
        guard count <= state.count - offset else { throw DoubleRatchet.Failure.corruptState }
        defer { offset += count }
        return offset..<offset + count
    }

    mutating func bytes(_ count: Int) throws -> [UInt8] {
        let range = try range(count)
        return state.withUnsafeBytes { Array($0[range]) }
    }

    mutating func secret(_ count: Int) throws -> SecureBytes { try state.slice(try range(count)) }

    mutating func integer<T: FixedWidthInteger>() throws -> T {
        let range = try range(MemoryLayout<T>.size)
        return state.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: range.lowerBound, as: T.self) }.littleEndian
    }

    mutating func optional(_ count: Int) throws -> SecureBytes? {
        let present = try bytes(1)
        let value = try secret(count)
        switch present {
        case [0]: return nil
        case [1]: return value
        default: throw DoubleRatchet.Failure.corruptState
        }
    }
}

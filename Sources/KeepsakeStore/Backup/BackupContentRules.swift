import Foundation
import KeepsakeLog

/// The rules a backup's content keeps beyond what decryption proves: what a
/// signed, authenticated file may still get wrong if its writer broke the
/// format (docs/BACKUP-FORMAT.md, "Content rules"). Chunks are checked in any
/// order, each into a `ContentTally`; the tallies of a file merge, and
/// `finish` checks what only the whole file shows.
struct BackupContentRules: Sendable {
    let header: BackupHeader
    /// The elements of the event kinds of the extensions the reader knows (the format names the rest).
    let extensionElements: [UInt32: BackupElements]

    init(header: BackupHeader, extensionKinds: [UInt32: ExtensionEventKind]) {
        self.header = header
        extensionElements = extensionKinds.mapValues(\.element)
    }

    /// Checks chunk `chunk` (`final` when it ends the file) and adds its frames to `tally`.
    func check(_ frames: [BackupFrame], chunk: Int, final: Bool, into tally: inout ContentTally) throws(BackupError) {
        func broken(_ reason: String) -> BackupError { .invalidContent(chunk: chunk, reason: reason) }
        guard !frames.isEmpty else { throw broken("it holds no frames") }
        for (position, frame) in frames.enumerated() {
            switch frame {
            case let .event(draft):
                try check(draft, into: &tally, broken)
            case .headEnd:
                guard header.base == nil else { throw broken("a head end in an incremental backup") }
                if header.version >= 2 && position != frames.count - 1 { throw broken("the head end does not end its chunk") }
                tally.headEnds.append(chunk)
            case let .trailer(count):
                guard final, position == frames.count - 1 else { throw broken("a trailer that is not the file's last frame") }
                tally.trailer = count
            }
        }
        if final && tally.trailer == nil { throw broken("the final chunk does not end with the trailer") }
    }

    private func check(_ draft: RecordDraft, into tally: inout ContentTally, _ broken: (String) -> BackupError) throws(BackupError) {
        guard let id = draft.id else { return }
        let element = BackupSelection.element(ofKind: draft.kind, extensionElements: extensionElements)
        guard header.elements.contains(element) else {
            let name = element.names.first ?? "unknown"
            throw broken("event \(id) is of kind \(EventKind(rawValue: draft.kind)), element \(name), which the header does not select")
        }
        guard id.sequence <= header.to[id.origin] else { throw broken("event \(id) lies beyond the header's to vector") }
        guard tally.insert(id) else { throw .repeatedEvent(id) }
        tally.events += 1
        if draft.kind == UInt32(StoredEventKind.installationKeys.rawValue), !draft.erased {
            guard let keys = try? InstallationKeys(serializedBytes: draft.payload), Array(keys.signingPublicKey) == header.signer else {
                throw broken("event \(id) holds the keys of another installation than the one that signed the header")
            }
            tally.installationKeys += 1
        }
    }

    /// Checks what only the whole file shows, from the merged tally.
    func finish(_ tally: ContentTally, lastChunk: Int) throws(BackupError) {
        func broken(_ chunk: Int, _ reason: String) -> BackupError { .invalidContent(chunk: chunk, reason: reason) }
        if tally.headEnds.count > 1 { throw broken(tally.headEnds.sorted()[1], "a second head end") }
        if header.version >= 2 && header.base == nil && tally.headEnds.isEmpty { throw broken(lastChunk, "a full backup without a head end") }
        if let trailer = tally.trailer, trailer != tally.events {
            throw broken(lastChunk, "the trailer counts \(trailer) events, the file holds \(tally.events)")
        }
        if tally.installationKeys > 1 { throw broken(lastChunk, "it holds the installation's keys more than once") }
        if header.kind == .hard && header.base == nil && header.elements.contains(.identity) && tally.installationKeys == 0 {
            throw broken(lastChunk, "a full hard backup without the keys of the installation that signed it")
        }
    }
}

/// What the chunks of one file held, as far as they have been checked.
struct ContentTally: Sendable {
    var events: UInt64 = 0
    var headEnds: [Int] = []
    var trailer: UInt64?
    var installationKeys = 0
    /// Event IDs seen: per origin log, bit words of 64 sequences each.
    private var seen: [LogID: [UInt64: UInt64]] = [:]

    /// Records `id`; false when it was recorded before.
    mutating func insert(_ id: EventID) -> Bool {
        let bit: UInt64 = 1 << (id.sequence & 63)
        let word = seen[id.origin, default: [:]][id.sequence >> 6, default: 0]
        guard word & bit == 0 else { return false }
        seen[id.origin, default: [:]][id.sequence >> 6] = word | bit
        return true
    }

    /// Adds another part of the same file; throws `repeatedEvent` for an event both parts hold.
    mutating func merge(_ other: ContentTally) throws(BackupError) {
        events += other.events
        headEnds += other.headEnds
        trailer = trailer ?? other.trailer
        installationKeys += other.installationKeys
        for (origin, words) in other.seen {
            for (index, bits) in words {
                let mine = seen[origin, default: [:]][index, default: 0]
                if mine & bits != 0 {
                    let sequence = index << 6 | UInt64((mine & bits).trailingZeroBitCount)
                    throw .repeatedEvent(EventID(origin: origin, sequence: sequence))
                }
                seen[origin, default: [:]][index] = mine | bits
            }
        }
    }
}

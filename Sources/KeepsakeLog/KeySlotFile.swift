import Foundation
import KeepsakeCrypto

/// The file of single-use keys that seal erasable payloads (crypto-shredding).
///
/// Slot `i` holds 32 bytes at offset `16 + 32 * i`. Erasing a record overwrites
/// its slot with zeros in place and syncs, so the sealed bytes that LMDB's
/// copy-on-write pages may still hold can never be decrypted again. Slots are
/// never reused. See docs/LOG-FORMAT.md.
final class KeySlotFile: @unchecked Sendable {
    // Invariant: `fd` is open from init to deinit; pread/pwrite are thread-safe.
    static let magic = Array("KSKEYS01".utf8) + [UInt8](repeating: 0, count: 8)
    static let headerSize = 16
    static let slotSize = SingleUseAEAD.keyBytes

    private let fd: Int32
    let path: String

    /// Opens the file of a log that has handed out `slotsInUse` slots. It may be
    /// created only with `create` (a new log, or one that never sealed); a
    /// missing or short file is damage, since its events would read as erased.
    init(path: String, slotsInUse: UInt64, create: Bool) throws {
        self.path = path
        let fd = SystemCalls.open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o600)
        guard fd >= 0 else {
            if errno == ENOENT { throw LogError.damaged(path: path, reason: "the key slot file is missing; \(slotsInUse) sealed events need it") }
            throw LogError.io(operation: "open key slots", path: path, errno: errno)
        }
        self.fd = fd
        // The object is whole from here: throwing runs deinit, which closes the descriptor.
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        let n = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Self.headerSize, 0) }
        if n == 0 && slotsInUse == 0 {
            try writeAll(Self.magic, at: 0, operation: "initialise key slots")
        } else if n != Self.headerSize || header != Self.magic {
            throw LogError.damaged(path: path, reason: "the key slot file has no Keepsake header")
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw LogError.io(operation: "read key slots", path: path, errno: errno) }
        let needed = UInt64(offset(slotsInUse))
        guard UInt64(info.st_size) >= needed else {
            throw LogError.damaged(path: path, reason: "the key slot file is truncated: \(info.st_size) bytes where \(slotsInUse) slots need \(needed)")
        }
    }

    deinit { SystemCalls.close(fd) }

    private func offset(_ slot: UInt64) -> off_t { off_t(Self.headerSize) + off_t(slot) * off_t(Self.slotSize) }

    /// Writes consecutive keys starting at `firstSlot`.
    func write(keys: UnsafeRawBufferPointer, firstSlot: UInt64) throws {
        try writeAll(keys, at: offset(firstSlot), operation: "write key slots")
    }

    /// Reads slot `slot` into `key` (32 bytes). An erased slot reads as zeros; a
    /// slot past the end of the file is damage (the file lost it), never an erasure.
    func read(slot: UInt64, into key: UnsafeMutableRawBufferPointer) throws {
        secureZero(key)
        let n = pread(fd, key.baseAddress, Self.slotSize, offset(slot))
        if n < 0 { throw LogError.io(operation: "read key slot", path: path, errno: errno) }
        if n != Self.slotSize { throw LogError.damaged(path: path, reason: "key slot \(slot) is missing: the file ends before it") }
    }

    /// Overwrites the given slots with zeros.
    func zero(slots: some Sequence<UInt64>) throws {
        let zeros = [UInt8](repeating: 0, count: Self.slotSize)
        for slot in slots {
            try zeros.withUnsafeBytes { z in try writeAll(z, at: offset(slot), operation: "erase key slot") }
        }
    }

    /// Overwrites every slot in `range` with zeros, a megabyte at a time.
    func zero(range: Range<UInt64>) throws {
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var position = offset(range.lowerBound)
        let end = offset(range.upperBound)
        while position < end {
            let count = Int(min(off_t(zeros.count), end - position))
            try zeros.withUnsafeBytes { z in try writeAll(UnsafeRawBufferPointer(rebasing: z[..<count]), at: position, operation: "erase key slots") }
            position += off_t(count)
        }
    }

    func sync() throws {
        if SystemCalls.syncData(fd) != 0 { throw LogError.io(operation: "sync key slots", path: path, errno: errno) }
    }

    private func writeAll(_ bytes: [UInt8], at offset: off_t, operation: String) throws {
        try bytes.withUnsafeBytes { b in try writeAll(b, at: offset, operation: operation) }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer, at offset: off_t, operation: String) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, offset + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ENOSPC || errno == EDQUOT { throw LogError.diskFull(path: path) }
                throw LogError.io(operation: operation, path: path, errno: errno)
            }
            done += n
        }
    }
}

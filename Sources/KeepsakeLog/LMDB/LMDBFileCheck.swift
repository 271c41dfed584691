import Foundation

/// Checks an LMDB data file's two meta pages against its size before the file
/// is mapped: a mapped file shorter than its pages say raises SIGBUS on the
/// first touch of a missing page, which no error handling can catch.
///
/// Layout read here (LMDB 0.9, 64-bit): each meta page starts with a 16-byte
/// page header (flags at offset 10, `P_META` = 0x08), then `MDB_meta`: magic
/// u32 `0xBEEFC0DE` at 16, version u32 `1` at 20, two 48-byte `MDB_db` records
/// at 40 (the first one's leading u32 is the page size; each ends with its
/// root page at +40), the last page number u64 at 136 and the transaction ID
/// u64 at 144. Both metas must be whole; LMDB uses the newer one.
public enum LMDBFileCheck {
    /// What a meta page says about the file's extent.
    private struct Meta {
        let lastPage: UInt64
        let transaction: UInt64
    }

    static let magic: UInt32 = 0xBEEF_C0DE
    static let metaFlag: UInt16 = 0x08
    static let invalidPage = UInt64.max

    /// The damage of the file at `path` (an LMDB `data.mdb`), or nil when its
    /// meta pages are whole and it holds every page they name.
    public static func damage(of path: String) -> Damage? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .unreadable(errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .unreadable(errno: errno) }
        let size = UInt64(info.st_size)
        guard size > 0 else { return .empty }
        guard hasMagic(fd, at: 0) || hasMagic(fd, at: 4096) else { return .notLMDB }
        var first = [UInt8](repeating: 0, count: 160)
        guard read(fd, at: 0, into: &first) else { return .truncated(size: size, needed: 160) }
        let pageSize = Int(UInt32(littleEndianBytes: first[40..<44]))
        guard [1024, 2048, 4096, 8192, 16384, 32768, 65536].contains(pageSize) else {
            return .badMeta(page: 0, reason: "page size \(pageSize) is not one LMDB uses")
        }
        var second = [UInt8](repeating: 0, count: 160)
        guard read(fd, at: off_t(pageSize), into: &second) else { return .truncated(size: size, needed: UInt64(pageSize) * 2) }
        let metas: [Meta]
        switch (parse(first, page: 0, pageSize: pageSize), parse(second, page: 1, pageSize: pageSize)) {
        case let (.success(a), .success(b)): metas = [a, b]
        case let (.failure(damage), _), let (_, .failure(damage)): return damage
        }
        let newer = metas[0].transaction >= metas[1].transaction ? metas[0] : metas[1]
        let needed = (newer.lastPage + 1) * UInt64(pageSize)
        // The size again, after the metas: a writer in another process writes a
        // transaction's pages before its meta, so a file that grew since the
        // first look holds every page the meta read names.
        guard fstat(fd, &info) == 0 else { return .unreadable(errno: errno) }
        let grown = UInt64(info.st_size)
        return grown >= needed ? nil : .truncated(size: grown, needed: needed)
    }

    private static func parse(_ bytes: [UInt8], page: Int, pageSize: Int) -> Result<Meta, Damage> {
        guard UInt16(littleEndianBytes: bytes[10..<12]) & metaFlag != 0 else { return .failure(.badMeta(page: page, reason: "not marked as a meta page")) }
        guard UInt32(littleEndianBytes: bytes[16..<20]) == magic else { return .failure(.badMeta(page: page, reason: "wrong magic number")) }
        guard UInt32(littleEndianBytes: bytes[20..<24]) == 1 else { return .failure(.badMeta(page: page, reason: "unknown LMDB data version")) }
        let lastPage = UInt64(littleEndianBytes: bytes[136..<144])
        guard lastPage >= 1, lastPage < UInt64(Int64.max) / UInt64(pageSize) else {
            return .failure(.badMeta(page: page, reason: "last page \(lastPage) is impossible"))
        }
        for root in [UInt64(littleEndianBytes: bytes[80..<88]), UInt64(littleEndianBytes: bytes[128..<136])] where root != invalidPage {
            guard root >= 2, root <= lastPage else {
                return .failure(.badMeta(page: page, reason: "a root page (\(root)) lies outside the file's pages 2...\(lastPage)"))
            }
        }
        return .success(Meta(lastPage: lastPage, transaction: UInt64(littleEndianBytes: bytes[144..<152])))
    }

    /// Whether a meta page at `offset` starts with LMDB's magic number.
    private static func hasMagic(_ fd: Int32, at offset: off_t) -> Bool {
        var bytes = [UInt8](repeating: 0, count: 4)
        return read(fd, at: offset + 16, into: &bytes) && UInt32(littleEndianBytes: bytes[0..<4]) == magic
    }

    private static func read(_ fd: Int32, at offset: off_t, into buffer: inout [UInt8]) -> Bool {
        let wanted = buffer.count
        return buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, wanted, offset) } == wanted
    }

    /// Why an LMDB file cannot be used.
    public enum Damage: Error, Equatable, Sendable, CustomStringConvertible {
        case unreadable(errno: Int32)
        case empty
        /// Neither meta page has LMDB's magic number: another kind of file.
        case notLMDB
        case truncated(size: UInt64, needed: UInt64)
        case badMeta(page: Int, reason: String)

        /// What is wrong with the file.
        public var description: String {
            switch self {
            case let .unreadable(code): "it cannot be read (\(String(cString: strerror(code))))"
            case .empty: "it is empty"
            case .notLMDB: "it is not an LMDB file"
            case let .truncated(size, needed): "it is truncated: \(size) bytes where its pages need \(needed)"
            case let .badMeta(page, reason): "meta page \(page) is damaged: \(reason)"
            }
        }
    }
}

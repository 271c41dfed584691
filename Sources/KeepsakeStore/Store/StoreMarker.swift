import Foundation
import KeepsakeLog

/// The `STORE` file: marks a directory as a Keepsake store, names its format,
/// and (from format 2) the ID of the log the store belongs with, so a missing
/// or swapped log is refused instead of silently replaced.
struct StoreMarker: Equatable {
    static let fileName = "STORE"
    /// Where a marker is written before it is renamed into place. A creation
    /// killed in between leaves only this file, and the directory still counts as empty.
    static let partialFileName = "STORE.partial"
    static let prefix = "keepsake-store format "
    static let logPrefix = "log "

    let format: Int
    /// The store's log. nil in a format-1 marker, or in one written by a
    /// creation that stopped before its log existed; `Store.open` fills it in.
    let logID: LogID?

    /// The marker's text: the format line, then the log line when known.
    var text: String {
        "\(Self.prefix)\(format)\n" + (logID.map { "\(Self.logPrefix)\($0.hex)\n" } ?? "")
    }

    /// Parses a marker's text; nil when it is not one.
    init?(text: String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard let first = lines.first, first.hasPrefix(Self.prefix),
              let format = Int(first.dropFirst(Self.prefix.count).trimmingCharacters(in: .whitespaces)), format >= 1 else { return nil }
        var logID: LogID?
        for line in lines.dropFirst() where line.hasPrefix(Self.logPrefix) {
            guard let id = LogID(hex: line.dropFirst(Self.logPrefix.count).trimmingCharacters(in: .whitespaces)) else { return nil }
            logID = id
        }
        self.format = format
        self.logID = logID
    }

    init(format: Int, logID: LogID?) {
        self.format = format
        self.logID = logID
    }

    /// Reads the marker of the store in `directory`, or creates one (without a
    /// log yet) when allowed and the directory is missing or empty.
    static func prepare(directory: URL, create: Bool) throws(KeepsakeError) -> StoreMarker {
        let path = directory.path
        let file = directory.appendingPathComponent(fileName)
        if let marker = try read(file, storePath: path) { return marker }
        var isDirectory: ObjCBool = false
        let fm = FileManager.default
        let exists = fm.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && !isDirectory.boolValue { throw .notAStore(path: path) }
        if exists {
            let entries: [String]
            do { entries = try fm.contentsOfDirectory(atPath: path) } catch {
                throw .cannotAccess(path: path, reason: FileErrors.reason(error))
            }
            if entries.contains(where: { $0 != partialFileName }) { throw .notAStore(path: path) }
        }
        guard create else { throw .notAStore(path: path) }
        try FileErrors.createDirectory(atPath: path)
        let marker = StoreMarker(format: Store.formatVersion, logID: nil)
        try marker.write(in: directory)
        return marker
    }

    /// The marker in `file`, nil when there is none; a file that cannot be read
    /// or is not a marker is an error naming why.
    private static func read(_ file: URL, storePath: String) throws(KeepsakeError) -> StoreMarker? {
        let descriptor = open(file.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw .cannotAccess(path: file.path, reason: String(cString: strerror(errno)))
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        let data: Data
        do {
            data = try handle.readToEnd() ?? Data()
        } catch {
            throw .cannotAccess(path: file.path, reason: FileErrors.reason(error))
        }
        guard let marker = StoreMarker(text: String(decoding: data, as: UTF8.self)) else { throw .notAStore(path: storePath) }
        guard marker.format <= Store.formatVersion else {
            throw .newerStoreFormat(path: storePath, found: marker.format, supported: Store.formatVersion)
        }
        return marker
    }

    /// Replaces the marker in `directory` atomically: written to `STORE.partial`,
    /// then renamed (a temporary file of another name would make a directory
    /// whose creation was killed look like someone else's).
    func write(in directory: URL) throws(KeepsakeError) {
        let file = directory.appendingPathComponent(Self.fileName)
        let partial = directory.appendingPathComponent(Self.partialFileName)
        do {
            try Data(text.utf8).write(to: partial)
        } catch {
            throw .cannotAccess(path: partial.path, reason: FileErrors.reason(error))
        }
        guard rename(partial.path, file.path) == 0 else {
            throw .cannotAccess(path: file.path, reason: String(cString: strerror(errno)))
        }
    }
}

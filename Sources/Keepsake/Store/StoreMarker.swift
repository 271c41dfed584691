import Foundation

/// The `STORE` file that marks a directory as a Keepsake store and names its format.
enum StoreMarker {
    static let prefix = "keepsake-store format "

    /// Checks that `directory` is a store of a known format, or creates one
    /// when allowed and the directory is missing or empty.
    static func prepare(directory: URL, create: Bool) throws(KeepsakeError) {
        let path = directory.path
        let marker = directory.appendingPathComponent(Store.markerName)
        let fm = FileManager.default
        if let text = try? String(contentsOf: marker, encoding: .utf8) {
            guard text.hasPrefix(prefix), let format = Int(text.dropFirst(prefix.count).trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw .notAStore(path: path)
            }
            guard format <= Store.formatVersion else {
                throw .newerStoreFormat(path: path, found: format, supported: Store.formatVersion)
            }
            return
        }
        var isDirectory: ObjCBool = false
        let exists = fm.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && !isDirectory.boolValue { throw .notAStore(path: path) }
        if exists && !((try? fm.contentsOfDirectory(atPath: path)) ?? []).isEmpty { throw .notAStore(path: path) }
        guard create else { throw .notAStore(path: path) }
        do {
            try fm.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data("\(prefix)\(Store.formatVersion)\n".utf8).write(to: marker, options: .atomic)
        } catch {
            throw .database("cannot create the store at \(path): \(error.localizedDescription)")
        }
    }
}

import Foundation

/// Turns Foundation's file errors into their plain cause ("Permission denied",
/// "No space left on device"), the words a user can act on, instead of
/// NSCocoaErrorDomain codes.
package enum FileErrors {
    /// The POSIX cause of a file error, or Foundation's own description when it has none.
    package static func reason(_ error: any Error) -> String {
        if let code = posixCode(error) { return String(cString: strerror(code)) }
        return (error as NSError).localizedDescription
    }

    /// Creates a directory and its missing parents; a failure names the
    /// component and the POSIX cause ("Not a directory", "Permission denied").
    static func createDirectory(atPath path: String) throws(KeepsakeError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw .cannotAccess(path: current, reason: String(cString: strerror(errno)))
            }
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .cannotAccess(path: path, reason: String(cString: strerror(ENOTDIR)))
        }
    }

    private static func posixCode(_ error: any Error) -> Int32? {
        let error = error as NSError
        if error.domain == NSPOSIXErrorDomain { return Int32(error.code) }
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return Int32(underlying.code)
        }
        guard error.domain == NSCocoaErrorDomain else { return nil }
        switch CocoaError.Code(rawValue: error.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: return ENOENT
        case .fileReadNoPermission, .fileWriteNoPermission: return EACCES
        case .fileWriteOutOfSpace: return ENOSPC
        case .fileWriteFileExists: return EEXIST
        case .fileWriteVolumeReadOnly: return EROFS
        default: return nil
        }
    }
}

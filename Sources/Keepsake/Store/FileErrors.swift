import Foundation

/// Turns Foundation's file errors into their plain cause ("Permission denied",
/// "No space left on device"), the words a user can act on, instead of
/// NSCocoaErrorDomain codes.
enum FileErrors {
    /// The POSIX cause of a file error, or Foundation's own description when it has none.
    static func reason(_ error: any Error) -> String {
        if let code = posixCode(error) { return String(cString: strerror(code)) }
        return (error as NSError).localizedDescription
    }

    /// Whether the error says the file does not exist.
    static func isMissing(_ error: any Error) -> Bool {
        posixCode(error) == ENOENT
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

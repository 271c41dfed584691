import Foundation
import NIOCore

/// Where the backup provider keeps file contents. The embedded default is a
/// folder (`FolderBlobStore`); a deployment that outgrows one machine puts
/// them in an S3-compatible object store (`S3BlobStore`).
public protocol BackupBlobStore: Sendable {
    /// Starts writing the contents of `id`; they become readable only once the upload commits.
    func create(_ id: String) async throws -> any BlobUpload
    /// The size of `id`'s contents and a way to read them in order, or nil when there are none.
    func open(_ id: String) async throws -> BlobContents?
    func remove(_ id: String) async throws
    /// Removes contents and unfinished uploads whose ID is not in `keep`: what a
    /// crash left behind. A store that several relays share removes only what is
    /// too old to be another relay's upload in progress.
    func removeAll(except keep: Set<String>) async throws
    /// Throws unless the store can be written to now (`GET /v1/ready`).
    func check() async throws
}

/// Stored contents: their size, and their bytes in order as the reader asks for them.
public struct BlobContents: Sendable {
    public let size: Int
    public let chunks: any AsyncSequence<ByteBuffer, any Error> & Sendable

    public init(size: Int, chunks: any AsyncSequence<ByteBuffer, any Error> & Sendable) {
        self.size = size
        self.chunks = chunks
    }
}

/// An upload in progress, used by one task at a time.
public protocol BlobUpload {
    mutating func append(_ bytes: ByteBuffer) async throws
    /// Makes the contents durable and visible under their ID.
    mutating func commit() async throws
    /// Drops what was written.
    mutating func abort() async
}

/// Backup contents as files in a folder: `<id>` once complete, `<id>.partial`
/// while uploading. A commit syncs the file, renames it and syncs the folder,
/// so after a crash a file is either whole under its name or an ignored partial.
public struct FolderBlobStore: BackupBlobStore {
    /// Where the files are.
    public let directory: URL
    static let chunkSize = 64 * 1024

    /// Keeps files in `directory`, created when missing.
    public init(directory: URL) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    private func path(_ id: String) -> String { directory.appendingPathComponent(id).path }

    /// Starts writing a new file; it is visible once committed.
    public func create(_ id: String) throws -> any BlobUpload {
        let partial = path(id) + ".partial"
        let descriptor = Foundation.open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw FolderBlobError.cannotWrite(partial, errno) }
        return FileUpload(descriptor: descriptor, partial: partial, final: path(id), directory: directory.path)
    }

    /// A stored file's size and contents in chunks, or nil.
    public func open(_ id: String) throws -> BlobContents? {
        guard let handle = FileHandle(forReadingAtPath: path(id)) else { return nil }
        let size = Int(try handle.seekToEnd())
        try handle.seek(toOffset: 0)
        // One chunk is read per request of the consumer, so a download holds at
        // most a chunk in memory however large the file (the handle closes when released).
        let stream = AsyncThrowingStream<ByteBuffer, any Error> {
            guard let data = try handle.read(upToCount: Self.chunkSize), !data.isEmpty else { return nil }
            return ByteBuffer(bytes: data)
        }
        return BlobContents(size: size, chunks: stream)
    }

    /// Deletes a file.
    public func remove(_ id: String) throws {
        if unlink(path(id)) != 0 && errno != ENOENT { throw FolderBlobError.cannotRemove(path(id), errno) }
    }

    /// Throws unless the folder exists and is writable.
    public func check() throws {
        guard access(directory.path, W_OK) == 0 else { throw FolderBlobError.cannotWrite(directory.path, errno) }
    }

    /// Deletes every file but `keep` (strays of a crash).
    public func removeAll(except keep: Set<String>) throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where !keep.contains(name) {
            unlink(directory.appendingPathComponent(name).path)
        }
    }
}

enum FolderBlobError: Error, CustomStringConvertible {
    case cannotWrite(String, Int32)
    case cannotRemove(String, Int32)

    var description: String {
        switch self {
        case let .cannotWrite(path, code): "cannot write \(path): \(String(cString: strerror(code)))"
        case let .cannotRemove(path, code): "cannot remove \(path): \(String(cString: strerror(code)))"
        }
    }
}

private struct FileUpload: BlobUpload {
    var descriptor: Int32
    let partial: String
    let final: String
    let directory: String

    mutating func append(_ bytes: ByteBuffer) throws {
        try bytes.withUnsafeReadableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                guard written > 0 else {
                    if written < 0 && errno == EINTR { continue }
                    throw FolderBlobError.cannotWrite(partial, errno)
                }
                offset += written
            }
        }
    }

    mutating func commit() throws {
        guard fsync(descriptor) == 0 else { throw FolderBlobError.cannotWrite(partial, errno) }
        close(descriptor)
        descriptor = -1
        guard rename(partial, final) == 0 else { throw FolderBlobError.cannotWrite(final, errno) }
        let folder = Foundation.open(directory, O_RDONLY | O_CLOEXEC)
        if folder >= 0 {
            fsync(folder)
            close(folder)
        }
    }

    mutating func abort() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        unlink(partial)
    }
}

import Foundation
import KeepsakeCrypto
import KeepsakeS3
import NIOCore

/// Backup contents as objects in an S3-compatible store: `<prefix><id>` in one
/// bucket, which several relays may share.
///
/// An upload is sent in parts of `partSize` bytes as it streams in (S3's
/// multipart upload), so a relay holds one part per upload in memory however
/// large the file; a file smaller than one part is sent in one request. Each
/// part is signed with its SHA-256, which the server checks. The object appears
/// only when the upload completes; an aborted or crashed upload leaves nothing
/// visible.
public struct S3BlobStore: BackupBlobStore {
    public let client: S3Client
    /// Prepended to every ID: "" or a path ending in "/".
    public let prefix: String
    /// Bytes per part: at least 5 MiB (S3's minimum for all parts but the last).
    public let partSize: Int
    /// How old a stray object or unfinished upload must be before `removeAll`
    /// removes it: younger ones may be another relay's upload in progress.
    public let abandonedAfter: Duration

    public static let minimumPartSize = 5 << 20

    public init(client: S3Client, prefix: String, partSize: Int = 8 << 20, abandonedAfter: Duration = .seconds(24 * 3600)) {
        self.client = client
        self.prefix = prefix
        self.partSize = max(partSize, Self.minimumPartSize)
        self.abandonedAfter = abandonedAfter
    }

    private func key(_ id: String) -> String { prefix + id }

    public func create(_ id: String) -> any BlobUpload {
        S3Upload(client: client, key: key(id), partSize: partSize)
    }

    public func open(_ id: String) async throws -> BlobContents? {
        try await client.get(key(id)).map { BlobContents(size: $0.size, chunks: $0.body) }
    }

    public func remove(_ id: String) async throws {
        try await client.delete(key(id))
    }

    /// Throws unless the bucket answers with these credentials.
    public func check() async throws {
        try await client.checkBucket()
    }

    /// Deletes objects under the prefix named like a backup ID but not in
    /// `keep`, and aborts unfinished uploads, when older than `abandonedAfter`.
    /// Other objects under the prefix are left alone.
    public func removeAll(except keep: Set<String>) async throws {
        let cutoff = Date().addingTimeInterval(-Double(abandonedAfter.components.seconds))
        for object in try await client.list(prefix: prefix) where object.lastModified < cutoff {
            let id = String(object.key.dropFirst(prefix.count))
            if BackupProvider.isID(id) && !keep.contains(id) { try await client.delete(object.key) }
        }
        for upload in try await client.unfinishedUploads(prefix: prefix) where upload.initiated < cutoff {
            try await client.abortMultipartUpload(upload.key, uploadID: upload.uploadID)
        }
    }
}

/// One upload: bytes gather into a part; each full part is sent at once.
/// A class, so that appending to the part never copies it.
private final class S3Upload: BlobUpload {
    let client: S3Client
    let key: String
    let partSize: Int
    var pending = ByteBuffer()
    var uploadID: String?
    var parts: [String] = []
    /// Set when the store could not be reached: aborting would only wait for it again.
    var unreachable = false

    init(client: S3Client, key: String, partSize: Int) {
        self.client = client
        self.key = key
        self.partSize = partSize
    }

    func append(_ bytes: ByteBuffer) async throws {
        var bytes = bytes
        while bytes.readableBytes > 0 {
            var slice = bytes.readSlice(length: min(bytes.readableBytes, partSize - pending.readableBytes))!
            pending.writeBuffer(&slice)
            if pending.readableBytes == partSize { try await sendPart() }
        }
    }

    private func sendPart() async throws {
        do throws(S3Error) {
            if uploadID == nil { uploadID = try await client.startMultipartUpload(key) }
            parts.append(try await client.uploadPart(key, uploadID: uploadID!, number: parts.count + 1, pending))
        } catch {
            unreachable = error.reason == .unreachable
            throw error
        }
        pending.clear()
    }

    func commit() async throws {
        guard uploadID != nil else { return try await client.put(key, pending) }
        if pending.readableBytes > 0 { try await sendPart() }
        try await client.completeMultipartUpload(key, uploadID: uploadID!, parts: parts)
    }

    func abort() async {
        guard let uploadID, !unreachable else { return }
        // When the store cannot be reached, `removeAll` aborts the upload once it is old enough.
        try? await client.abortMultipartUpload(key, uploadID: uploadID)
    }
}

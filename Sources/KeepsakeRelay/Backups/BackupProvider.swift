import Foundation
import HTTPTypes
import Hummingbird
import KeepsakeCrypto
import KeepsakeWire
import MultipartKit

/// The backup storage provider part of the relay (XIP-31, XIP-56):
///
/// - `POST /v1/backups`: a signed multipart/form-data upload (part `file`, and
///   optionally `expiresIn` seconds, `deleteAfterDownload` "true", `locator`);
///   answers with an unguessable download URL.
/// - `GET /v1/backups/{id}`: the file, while it has not expired (and, for a
///   delete-after-download file, only once).
/// - `GET /v1/backups?locator=<hex>`: the unexpired files uploaded with a locator.
///
/// Uploads are signed by a known, unrevoked installation (`RequestAuthentication`),
/// rate limited per installation, limited in size, and visible only once complete.
public struct BackupProvider: Sendable {
    /// What the backup provider accepts.
    public struct Limits: Sendable {
        /// Largest file accepted, in bytes.
        public var maxFileBytes = 512 * 1024 * 1024
        /// Uploads one installation may make per hour.
        public var uploadsPerHour = 60
        /// How long a file is kept when the upload does not say.
        public var defaultLifetime: Duration = .seconds(72 * 3600)
        /// The longest lifetime an upload may ask for.
        public var maxLifetime: Duration = .seconds(30 * 24 * 3600)

        /// The defaults.
        public init() {}
    }

    let storage: any RelayStore
    let blobs: any BackupBlobStore
    let limits: Limits
    let metrics: RelayMetrics

    init(storage: any RelayStore, blobs: any BackupBlobStore, limits: Limits, metrics: RelayMetrics) {
        self.storage = storage
        self.blobs = blobs
        self.limits = limits
        self.metrics = metrics
    }

    /// Before serving: deletes expired files, and what a crash left in the blob store.
    func start() async throws {
        try await sweep()
        let known = try await storage.backupIDs()
        try await stored { try await blobs.removeAll(except: known) }
    }

    func routes(_ router: Router<BasicRequestContext>) {
        router.post("v1/backups") { request, context in try await self.upload(request, context) }
        router.get("v1/backups") { request, _ in try await self.list(request) }
        router.get("v1/backups/:id") { _, context in try await self.download(context) }
    }

    struct Uploaded: ResponseEncodable {
        let id: String
        let url: String
        let size: Int
        let digest: String
        let expiresAt: Int64
    }

    struct Listed: ResponseEncodable {
        struct Entry: Codable {
            let id: String
            let url: String
            let size: Int
            let digest: String
            let createdAt: Int64
            let expiresAt: Int64
        }
        let backups: [Entry]
    }

    static func isID(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// Deletes expired files (metadata first, so a crash leaves at most a stray file, removed at the next start).
    func sweep() async throws {
        let expired = try await storage.removeExpiredBackups(now: .nowMillis)
        for id in expired { try await stored { try await blobs.remove(id) } }
    }

    /// Throws a `StorageFailure` unless the blob store can be written to.
    func check() async throws {
        try await stored { try await blobs.check() }
    }

    /// Runs a blob store operation; its failure is a `StorageFailure` (503, logged with its cause).
    private func stored<T>(_ operation: () async throws -> T) async throws -> T {
        do { return try await operation() } catch let error as RelayError { throw error } catch { throw StorageFailure(cause: error) }
    }

    // MARK: - Upload

    private func upload(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try await sweep()
        let auth = try await authenticate(request, path: "/v1/backups")
        guard let contentType = request.headers[.contentType], contentType.lowercased().hasPrefix("multipart/form-data"),
              let boundary = contentType.split(separator: ";").compactMap({ part -> String? in
                  let pair = part.trimmingCharacters(in: .whitespaces)
                  return pair.lowercased().hasPrefix("boundary=") ? String(pair.dropFirst(9)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) : nil
              }).first, !boundary.isEmpty else {
            throw RelayError(.badRequest, code: "not_multipart", "send the file as multipart/form-data with a boundary")
        }
        let id = Hex.encode(Random.bytes(32))
        var form = try await stored { try await UploadForm(id: id, boundary: boundary, blobs: blobs, maxFileBytes: limits.maxFileBytes) }
        let lifetime: Int64, locator: String?
        var body = request.body.makeAsyncIterator()
        do {
            while let buffer = try await body.next() { try await stored { try await form.feed(buffer) } }
            try form.finish(expecting: auth.contentDigest)
            lifetime = try self.lifetime(form.fields["expiresIn"])
            locator = form.fields["locator"]
            if let locator, !Self.isID(locator) { throw RelayError(.badRequest, code: "bad_locator", "a locator is 64 lowercase hex digits") }
        } catch {
            await form.abort()
            // The client did nothing wrong and may retry: read the rest of its
            // upload (up to the size limit) so that it reads the 503 instead of a
            // connection reset in the middle of sending.
            if error is StorageFailure { await Self.discard(&body, upTo: limits.maxFileBytes) }
            throw error
        }
        let deleteAfterDownload = form.fields["deleteAfterDownload"] == "true"
        let now = Int64.nowMillis
        let expiresAt = now + lifetime
        let (size, digest) = (form.size, Hex.encode(form.digest))
        do {
            try await stored { try await form.commit() }
            try await storage.addBackup(BackupRecord(
                id: id, installation: auth.installation, locator: locator, size: size, digest: digest,
                createdAt: now, expiresAt: expiresAt, deleteAfterDownload: deleteAfterDownload))
        } catch {
            try? await blobs.remove(id)
            throw error
        }
        metrics.uploaded(bytes: size)
        var response = try Uploaded(id: id, url: downloadURL(id, request), size: size, digest: digest, expiresAt: expiresAt)
            .response(from: request, context: context)
        response.status = .created
        return response
    }

    private static func discard(_ body: inout RequestBody.AsyncIterator, upTo limit: Int) async {
        var discarded = 0
        while discarded <= limit, let buffer = try? await body.next() { discarded += buffer.readableBytes }
    }

    private func lifetime(_ field: String?) throws -> Int64 {
        let maximum = limits.maxLifetime.components.seconds
        guard let field else { return limits.defaultLifetime.components.seconds * 1000 }
        guard let seconds = Int64(field), seconds > 0, seconds <= maximum else {
            throw RelayError(.badRequest, code: "bad_lifetime", "expiresIn is a number of seconds from 1 to \(maximum)")
        }
        return seconds * 1000
    }

    private func downloadURL(_ id: String, _ request: Request) -> String {
        "http://\(request.head.authority ?? "127.0.0.1")/v1/backups/\(id)"
    }

    /// Checks the request's signature: a known, unrevoked installation, a fresh
    /// timestamp, a nonce not seen before, and the upload rate limit.
    private func authenticate(_ request: Request, path: String) async throws -> RequestAuthentication {
        let auth = try Relay.authentication(of: request)
        let signed = try await RequestChecks(storage: storage).verify(auth, method: "POST", path: path, now: .nowMillis)
        try await storage.admitUpload(signed, perHour: limits.uploadsPerHour)
        return auth
    }

    // MARK: - Download and list

    private func download(_ context: BasicRequestContext) async throws -> Response {
        try await sweep()
        let id = context.parameters.get("id") ?? ""
        guard Self.isID(id) else { throw RelayError(.badRequest, code: "bad_id", "a backup ID is 64 lowercase hex digits") }
        let missing = RelayError(.notFound, code: "no_backup", "no backup with this ID (never uploaded, expired, or already downloaded once)")
        guard let backup = try await storage.takeBackup(id, now: .nowMillis) else { throw missing }
        let opened: BlobContents?
        do { opened = try await blobs.open(id) } catch { throw StorageFailure(cause: error) }
        guard let contents = opened else { throw missing }
        let (once, digest) = (backup.deleteAfterDownload, backup.digest)
        let (storage, blobs) = (storage, blobs)
        return Response(
            status: .ok,
            headers: [.contentType: "application/octet-stream", .contentLength: String(contents.size),
                      HTTPField.Name(RequestAuthentication.Header.contentDigest)!: digest],
            body: ResponseBody(contentLength: contents.size) { writer in
                do {
                    try await Self.send(contents, verifiedAgainst: digest, id: id, to: &writer)
                } catch {
                    if once { try? await storage.release(id) }
                    throw error
                }
                if once {
                    try await storage.removeBackup(id)
                    try await blobs.remove(id)
                }
            })
    }

    /// Streams stored contents to the client, holding back the last chunk until
    /// the whole file's BLAKE2b-256 matches the digest taken at upload: contents
    /// damaged in storage end the response short of its length, so the client
    /// sees a failed download, never a complete-looking wrong file.
    private static func send(_ contents: BlobContents, verifiedAgainst digest: String, id: String, to writer: inout any ResponseBodyWriter) async throws {
        let hash = Blake2b()
        var held: ByteBuffer?
        var size = 0
        for try await chunk in contents.chunks {
            chunk.withUnsafeReadableBytes { hash.update($0) }
            size += chunk.readableBytes
            if let previous = held { try await writer.write(previous) }
            held = chunk
        }
        guard size == contents.size, Hex.encode(hash.finalize()) == digest else {
            throw StorageFailure(cause: BlobDamaged(id: id, size: size, expectedSize: contents.size))
        }
        if let held { try await writer.write(held) }
        try await writer.finish(nil)
    }

    private func list(_ request: Request) async throws -> Listed {
        try await sweep()
        guard let locator = request.uri.queryParameters.get("locator"), Self.isID(locator) else {
            throw RelayError(.badRequest, code: "bad_locator", "list backups with ?locator=<64 lowercase hex digits>")
        }
        return Listed(backups: try await storage.backups(locator: locator, now: .nowMillis).map {
            .init(id: $0.id, url: downloadURL($0.id, request), size: $0.size, digest: $0.digest, createdAt: $0.createdAt, expiresAt: $0.expiresAt)
        })
    }
}

/// Parses a multipart/form-data upload as it streams in: the `file` part goes
/// to the blob store (hashed and counted on the way), other parts are small fields.
private struct UploadForm {
    let parser: MultipartParser
    let state: State
    var upload: any BlobUpload

    final class State {
        var name: String?
        var fields: [String: String] = [:]
        var field: [UInt8] = []
        var fileSeen = false
        var size = 0
        let hash = Blake2b()
        var pending: [ByteBuffer] = []
        var failure: RelayError?
    }

    init(id: String, boundary: String, blobs: any BackupBlobStore, maxFileBytes: Int) async throws {
        parser = MultipartParser(boundary: boundary)
        state = State()
        upload = try await blobs.create(id)
        let state = state
        parser.onHeader = { name, value in
            guard name.lowercased() == "content-disposition" else { return }
            state.name = value.split(separator: ";").lazy.map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix("name=") }.map { String($0.dropFirst(5)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        parser.onBody = { buffer in
            guard state.failure == nil else { return }
            if state.name == "file" {
                state.fileSeen = true
                state.size += buffer.readableBytes
                guard state.size <= maxFileBytes else {
                    state.failure = RelayError(.contentTooLarge, code: "too_large", "a backup file may hold at most \(maxFileBytes) bytes")
                    return
                }
                buffer.withUnsafeReadableBytes { state.hash.update($0) }
                state.pending.append(buffer)
            } else {
                state.field += buffer.readableBytesView
                if state.field.count > 1_024 { state.failure = RelayError(.badRequest, code: "bad_field", "form fields hold at most 1 KiB") }
            }
        }
        parser.onPartComplete = {
            if let name = state.name, name != "file" { state.fields[name] = String(decoding: state.field, as: UTF8.self) }
            state.name = nil
            state.field = []
        }
    }

    var fields: [String: String] { state.fields }
    var size: Int { state.size }
    var digest: [UInt8] = []

    mutating func feed(_ buffer: ByteBuffer) async throws {
        do { try parser.execute(buffer) } catch {
            throw RelayError(.badRequest, code: "bad_multipart", "the multipart/form-data body does not parse")
        }
        if let failure = state.failure { throw failure }
        for chunk in state.pending { try await upload.append(chunk) }
        state.pending.removeAll(keepingCapacity: true)
    }

    mutating func finish(expecting expected: [UInt8]) throws {
        guard state.fileSeen else { throw RelayError(.badRequest, code: "no_file", "the form has no 'file' part") }
        digest = state.hash.finalize()
        guard digest == expected else {
            throw RelayError(.badRequest, code: "digest_mismatch", "the file's BLAKE2b-256 is not the signed Keepsake-Content-Digest")
        }
    }

    mutating func commit() async throws { try await upload.commit() }

    mutating func abort() async { await upload.abort() }
}

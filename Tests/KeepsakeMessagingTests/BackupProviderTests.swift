import AsyncHTTPClient
import Foundation
import KeepsakeTransport
import Testing
@testable import KeepsakeMessaging
@testable import KeepsakeStore
import KeepsakeCrypto
import KeepsakeRelayClient
import KeepsakeS3
import KeepsakeTestServers
import KeepsakeWire
import NIOCore

/// Where the relay under test keeps backup files: every provider test runs on both.
enum BlobBackend: String, CaseIterable, Sendable {
    /// The default: a folder beside the relay's database.
    case folder
    /// An S3-compatible store (SeaweedFS on loopback), through `--blobs s3://bucket/backups`.
    case s3
}

/// The relay's backup provider over HTTP: uploads signed by installations, downloads by capability URL.
/// Every test but the S3 restart runs on both blob stores (`BlobBackend`).
@Suite struct BackupProviderTests {
    @Test(arguments: BlobBackend.allCases) func anUploadDownloadsIntactUntilItExpires(_ backend: BlobBackend) async throws {
        let fixture = try await ProviderFixture(backend)
        let (relay, scratch) = (fixture.relay, fixture.scratch)
        let (source, contents) = try fixture.file("backup.ksbak", bytes: 3 * 1024 * 1024 + 17)
        let locator = Random.bytes(32)
        let stored = try await fixture.upload(source, digest: Blake2b.hash(contents), options: .init(locator: locator))
        #expect(stored.size == contents.count && stored.digest == Blake2b.hash(contents))
        #expect(stored.url.host == relay.url.host && stored.url.port == relay.url.port)
        #expect(stored.expiresAt.timeIntervalSinceNow > 71 * 3600 && stored.expiresAt.timeIntervalSinceNow <= 72 * 3600, "72 hours by default")
        let copy = scratch.path("copy")
        try await relay.client.downloadBackup(from: stored.url, to: copy)
        #expect(try Data(contentsOf: copy) == Data(contents))
        #expect(try await relay.client.listBackups(locator: locator).map(\.id) == [stored.id])
        #expect(try await relay.client.listBackups(locator: Random.bytes(32)).isEmpty)

        let (short, shortContents) = try fixture.file("short.ksbak", bytes: 100)
        let brief = try await fixture.upload(short, digest: Blake2b.hash(shortContents), options: .init(lifetime: .seconds(1)))
        try await Task.sleep(for: .milliseconds(1_200))
        #expect(await fixture.refusal { try await relay.client.downloadBackup(from: brief.url, to: scratch.path("late")) } == "no_backup")
        let metrics = try await relay.metrics()
        #expect(metrics["keepsake_relay_backup_uploads_total"] == 2 && metrics["keepsake_relay_backup_upload_bytes_total"] == Double(contents.count + 100))
    }

    @Test(arguments: BlobBackend.allCases) func aDeleteAfterDownloadFileIsServedOnce(_ backend: BlobBackend) async throws {
        let fixture = try await ProviderFixture(backend)
        let (relay, scratch) = (fixture.relay, fixture.scratch)
        let (source, contents) = try fixture.file("once.ksbak", bytes: 4_096)
        let stored = try await fixture.upload(source, digest: Blake2b.hash(contents), options: .init(deleteAfterDownload: true))
        try await relay.client.downloadBackup(from: stored.url, to: scratch.path("first"))
        #expect(try Data(contentsOf: scratch.path("first")) == Data(contents))
        #expect(await fixture.refusal { try await relay.client.downloadBackup(from: stored.url, to: scratch.path("second")) } == "no_backup")
        #expect(try await fixture.storedBlobs().isEmpty, "the file is gone")
    }

    @Test(arguments: BlobBackend.allCases) func badUploadsAndDownloadsAreRefusedAndStoreNothing(_ backend: BlobBackend) async throws {
        let fixture = try await ProviderFixture(backend)
        let (relay, scratch, device) = (fixture.relay, fixture.scratch, fixture.device)
        let (source, contents) = try fixture.file("b.ksbak", bytes: 1_000)
        let digest = Blake2b.hash(contents)
        let auth = try device.store.authenticateRequest(method: "POST", path: "/v1/backups", contentDigest: digest)

        #expect(await fixture.refusal { _ = try await relay.client.uploadBackup(source, to: relay.client.backupUploadURL, authentication: auth, options: .init()) } == nil)
        #expect(await fixture.refusal { _ = try await relay.client.uploadBackup(source, to: relay.client.backupUploadURL, authentication: auth, options: .init()) } == "replayed_request")
        #expect(await fixture.refusal { _ = try await fixture.upload(source, digest: Blake2b.hash([1])) } == "digest_mismatch")
        let stranger = try Store.open(at: scratch.path("stranger"))
        _ = try stranger.createInstallation()
        #expect(await fixture.refusal { _ = try await fixture.upload(source, digest: digest, signer: stranger) } == "unknown_installation")
        var forged = try device.store.authenticateRequest(method: "POST", path: "/v1/other", contentDigest: digest)
        #expect(await fixture.refusal { _ = try await relay.client.uploadBackup(source, to: relay.client.backupUploadURL, authentication: forged, options: .init()) } == "bad_signature")
        forged = RequestAuthentication.sign(method: "POST", path: "/v1/backups", installation: try #require(try device.store.membership()).installation.bytes,
                                            contentDigest: digest, with: try device.store.signingKey().1, at: Date().addingTimeInterval(-600))
        #expect(await fixture.refusal { _ = try await relay.client.uploadBackup(source, to: relay.client.backupUploadURL, authentication: forged, options: .init()) } == "stale_request")
        #expect(await fixture.refusal { _ = try await fixture.upload(source, digest: digest, options: .init(lifetime: .seconds(400 * 24 * 3600))) } == "bad_lifetime")
        let (large, largeContents) = try fixture.file("large.ksbak", bytes: 5_000_001)
        let tooLarge = await fixture.refusal { _ = try await fixture.upload(large, digest: Blake2b.hash(largeContents)) }
        #expect(tooLarge == "too_large", "refused while streaming: \(tooLarge ?? "accepted")")

        let base = relay.url.absoluteString
        for path in ["/v1/backups/../../relay.sqlite", "/v1/backups/%2e%2e%2frelay.sqlite", "/v1/backups/ABC", "/v1/backups/" + String(repeating: "g", count: 64)] {
            let code = await fixture.refusal { try await relay.client.downloadBackup(from: URL(string: base + path)!, to: scratch.path("x-\(UUID())")) }
            #expect(code == "bad_id" || code == "not_found", "\(path): \(code ?? "served")")
        }
        #expect(await fixture.refusal { try await relay.client.downloadBackup(from: URL(string: base + "/v1/backups/" + Hex.encode(Random.bytes(32)))!, to: scratch.path("none")) } == "no_backup")
        let files = try await fixture.storedBlobs()
        #expect(files.count == 1, "only the one accepted upload is stored: \(files)")
    }

    /// Signed uploads whose form is wrong: each refusal has its own code, and nothing is stored.
    @Test(arguments: BlobBackend.allCases) func uploadFormsThatDoNotParseAreRefusedByWhatIsWrong(_ backend: BlobBackend) async throws {
        let fixture = try await ProviderFixture(backend)
        let (relay, device) = (fixture.relay, fixture.device)
        func post(_ contentType: String, _ body: String) async throws -> String? {
            let auth = try device.store.authenticateRequest(method: "POST", path: "/v1/backups", contentDigest: Blake2b.hash([1, 2, 3]))
            var request = HTTPClientRequest(url: relay.url.absoluteString + "/v1/backups")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: contentType)
            for (name, value) in auth.headers { request.headers.add(name: name, value: value) }
            request.body = .bytes(ByteBuffer(string: body))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            struct Refusal: Decodable { struct Detail: Decodable { let code: String }; let error: Detail }
            return try? JSONDecoder().decode(Refusal.self, from: Data(bytes.readableBytesView)).error.code
        }
        let form = "multipart/form-data; boundary=XYZ"
        #expect(try await post("application/octet-stream", "abc") == "not_multipart")
        #expect(try await post(form, "--XYZ\r\nno header separator here\r\n\r\nabc\r\n--XYZ--\r\n") == "bad_multipart")
        #expect(try await post(form, "--XYZ\r\nContent-Disposition: form-data; name=\"expiresIn\"\r\n\r\n60\r\n--XYZ--\r\n") == "no_file")
        let long = String(repeating: "9", count: 2_000)
        #expect(try await post(form, "--XYZ\r\nContent-Disposition: form-data; name=\"expiresIn\"\r\n\r\n\(long)\r\n--XYZ--\r\n") == "bad_field")
        let files = try await fixture.storedBlobs()
        #expect(files.isEmpty, "nothing was stored: \(files)")
    }

    @Test(arguments: BlobBackend.allCases) func aRevokedInstallationCannotUploadAndUploadsAreRateLimited(_ backend: BlobBackend) async throws {
        let fixture = try await ProviderFixture(backend)
        let (account, device) = (fixture.account, fixture.device)
        let (source, contents) = try fixture.file("r.ksbak", bytes: 10)
        for _ in 0..<60 { _ = try await fixture.upload(source, digest: Blake2b.hash(contents)) }
        #expect(await fixture.refusal { _ = try await fixture.upload(source, digest: Blake2b.hash(contents)) } == "rate_limited")
        try await device.messenger.revoke(try #require(try device.store.membership()).installation, with: account)
        #expect(await fixture.refusal { _ = try await fixture.upload(source, digest: Blake2b.hash(contents)) } == "revoked")
    }


    /// A relay killed mid-upload: after its restart the upload is not listed, and
    /// no file is left (an S3 store keeps the unfinished upload invisible until it is old enough to abort).
    @Test(arguments: BlobBackend.allCases) func anUploadCutByACrashIsNeverVisible(_ backend: BlobBackend) async throws {
        let fixture = try await ProviderFixture(backend)
        let (scratch, account, bucket) = (fixture.scratch, fixture.account, fixture.bucket)
        let data = Scratch()
        let (relay, _) = try await ProviderFixture.relay(on: backend, data: data, bucket: bucket)
        let device = try Device("crashing", in: scratch, relay: relay)
        try await device.messenger.join(account)
        let (source, contents) = try fixture.file("big.ksbak", bytes: 64 * 1024 * 1024)
        let locator = Random.bytes(32)
        let client = relay.client
        let auth = try device.store.authenticateRequest(method: "POST", path: "/v1/backups", contentDigest: Blake2b.hash(contents))
        let uploading = Task {
            try await client.uploadBackup(source, to: client.backupUploadURL, authentication: auth, options: .init(locator: locator))
        }
        let folder = data.path("relay/backups").path
        while try await !fixture.inProgress(folder) { try await Task.sleep(for: .milliseconds(2)) }
        relay.kill()
        await #expect(throws: RelayClient.Failure.self, "the upload did not complete") { _ = try await uploading.value }

        let (restarted, _) = try await ProviderFixture.relay(on: backend, data: data, bucket: bucket)
        #expect(try await restarted.client.listBackups(locator: locator).isEmpty)
        if let bucket {
            #expect(try await bucket.list(prefix: "backups/").isEmpty, "no object was completed")
        } else {
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty, "the partial file is gone after the restart")
        }
    }

    /// A stored file damaged behind the relay's back (same size, one byte changed)
    /// is never served whole: the download breaks off and leaves no file.
    @Test(arguments: BlobBackend.allCases) func aFileDamagedInStorageIsNeverServedWhole(_ backend: BlobBackend) async throws {
        let fixture = try await ProviderFixture(backend)
        let (source, contents) = try fixture.file("d.ksbak", bytes: 200_000)
        let stored = try await fixture.upload(source, digest: Blake2b.hash(contents))
        var damaged = contents
        damaged[123_456] ^= 1
        if let bucket = fixture.bucket {
            try await bucket.put("backups/\(stored.id)", ByteBuffer(bytes: damaged))
        } else {
            try Data(damaged).write(to: fixture.relay.data.path("relay/backups/\(stored.id)"))
        }
        let copy = fixture.scratch.path("copy")
        await #expect(throws: RelayClient.Failure.self) { try await fixture.relay.client.downloadBackup(from: stored.url, to: copy) }
        #expect(!FileManager.default.fileExists(atPath: copy.path), "no partial file is left")
    }

    /// The S3 server killed mid-upload: the upload fails with 503 `storage_unavailable`
    /// and leaves nothing listed; once the server is back, a retry succeeds.
    @Test func anUploadCutByAnS3RestartFailsCleanlyAndARetrySucceeds() async throws {
        let server = try await SeaweedServer.start()
        let bucket = try server.client(bucket: try await server.makeBucket())
        let relay = try RelayProcess(["--blobs", "s3://\(bucket.bucket)/backups"], environment: server.environment, keepingLog: true)
        let scratch = Scratch()
        let device = try Device("uploader", in: scratch, relay: relay)
        try await device.messenger.join(try AccountKey.generate())
        try FileManager.default.createDirectory(at: scratch.url, withIntermediateDirectories: true)
        // Three parts (8 MiB each), so the store fails while most of the file is still to come.
        let contents = Random.bytes(24 * 1024 * 1024), source = scratch.path("big.ksbak"), locator = Random.bytes(32)
        try Data(contents).write(to: source)
        let (client, store, digest) = (relay.client, device.store, Blake2b.hash(contents))
        let upload: @Sendable () async throws -> StoredBackup = {
            let auth = try store.authenticateRequest(method: "POST", path: "/v1/backups", contentDigest: digest)
            return try await client.uploadBackup(source, to: client.backupUploadURL, authentication: auth, options: .init(locator: locator))
        }

        let uploading = Task { try await upload() }
        while try await bucket.unfinishedUploads(prefix: "backups/").isEmpty { try await Task.sleep(for: .milliseconds(2)) }
        server.kill()
        let failure = await #expect(throws: RelayClient.Failure.self) { _ = try await uploading.value }
        #expect(failure?.code == "storage_unavailable", "\(String(describing: failure))")
        #expect(try await relay.client.listBackups(locator: locator).isEmpty)
        #expect(try await relay.readiness() == 503, "not ready while its blob store is down")
        #expect(try await relay.metrics()["keepsake_relay_storage_failures_total"] == 2, "the upload and the readiness check")
        let log = try relay.log()
        #expect(log.contains("storage failed: POST /v1/backups: S3 ") && log.contains("hb.request.id="),
                "the cause is logged with the request's ID: \(log)")
        #expect(!log.contains(SeaweedServer.secretAccessKey), "and never the secret key")

        try await server.restart()
        #expect(try await relay.readiness() == 200)
        let stored = try await upload()
        #expect(try await relay.client.listBackups(locator: locator).map(\.id) == [stored.id])
        try await relay.client.downloadBackup(from: stored.url, to: scratch.path("copy"))
        #expect(try Data(contentsOf: scratch.path("copy")) == Data(contents))
    }
}

/// One provider test's world: a relay on `backend`, an account and an uploading device.
struct ProviderFixture {
    let backend: BlobBackend
    let relay: RelayProcess
    let scratch = Scratch()
    let account: AccountKey
    let device: Device
    /// The bucket's client when the backend is S3.
    let bucket: S3Client?

    init(_ backend: BlobBackend) async throws {
        self.backend = backend
        (relay, bucket) = try await Self.relay(on: backend, options: ["--max-backup-bytes", "5000000"])
        account = try AccountKey.generate()
        device = try Device("uploader", in: scratch, relay: relay)
        try await device.messenger.join(account)
        try FileManager.default.createDirectory(at: scratch.url, withIntermediateDirectories: true)
    }

    /// A relay keeping backup files on `backend` (for S3, in a new bucket of the shared server).
    static func relay(on backend: BlobBackend, options: [String] = [], data: Scratch = Scratch(),
                      bucket: S3Client? = nil) async throws -> (RelayProcess, S3Client?) {
        switch backend {
        case .folder:
            return (try RelayProcess(options, data: data), nil)
        case .s3:
            let server = try SeaweedServer.shared.get()
            let client: S3Client
            if let bucket { client = bucket } else { client = try server.client(bucket: try await server.makeBucket()) }
            return (try RelayProcess(options + ["--blobs", "s3://\(client.bucket)/backups"], data: data, environment: server.environment), client)
        }
    }

    /// What the blob store holds: complete files by ID, and unfinished uploads as `<id>.partial`.
    func storedBlobs() async throws -> [String] {
        guard let bucket else {
            return try FileManager.default.contentsOfDirectory(atPath: relay.data.path("relay/backups").path)
        }
        let files = try await bucket.list(prefix: "backups/").map { String($0.key.dropFirst("backups/".count)) }
        let partial = try await bucket.unfinishedUploads(prefix: "backups/").map { String($0.key.dropFirst("backups/".count)) + ".partial" }
        return files + partial
    }

    func file(_ name: String, bytes: Int) throws -> (URL, [UInt8]) {
        let contents = Random.bytes(bytes)
        let url = scratch.path(name)
        try Data(contents).write(to: url)
        return (url, contents)
    }

    func upload(_ file: URL, digest: [UInt8], options: BackupUploadOptions = .init(), signer: Store? = nil) async throws -> StoredBackup {
        let auth = try (signer ?? device.store).authenticateRequest(method: "POST", path: "/v1/backups", contentDigest: digest)
        return try await relay.client.uploadBackup(file, to: relay.client.backupUploadURL, authentication: auth, options: options)
    }

    func refusal(_ body: () async throws -> Void) async -> String? {
        do { try await body(); return nil } catch let failure as RelayClient.Failure { return failure.code } catch { return "\(error)" }
    }
}

extension ProviderFixture {
    /// Whether an upload has started writing to the blob store.
    func inProgress(_ folder: String) async throws -> Bool {
        if let bucket { return try await !bucket.unfinishedUploads(prefix: "backups/").isEmpty }
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).contains { $0.hasSuffix(".partial") }
    }
}

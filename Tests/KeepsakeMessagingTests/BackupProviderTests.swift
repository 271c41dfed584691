import AsyncHTTPClient
import Foundation
import KeepsakeTransport
import Testing
@testable import KeepsakeMessaging
@testable import KeepsakeStore
import KeepsakeCrypto
import KeepsakeRelayClient
import KeepsakeWire
import NIOCore

/// The relay's backup provider over HTTP: uploads signed by installations, downloads by capability URL.
@Suite struct BackupProviderTests {
    let relay: RelayProcess
    let scratch = Scratch()
    let account: AccountKey
    let device: Device

    init() async throws {
        relay = try RelayProcess(["--max-backup-bytes", "5000000"])
        account = try AccountKey.generate()
        device = try Device("uploader", in: scratch, relay: relay)
        try await device.messenger.join(account)
        try FileManager.default.createDirectory(at: scratch.url, withIntermediateDirectories: true)
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

    @Test func anUploadDownloadsIntactUntilItExpires() async throws {
        let (source, contents) = try file("backup.ksbak", bytes: 3 * 1024 * 1024 + 17)
        let locator = Random.bytes(32)
        let stored = try await upload(source, digest: Blake2b.hash(contents), options: .init(locator: locator))
        #expect(stored.size == contents.count && stored.digest == Blake2b.hash(contents))
        #expect(stored.url.host == relay.url.host && stored.url.port == relay.url.port)
        #expect(stored.expiresAt.timeIntervalSinceNow > 71 * 3600 && stored.expiresAt.timeIntervalSinceNow <= 72 * 3600, "72 hours by default")
        let copy = scratch.path("copy")
        try await relay.client.downloadBackup(from: stored.url, to: copy)
        #expect(try Data(contentsOf: copy) == Data(contents))
        #expect(try await relay.client.listBackups(locator: locator).map(\.id) == [stored.id])
        #expect(try await relay.client.listBackups(locator: Random.bytes(32)).isEmpty)

        let (short, shortContents) = try file("short.ksbak", bytes: 100)
        let brief = try await upload(short, digest: Blake2b.hash(shortContents), options: .init(lifetime: .seconds(1)))
        try await Task.sleep(for: .milliseconds(1_200))
        #expect(await refusal { try await relay.client.downloadBackup(from: brief.url, to: scratch.path("late")) } == "no_backup")
    }

    @Test func aDeleteAfterDownloadFileIsServedOnce() async throws {
        let (source, contents) = try file("once.ksbak", bytes: 4_096)
        let stored = try await upload(source, digest: Blake2b.hash(contents), options: .init(deleteAfterDownload: true))
        try await relay.client.downloadBackup(from: stored.url, to: scratch.path("first"))
        #expect(try Data(contentsOf: scratch.path("first")) == Data(contents))
        #expect(await refusal { try await relay.client.downloadBackup(from: stored.url, to: scratch.path("second")) } == "no_backup")
        #expect(!FileManager.default.fileExists(atPath: relay.data.path("relay/backups/\(stored.id)").path), "the file is gone")
    }

    @Test func badUploadsAndDownloadsAreRefusedAndStoreNothing() async throws {
        let (source, contents) = try file("b.ksbak", bytes: 1_000)
        let digest = Blake2b.hash(contents)
        let auth = try device.store.authenticateRequest(method: "POST", path: "/v1/backups", contentDigest: digest)

        #expect(await refusal { _ = try await relay.client.uploadBackup(source, to: relay.client.backupUploadURL, authentication: auth, options: .init()) } == nil)
        #expect(await refusal { _ = try await relay.client.uploadBackup(source, to: relay.client.backupUploadURL, authentication: auth, options: .init()) } == "replayed_request")
        #expect(await refusal { _ = try await upload(source, digest: Blake2b.hash([1])) } == "digest_mismatch")
        let stranger = try Store.open(at: scratch.path("stranger"))
        _ = try stranger.createInstallation()
        #expect(await refusal { _ = try await upload(source, digest: digest, signer: stranger) } == "unknown_installation")
        var forged = try device.store.authenticateRequest(method: "POST", path: "/v1/other", contentDigest: digest)
        #expect(await refusal { _ = try await relay.client.uploadBackup(source, to: relay.client.backupUploadURL, authentication: forged, options: .init()) } == "bad_signature")
        forged = RequestAuthentication.sign(method: "POST", path: "/v1/backups", installation: try #require(try device.store.membership()).installation.bytes,
                                            contentDigest: digest, with: try device.store.signingKey().1, at: Date().addingTimeInterval(-600))
        #expect(await refusal { _ = try await relay.client.uploadBackup(source, to: relay.client.backupUploadURL, authentication: forged, options: .init()) } == "stale_request")
        #expect(await refusal { _ = try await upload(source, digest: digest, options: .init(lifetime: .seconds(400 * 24 * 3600))) } == "bad_lifetime")
        let (large, largeContents) = try file("large.ksbak", bytes: 5_000_001)
        let tooLarge = await refusal { _ = try await upload(large, digest: Blake2b.hash(largeContents)) }
        #expect(tooLarge == "too_large", "refused while streaming: \(tooLarge ?? "accepted")")

        let base = relay.url.absoluteString
        for path in ["/v1/backups/../../relay.sqlite", "/v1/backups/%2e%2e%2frelay.sqlite", "/v1/backups/ABC", "/v1/backups/" + String(repeating: "g", count: 64)] {
            let code = await refusal { try await relay.client.downloadBackup(from: URL(string: base + path)!, to: scratch.path("x-\(UUID())")) }
            #expect(code == "bad_id" || code == "not_found", "\(path): \(code ?? "served")")
        }
        #expect(await refusal { try await relay.client.downloadBackup(from: URL(string: base + "/v1/backups/" + Hex.encode(Random.bytes(32)))!, to: scratch.path("none")) } == "no_backup")
        let files = try FileManager.default.contentsOfDirectory(atPath: relay.data.path("relay/backups").path)
        #expect(files.count == 1, "only the one accepted upload is stored: \(files)")
    }

    /// Signed uploads whose form is wrong: each refusal has its own code, and nothing is stored.
    @Test func uploadFormsThatDoNotParseAreRefusedByWhatIsWrong() async throws {
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
        let files = try FileManager.default.contentsOfDirectory(atPath: relay.data.path("relay/backups").path)
        #expect(files.isEmpty, "nothing was stored: \(files)")
    }

    @Test func aRevokedInstallationCannotUploadAndUploadsAreRateLimited() async throws {
        let (source, contents) = try file("r.ksbak", bytes: 10)
        for _ in 0..<60 { _ = try await upload(source, digest: Blake2b.hash(contents)) }
        #expect(await refusal { _ = try await upload(source, digest: Blake2b.hash(contents)) } == "rate_limited")
        try await device.messenger.revoke(try #require(try device.store.membership()).installation, with: account)
        #expect(await refusal { _ = try await upload(source, digest: Blake2b.hash(contents)) } == "revoked")
    }

    @Test func anUploadCutByACrashIsNeverVisible() async throws {
        let relay = try RelayProcess()
        let device = try Device("crashing", in: scratch, relay: relay)
        try await device.messenger.join(account)
        let (source, contents) = try file("big.ksbak", bytes: 64 * 1024 * 1024)
        let locator = Random.bytes(32)
        let client = relay.client
        let auth = try device.store.authenticateRequest(method: "POST", path: "/v1/backups", contentDigest: Blake2b.hash(contents))
        let uploading = Task {
            try await client.uploadBackup(source, to: client.backupUploadURL, authentication: auth, options: .init(locator: locator))
        }
        let folder = relay.data.path("relay/backups").path
        while !((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).contains(where: { $0.hasSuffix(".partial") }) {
            try await Task.sleep(for: .milliseconds(2))
        }
        relay.kill()
        await #expect(throws: RelayClient.Failure.self, "the upload did not complete") { _ = try await uploading.value }

        let restarted = try RelayProcess(data: relay.data)
        #expect(try await restarted.client.listBackups(locator: locator).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty, "the partial file is gone after the restart")
    }
}

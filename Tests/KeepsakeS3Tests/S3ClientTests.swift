import Foundation
import KeepsakeCrypto
import KeepsakeTestServers
import NIOCore
import Testing
@testable import KeepsakeRelay
@testable import KeepsakeS3

/// The S3 client against a real S3-compatible server (SeaweedFS on loopback).
@Suite struct S3ClientTests {
    let server: SeaweedServer
    let client: S3Client

    init() async throws {
        server = try SeaweedServer.shared.get()
        client = try server.client(bucket: try await server.makeBucket())
    }

    func contents(of key: String) async throws -> [UInt8]? {
        guard let download = try await client.get(key) else { return nil }
        var bytes: [UInt8] = []
        for try await chunk in download.body { bytes += chunk.readableBytesView }
        #expect(bytes.count == download.size)
        return bytes
    }

    @Test func objectsRoundTripListByPrefixAndDelete() async throws {
        let a = Random.bytes(1_000), b = Random.bytes(10)
        try await client.put("backups/a", ByteBuffer(bytes: a))
        try await client.put("backups/b b&c", ByteBuffer(bytes: b))
        try await client.put("elsewhere/c", ByteBuffer(bytes: [1]))
        #expect(try await contents(of: "backups/a") == a)
        #expect(try await contents(of: "backups/b b&c") == b, "keys with spaces and & are signed and listed as stored")
        let listed = try await client.list(prefix: "backups/")
        #expect(listed.map(\.key).sorted() == ["backups/a", "backups/b b&c"])
        #expect(listed.map(\.size).sorted() == [10, 1_000])
        #expect(listed.allSatisfy { abs($0.lastModified.timeIntervalSinceNow) < 300 })
        try await client.delete("backups/a")
        try await client.delete("backups/never-there")
        #expect(try await contents(of: "backups/a") == nil)
        #expect(try await client.list(prefix: "backups/").map(\.key) == ["backups/b b&c"])
    }

    @Test func aMultipartUploadIsInvisibleUntilItCompletes() async throws {
        let first = Random.bytes(S3BlobStore.minimumPartSize), last = Random.bytes(1_234)
        let id = try await client.startMultipartUpload("big")
        let tags = [
            try await client.uploadPart("big", uploadID: id, number: 1, ByteBuffer(bytes: first)),
            try await client.uploadPart("big", uploadID: id, number: 2, ByteBuffer(bytes: last)),
        ]
        #expect(try await contents(of: "big") == nil, "nothing is visible before completion")
        #expect(try await client.unfinishedUploads(prefix: "").map(\.uploadID) == [id])
        try await client.completeMultipartUpload("big", uploadID: id, parts: tags)
        #expect(try await contents(of: "big") == first + last)
        #expect(try await client.unfinishedUploads(prefix: "").isEmpty)
    }

    @Test func anAbortedUploadLeavesNothing() async throws {
        let id = try await client.startMultipartUpload("dropped")
        _ = try await client.uploadPart("dropped", uploadID: id, number: 1, ByteBuffer(bytes: Random.bytes(100)))
        try await client.abortMultipartUpload("dropped", uploadID: id)
        #expect(try await client.unfinishedUploads(prefix: "").isEmpty)
        #expect(try await client.list(prefix: "").isEmpty)
    }

    @Test func refusalsNameTheOperationAndS3sCodeButNoSecret() async throws {
        let wrongSecret = "not-the-secret-at-all"
        let impostor = try S3Client(endpoint: server.endpoint, bucket: client.bucket, region: SeaweedServer.region,
                                    credentials: try S3Credentials(accessKeyID: SeaweedServer.accessKeyID, secretAccessKey: Array(wrongSecret.utf8)))
        let denied = await #expect(throws: S3Error.self) { try await impostor.put("x", ByteBuffer(bytes: [1])) }
        #expect(denied?.reason == .refused(status: 403, code: "SignatureDoesNotMatch"))
        #expect(denied?.operation == "PutObject")
        #expect(denied.map { !$0.description.contains(wrongSecret) && !$0.description.contains(SeaweedServer.secretAccessKey) } == true)
        #expect(try await client.list(prefix: "").isEmpty, "the refused put stored nothing")

        let missing = try server.client(bucket: "keepsake-no-such-bucket")
        let noBucket = await #expect(throws: S3Error.self) { _ = try await missing.list(prefix: "") }
        #expect(noBucket?.reason == .refused(status: 404, code: "NoSuchBucket"))

        let closed = try S3Client(endpoint: URL(string: "http://127.0.0.1:1")!, bucket: "keepsake-any", region: "us-east-1",
                                  credentials: try S3Credentials(accessKeyID: "k", secretAccessKey: Array("s".utf8)))
        let unreachable = await #expect(throws: S3Error.self) { try await closed.delete("x") }
        #expect(unreachable?.reason == .unreachable)
        #expect(unreachable?.description.contains("127.0.0.1:1") == true)
    }

    @Test func strayBlobsAreRemovedOnlyOnceTheyAreOldEnough() async throws {
        let kept = Hex.encode(Random.bytes(32)), stray = Hex.encode(Random.bytes(32))
        for id in [kept, stray] { try await client.put("p/\(id)", ByteBuffer(bytes: [1])) }
        try await client.put("p/notes.txt", ByteBuffer(bytes: [2]))
        let unfinished = try await client.startMultipartUpload("p/\(Hex.encode(Random.bytes(32)))")

        let patient = S3BlobStore(client: client, prefix: "p/")
        try await patient.removeAll(except: [kept])
        #expect(try await client.list(prefix: "p/").count == 3, "young strays may be another relay's uploads: kept")
        #expect(try await client.unfinishedUploads(prefix: "p/").map(\.uploadID) == [unfinished])

        try await Task.sleep(for: .seconds(1))
        let eager = S3BlobStore(client: client, prefix: "p/", abandonedAfter: .zero)
        try await eager.removeAll(except: [kept])
        #expect(try await client.list(prefix: "p/").map(\.key).sorted() == ["p/\(kept)", "p/notes.txt"], "only ID-named strays go")
        #expect(try await client.unfinishedUploads(prefix: "p/").isEmpty)
    }

    @Test func theBlobStoreSendsLargeContentsInPartsAndSmallOnesWhole() async throws {
        let store: any BackupBlobStore = S3BlobStore(client: client, prefix: "blobs/")
        for size in [0, 1_000, S3BlobStore.minimumPartSize * 2 + 17] {
            let bytes = Random.bytes(size), id = Hex.encode(Random.bytes(32))
            var upload = try await store.create(id)
            var offset = 0
            while offset < size {
                let end = min(offset + 100_000, size)
                try await upload.append(ByteBuffer(bytes: bytes[offset..<end]))
                offset = end
            }
            #expect(try await store.open(id) == nil, "invisible until committed")
            try await upload.commit()
            let opened = try #require(try await store.open(id))
            var read: [UInt8] = []
            for try await chunk in opened.chunks { read += chunk.readableBytesView }
            #expect(opened.size == size && read == bytes, "\(size) bytes")
        }
        #expect(try await client.unfinishedUploads(prefix: "blobs/").isEmpty)
        var aborted = try await store.create(Hex.encode(Random.bytes(32)))
        try await aborted.append(ByteBuffer(bytes: Random.bytes(S3BlobStore.minimumPartSize)))
        await aborted.abort()
        #expect(try await client.unfinishedUploads(prefix: "blobs/").isEmpty)
        #expect(try await client.list(prefix: "blobs/").count == 3)
    }
}

@Suite struct S3ConfigurationTests {
    @Test func locationsParseBucketAndPrefix() {
        #expect(S3Location("s3://bucket") == S3Location("s3://bucket/"))
        #expect(S3Location("s3://bucket")?.prefix == "")
        #expect(S3Location("s3://bucket/a/b")?.prefix == "a/b/")
        #expect(S3Location("s3://bucket/a/b/")?.bucket == "bucket")
        #expect(S3Location("s3:///x") == nil)
        #expect(S3Location("/var/backups") == nil)
    }

    @Test func badBucketsAndEndpointsAreRefusedBeforeAnyRequest() throws {
        let credentials = try S3Credentials(accessKeyID: "k", secretAccessKey: Array("s".utf8))
        for bucket in ["ab", "Upper", "-dash", "with_underscore", String(repeating: "a", count: 64)] {
            #expect(throws: S3Error.self, "\(bucket)") { _ = try S3Client(bucket: bucket, region: "us-east-1", credentials: credentials) }
        }
        for endpoint in ["ftp://host", "http://host/path", "http://host?x=1"] {
            let error = #expect(throws: S3Error.self, "\(endpoint)") {
                _ = try S3Client(endpoint: URL(string: endpoint)!, bucket: "bucket", region: "us-east-1", credentials: credentials)
            }
            #expect(error?.reason == .badConfiguration)
        }
        let aws = try S3Client(bucket: "bucket", region: "eu-west-3", credentials: credentials)
        #expect(aws.endpoint.absoluteString == "https://s3.eu-west-3.amazonaws.com" && !aws.pathStyle)
    }
}

/// The XML reader never traps, whatever the answer.
@Suite struct S3XMLTests {
    @Test func valuesAreReadAndEntitiesDecoded() {
        let xml = Array("""
            <?xml version="1.0"?><ListBucketResult xmlns="http://s3"><Contents><Key>a &amp; b&#x2F;c&#47;</Key></Contents>\
            <Contents><Key>two</Key><KeyCount>9</KeyCount></Contents><Empty/></ListBucketResult>
            """.utf8)
        #expect(S3XML.values("Key", in: xml) == ["a & b/c/", "two"])
        #expect(S3XML.elements("Contents", in: xml).count == 2)
        #expect(S3XML.value("KeyCount", in: xml) == "9")
        #expect(S3XML.elements("Empty", in: xml).map(\.count) == [0])
        #expect(S3XML.value("Missing", in: xml) == nil)
    }

    @Test func brokenAnswersYieldWhatIsWhole() {
        for text in ["<Key>unterminated", "<Key", "<", "</Key><Key>", "<Key>&#xFFFFFFFF;&bogus;&amp</Key>", "", "<Key>\u{0}</Key>"] {
            _ = S3XML.values("Key", in: Array(text.utf8))
        }
        #expect(S3XML.value("Key", in: Array("<Key>&#xFFFFFFFF;&bogus;&amp</Key>".utf8)) == "&#xFFFFFFFF;&bogus;&amp")
        #expect(S3XML.values("Key", in: Array("<Key>a</Key><Key>b".utf8)) == ["a"])
    }
}

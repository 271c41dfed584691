import ArgumentParser
import Foundation
import KeepsakeRelay
import KeepsakeS3

/// Where `keepsake serve` keeps backup files: a folder, or an S3-compatible store.
struct BlobOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Where backup files go: a folder, or s3://bucket/prefix for an S3-compatible store (default: the data folder's backups/).",
        valueName: "folder-or-s3-url"))
    var blobs: String?

    @Option(help: ArgumentHelp("The S3-compatible store's URL, e.g. http://127.0.0.1:8333 (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS S3 in the region). Buckets are addressed path-style on a given endpoint, virtual-hosted on AWS.", valueName: "url"))
    var s3Endpoint: String?

    @Option(help: ArgumentHelp("The store's region, as signatures name it (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1).", valueName: "name"))
    var s3Region: String?

    @Option(help: ArgumentHelp("The access key ID (default: AWS_ACCESS_KEY_ID).", valueName: "id"))
    var s3AccessKeyId: String?

    @Option(help: ArgumentHelp("A file holding the secret access key (default: AWS_SECRET_ACCESS_KEY). A file, not a value: command lines are visible to every user of the machine.", valueName: "path"))
    var s3SecretAccessKeyFile: String?

    /// The store `--blobs` names (nil: the relay's default folder).
    func store(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (any BackupBlobStore)? {
        guard let blobs else { return nil }
        guard let location = S3Location(blobs) else {
            guard !blobs.contains("://") else {
                throw ValidationError("--blobs takes a folder or s3://bucket/prefix, not '\(blobs)'")
            }
            return try FolderBlobStore(directory: URL(fileURLWithPath: blobs))
        }
        let endpointText = s3Endpoint ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"]
        let endpoint = try endpointText.map { text in
            guard let url = URL(string: text) else { throw ValidationError("'\(text)' is not a URL (--s3-endpoint)") }
            return url
        }
        let region = s3Region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        guard let keyID = s3AccessKeyId ?? environment["AWS_ACCESS_KEY_ID"], !keyID.isEmpty else {
            throw ValidationError("--blobs \(blobs) needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or --s3-access-key-id and --s3-secret-access-key-file")
        }
        var secret = try secretAccessKey(environment)
        defer { secret.resetBytes(in: 0..<secret.count) }
        let credentials = try S3Credentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"])
        let client = try S3Client(endpoint: endpoint, bucket: location.bucket, region: region, credentials: credentials)
        return S3BlobStore(client: client, prefix: location.prefix)
    }

    /// The secret key's bytes, from the file or the environment (without a final newline).
    private func secretAccessKey(_ environment: [String: String]) throws -> Data {
        var secret: Data
        if let path = s3SecretAccessKeyFile {
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read the secret access key file \(path)")
            }
            secret = contents
        } else if let value = environment["AWS_SECRET_ACCESS_KEY"] {
            secret = Data(value.utf8)
        } else {
            throw ValidationError("--blobs s3:// needs a secret access key: set AWS_SECRET_ACCESS_KEY or --s3-secret-access-key-file")
        }
        while let last = secret.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { secret.removeLast() }
        guard !secret.isEmpty else { throw ValidationError("the secret access key is empty") }
        return secret
    }
}

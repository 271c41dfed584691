import ArgumentParser
import Foundation
import KeepsakeRelay
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a relay: topics for contact bundles, revocations, prekeys, inboxes and group commits, and a backup provider.",
        discussion: """
        Installations publish to the relay and pull from it, and upload backups for history sync \
        and safekeeping (docs/relay-openapi.json). Topics and backup metadata live in SQLite in \
        the data folder, backup files in its backups/ folder; nothing else is needed. With \
        --database postgres://…, they live in PostgreSQL, which several relays can share. Prints \
        "listening on <url>" once it accepts connections; stops on SIGINT or SIGTERM.

        Backup files can go to an S3-compatible object store instead (AWS S3, SeaweedFS, MinIO...): \
        --blobs s3://bucket/prefix, with the endpoint, region and credentials from the --s3-* \
        options or the usual AWS environment variables (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, \
        AWS_REGION or AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). \
        The bucket must exist.
        """
    )

    @Option(help: ArgumentHelp("Folder for the relay's data.", valueName: "dir"))
    var data = "keepsake-relay"

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on, 1 to 65535 (0 picks a free one).", transform: bounded(0...65_535))
    var port = 8_787

    @Option(help: "Largest topic publish accepted, in bytes (1 to 67108864).", transform: bounded(1...(1 << 26)))
    var maxBody = Relay.Limits().maxBodyBytes

    @Option(help: "Largest backup file accepted, in bytes (1 to 1099511627776).", transform: bounded(1...(1 << 40)))
    var maxBackupBytes = Relay.BackupLimits().maxFileBytes

    @Option(help: "Backup uploads allowed per installation per hour (1 to 1000000000).", transform: bounded(1...1_000_000_000))
    var uploadsPerHour = Relay.BackupLimits().uploadsPerHour

    @Option(help: "Most topic followers (server-sent event streams) at once; more get a 503 (1 to 1000000; default \(Relay.Limits().maxSubscribers)).",
            transform: bounded(1...1_000_000))
    var maxSubscribers = Relay.Limits().maxSubscribers

    @Option(help: "Prekeys one installation may claim per hour, of all installations together (1 to 1000000000; default \(Relay.Limits().prekeyClaimsPerRequester)).",
            transform: bounded(1...1_000_000_000))
    var prekeyClaimsPerRequester = Relay.Limits().prekeyClaimsPerRequester

    @Option(help: "Prekeys one installation may claim of one other installation per hour (1 to 1000000000; default \(Relay.Limits().prekeyClaimsPerPair)).",
            transform: bounded(1...1_000_000_000))
    var prekeyClaimsPerPair = Relay.Limits().prekeyClaimsPerPair

    @Option(help: "Times one installation's prekeys may be served per hour, to everyone together (1 to 1000000000; default \(Relay.Limits().prekeyClaimsPerTarget)).",
            transform: bounded(1...1_000_000_000))
    var prekeyClaimsPerTarget = Relay.Limits().prekeyClaimsPerTarget

    @Option(help: "One-time prekeys of one installation served per hour; later claims get its fallback prekey (0 to 1000000000; default \(Relay.Limits().oneTimePrekeysPerTarget)).",
            transform: bounded(0...1_000_000_000))
    var oneTimePrekeysPerTarget = Relay.Limits().oneTimePrekeysPerTarget

    @Option(help: "Close a connection that sends no complete request head for this many seconds (1 to 3600).",
            transform: bounded(1...3600))
    var idleTimeout = 30

    @Option(help: "Send an idle live follow a keep-alive comment, and read its topic again, every this many seconds (1 to 3600).",
            transform: bounded(1...3600))
    var keepAlive = 15

    @Option(help: "Most connections open at once; more get a 503 and are closed (default: the descriptor limit less 64).",
            transform: bounded(1...1_000_000))
    var maxConnections: Int?

    @Option(help: ArgumentHelp(
        "Keep topics and backup metadata in this PostgreSQL database instead of the data folder's SQLite file; several relays can share it (default: KEEPSAKE_DATABASE_URL when set).",
        valueName: "postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]"))
    var database: String?

    @OptionGroup(title: "Backup files")
    var blobs: BlobOptions

    /// Set by benchmarks (`BenchWorkspace`): exit and remove this folder once standard input closes.
    @Option(help: .hidden) var removeWhenOrphaned: String?

    func run() async throws {
        // Download chunks are allocated on one thread and freed on another; glibc
        // keeps such freed blocks in per-thread arenas, so a fast client made the
        // relay grow by 380 MB serving 1 GB. Blocks of 64 KiB and more mapped on
        // their own go back to the system when freed: the same download grows it by 3 MB.
        Allocator.returnLargeBlocksToSystem()
        if let removeWhenOrphaned { BenchWorkspace.exitWhenOrphaned(removing: URL(fileURLWithPath: removeWhenOrphaned)) }
        var limits = Relay.Limits()
        limits.maxBodyBytes = maxBody
        limits.idleTimeout = .seconds(idleTimeout)
        limits.keepAlive = .seconds(keepAlive)
        if let maxConnections { limits.maxConnections = maxConnections }
        limits.maxSubscribers = maxSubscribers
        limits.prekeyClaimsPerRequester = prekeyClaimsPerRequester
        limits.prekeyClaimsPerPair = prekeyClaimsPerPair
        limits.prekeyClaimsPerTarget = prekeyClaimsPerTarget
        limits.oneTimePrekeysPerTarget = oneTimePrekeysPerTarget
        var backupLimits = Relay.BackupLimits()
        backupLimits.maxFileBytes = maxBackupBytes
        backupLimits.uploadsPerHour = uploadsPerHour
        var logger = Logger(label: "keepsake.relay")
        logger.logLevel = .warning
        let relay = try await Relay(
            directory: URL(fileURLWithPath: data), limits: limits, backupLimits: backupLimits, blobs: try blobs.store(),
            database: database ?? ProcessInfo.processInfo.environment["KEEPSAKE_DATABASE_URL"], logger: logger)
        let app = relay.application(host: host, port: port, logger: logger) { [host] bound in
            print("listening on http://\(host):\(bound)")
            flushOutput()
        }
        try await app.runService()
    }
}

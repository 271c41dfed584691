// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Keepsake",
    // Synchronization.Mutex sets the floor on Apple platforms.
    platforms: [.macOS(.v15), .iOS(.v18), .tvOS(.v18), .watchOS(.v11), .visionOS(.v2)],
    products: [
        // The umbrella: storage, messaging and the transport protocol in one import.
        .library(name: "Keepsake", targets: ["Keepsake"]),
        .library(name: "KeepsakeStore", targets: ["KeepsakeStore"]),
        .library(name: "KeepsakeMessaging", targets: ["KeepsakeMessaging"]),
        .library(name: "KeepsakeTransport", targets: ["KeepsakeTransport"]),
        .library(name: "KeepsakeLog", targets: ["KeepsakeLog"]),
        .library(name: "KeepsakeRelay", targets: ["KeepsakeRelay"]),
        .library(name: "KeepsakeRelayClient", targets: ["KeepsakeRelayClient"]),
        // For the benchmarks package (Benchmarks/), not for apps.
        .library(name: "KeepsakeBenchSupport", targets: ["KeepsakeBenchSupport"]),
        .executable(name: "keepsake", targets: ["KeepsakeCLI"]),
        .executable(name: "keepsake-fuzzer", targets: ["KeepsakeFuzzer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // System libraries: Debian `apt install liblmdb-dev libsodium-dev libzstd-dev`, macOS `brew install lmdb libsodium zstd`.
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"]), .brew(["lmdb"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"]), .brew(["libsodium"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),

        // LMDB calls with its assertion hook armed: a damaged page is an error, not abort().
        .target(name: "CLMDBGuard", dependencies: ["CLMDB"], linkerSettings: [.linkedLibrary("lmdb")]),

        // libsodium wrapper: random bytes, secure memory, AEAD, hashing.
        .target(name: "KeepsakeCrypto", dependencies: ["CSodium"]),
        // LMDB wrapper and the append-only event log built on it.
        .target(name: "KeepsakeLog", dependencies: ["CLMDB", "CLMDBGuard", "KeepsakeCrypto"]),
        // Wire formats installations exchange through a relay, with their signing rules.
        .target(
            name: "KeepsakeWire",
            dependencies: ["KeepsakeCrypto", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        // Storage: the store, its events and projections, queries, backups and
        // restores, checks. Knows nothing of messaging; extensions plug in their
        // own projections and append policies (`StoreExtension`).
        .target(
            name: "KeepsakeStore",
            dependencies: [
                "KeepsakeLog",
                "KeepsakeCrypto",
                "CZstd",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // How installations reach a relay: the `RelayTransport` protocol and its types.
        .target(name: "KeepsakeTransport", dependencies: ["KeepsakeWire"]),
        // An S3-compatible object store client: SigV4 signing and the object and multipart operations.
        .target(
            name: "KeepsakeS3",
            dependencies: [
                "KeepsakeCrypto",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Messaging: accounts, installations, prekeys, sessions, sealed sender,
        // groups, history sync, go-offline. A `StoreExtension` of the store.
        .target(
            name: "KeepsakeMessaging",
            dependencies: [
                "KeepsakeStore",
                "KeepsakeTransport",
                "KeepsakeWire",
                "KeepsakeCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // `import Keepsake`: storage, messaging and the transport protocol.
        .target(name: "Keepsake", dependencies: ["KeepsakeStore", "KeepsakeMessaging", "KeepsakeTransport"]),
        // For benchmarks and tests, not apps: the history generator and the floors (raw LMDB, SQLite, AEAD).
        .target(
            name: "KeepsakeBenchSupport",
            dependencies: ["KeepsakeStore", "KeepsakeMessaging", "KeepsakeCrypto", .product(name: "GRDBSQLite", package: "GRDB.swift")]
        ),
        // The relay server: topics in SQLite behind an HTTP API (`keepsake serve`), or in memory for tests;
        // backup files in a folder or an S3-compatible store.
        .target(
            name: "KeepsakeRelay",
            dependencies: [
                "KeepsakeWire",
                "KeepsakeS3",
                "KeepsakeTransport",
                "KeepsakeCrypto",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The HTTP client that reaches a relay (a `RelayTransport`).
        .target(
            name: "KeepsakeRelayClient",
            dependencies: [
                "KeepsakeTransport",
                "KeepsakeWire",
                "KeepsakeCrypto",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // The `keepsake` command-line tool.
        .executableTarget(
            name: "KeepsakeCLI",
            dependencies: [
                "Keepsake",
                "KeepsakeBenchSupport",
                "KeepsakeCrypto",
                "KeepsakeWire",
                "KeepsakeRelay",
                "KeepsakeRelayClient",
                "KeepsakeS3",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),

        // Every reader of untrusted bytes as a fuzz target, and the libFuzzer driver (`make fuzz`, Fuzz/).
        .target(
            name: "KeepsakeFuzzTargets",
            dependencies: ["KeepsakeStore", "KeepsakeMessaging", "KeepsakeBenchSupport", "KeepsakeLog", "KeepsakeWire", "KeepsakeRelay", "KeepsakeS3"]
        ),
        .executableTarget(name: "KeepsakeFuzzer", dependencies: ["KeepsakeFuzzTargets"]),

        .testTarget(name: "KeepsakeCryptoTests", dependencies: ["KeepsakeCrypto"]),
        .testTarget(name: "KeepsakeLogTests", dependencies: ["KeepsakeLog"]),
        // Real servers the tests start on loopback (SeaweedFS), not mocks.
        .target(
            name: "KeepsakeTestServers", dependencies: ["KeepsakeS3", .product(name: "NIOCore", package: "swift-nio")], path: "Tests/KeepsakeTestServers"
        ),
        .testTarget(name: "KeepsakeS3Tests", dependencies: ["KeepsakeS3", "KeepsakeTestServers", "KeepsakeRelay", "KeepsakeCrypto"]),
        .testTarget(
            name: "KeepsakeStoreTests",
            dependencies: ["KeepsakeStore", "KeepsakeMessaging", "KeepsakeBenchSupport", "KeepsakeLog", "KeepsakeCrypto", "KeepsakeCLI", "KeepsakeFuzzTargets"]
        ),
        .testTarget(
            name: "KeepsakeMessagingTests",
            dependencies: [
                "Keepsake", "KeepsakeStore", "KeepsakeMessaging", "KeepsakeTransport", "KeepsakeBenchSupport",
                "KeepsakeWire", "KeepsakeRelay", "KeepsakeRelayClient", "KeepsakeCLI", "KeepsakeS3", "KeepsakeTestServers",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

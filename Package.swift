// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Keepsake",
    products: [
        .library(name: "Keepsake", targets: ["Keepsake"]),
        .library(name: "KeepsakeLog", targets: ["KeepsakeLog"]),
        .executable(name: "keepsake", targets: ["KeepsakeCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // System libraries (Debian: liblmdb-dev, libsodium-dev, libzstd-dev).
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),

        // libsodium wrapper: random bytes, secure memory, AEAD, hashing.
        .target(name: "KeepsakeCrypto", dependencies: ["CSodium"]),
        // LMDB wrapper and the append-only event log built on it.
        .target(name: "KeepsakeLog", dependencies: ["CLMDB", "KeepsakeCrypto"]),
        // The engine applications import: Store, events, projections, queries, backups.
        .target(
            name: "Keepsake",
            dependencies: [
                "KeepsakeLog",
                "KeepsakeCrypto",
                "CZstd",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // The `keepsake` command-line tool.
        .executableTarget(
            name: "KeepsakeCLI",
            dependencies: [
                "Keepsake",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "KeepsakeCryptoTests", dependencies: ["KeepsakeCrypto"]),
        .testTarget(name: "KeepsakeLogTests", dependencies: ["KeepsakeLog"]),
        .testTarget(name: "KeepsakeTests", dependencies: ["Keepsake", "KeepsakeLog", "KeepsakeCLI"]),
    ],
    swiftLanguageModes: [.v6]
)

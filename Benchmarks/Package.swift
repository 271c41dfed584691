// swift-tools-version:6.1
import Foundation
import PackageDescription

// Benchmarks for Keepsake (package-benchmark): `make benchmarks`, or
// `swift package benchmark` in this folder. Results with their floors: README.md.

// A path dependency is named after its folder, which depends on where the project was cloned.
let keepsake = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "KeepsakeBenchmarks",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "KeepsakeBenchmarks",
            dependencies: [
                .product(name: "Keepsake", package: keepsake),
                .product(name: "KeepsakeLog", package: keepsake),
                .product(name: "KeepsakeBenchSupport", package: keepsake),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/KeepsakeBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)

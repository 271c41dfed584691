// swift-tools-version:6.1
import PackageDescription

// Benchmarks for Keepsake (package-benchmark). Run with `make benchmarks`, or
// `swift package benchmark` here. Results and their floors: README.md.
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
                .product(name: "Keepsake", package: "main"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/KeepsakeBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)

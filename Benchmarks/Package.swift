// swift-tools-version:6.1
import PackageDescription

// Micro-benchmarks for Cohort (ordo-one/benchmark). A separate package so the main
// package does not depend on the benchmark tooling. Run from this directory:
//   swift package --scratch-path /work/scratch/bench-build benchmark
let package = Package(
    name: "cohort-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "cohort", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "CohortBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CohortCore", package: "cohort"),
                .product(name: "CohortReplication", package: "cohort"),
                .product(name: "CohortWire", package: "cohort"),
                .product(name: "CohortNode", package: "cohort"),
                .product(name: "CohortBalancerCore", package: "cohort"),
                .product(name: "CohortHummingbird", package: "cohort"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/CohortBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)

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

// swift-tools-version:6.1
import PackageDescription

// libFuzzer harnesses for Cohort's parsers. A separate package so the main build and
// `swift test` never see the fuzzer flags. Build and run with `scripts/fuzz` (from the
// repository root), which passes the flags to every target, Cohort's included:
//
//   swift build -c debug --package-path Fuzz --scratch-path .build-fuzz \
//       -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//
// Each executable defines `LLVMFuzzerTestOneInput`; libFuzzer provides `main`.
let package = Package(
    name: "cohort-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "cohort", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // Calls libFuzzer's driver from the entry point SwiftPM gives executables (see the header).
        .target(name: "CFuzzDriver"),
        // Fixed key, sample messages of every kind, and the seed corpus writer.
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "CohortCore", package: "cohort"),
                .product(name: "CohortMembership", package: "cohort"),
                .product(name: "CohortReplication", package: "cohort"),
                .product(name: "CohortWire", package: "cohort"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Whole frames: header checks, insecure and sealed decoding, round trip.
        .executableTarget(
            name: "FuzzFrames",
            dependencies: [
                "CFuzzDriver", "FuzzSupport",
                .product(name: "CohortWire", package: "cohort"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Plaintexts (type byte + body) under a correct insecure header: the message decoders.
        .executableTarget(
            name: "FuzzMessages",
            dependencies: [
                "CFuzzDriver", "FuzzSupport",
                .product(name: "CohortWire", package: "cohort"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // A backend's responses as the balancer frames them (ResponseFramer, ResponseHead).
        .executableTarget(
            name: "FuzzResponses",
            dependencies: [
                "CFuzzDriver",
                .product(name: "CohortBalancerCore", package: "cohort"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // A client's requests as the balancer frames them and sends them upstream
        // (RequestFramer, RequestHead.upstreamHead).
        .executableTarget(
            name: "FuzzRequests",
            dependencies: [
                "CFuzzDriver",
                .product(name: "CohortBalancerCore", package: "cohort"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Balancer input: Cookie headers, session ids, addresses.
        .executableTarget(
            name: "FuzzBalancer",
            dependencies: [
                "CFuzzDriver",
                .product(name: "CohortCore", package: "cohort"),
                .product(name: "CohortBalancerCore", package: "cohort"),
            ]
        ),
    ]
)

// swift-tools-version:6.1
import PackageDescription

/// Settings shared by every target: Swift 6 language mode (the tools-version default)
/// with strict concurrency, and explicit `any` for existentials.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "cohort",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CohortCore", targets: ["CohortCore"]),
        .library(name: "CohortMembership", targets: ["CohortMembership"]),
        .library(name: "CohortReplication", targets: ["CohortReplication"]),
        .library(name: "CohortWire", targets: ["CohortWire"]),
        .library(name: "CohortNode", targets: ["CohortNode"]),
        .library(name: "CohortHummingbird", targets: ["CohortHummingbird"]),
        .library(name: "CohortBalancerCore", targets: ["CohortBalancerCore"]),
        .library(name: "CohortBalancer", targets: ["CohortBalancer"]),
        .executable(name: "cohort", targets: ["CohortCommand"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Pure layers: value types and state machines; no IO, no clock, no global randomness.
        .target(name: "CohortCore", swiftSettings: swiftSettings),
        .target(
            name: "CohortMembership",
            dependencies: ["CohortCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CohortReplication",
            dependencies: ["CohortCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Bytes: frames <-> the pure layers' messages, sealed with the cluster key. No sockets.
        .target(
            name: "CohortWire",
            dependencies: [
                "CohortCore", "CohortMembership", "CohortReplication",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The shell: sockets, timers, reconnects; runs the state machines.
        .target(
            name: "CohortNode",
            dependencies: [
                "CohortCore", "CohortMembership", "CohortReplication", "CohortWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // NIO glue shared by the node's HTTP server and the balancer.
        .target(
            name: "CohortNIO",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CohortHummingbird",
            dependencies: [
                "CohortCore", "CohortNode", "CohortNIO",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CohortCommand",
            dependencies: [
                "CohortCore", "CohortNode", "CohortHummingbird", "CohortBalancer", "CohortBalancerCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // Sticky routing decisions and response framing (pure), and the NIO reverse proxy around them.
        .target(
            name: "CohortBalancerCore",
            dependencies: ["CohortCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CohortBalancer",
            dependencies: [
                "CohortCore", "CohortBalancerCore", "CohortNIO",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test-only: manual clock, seeded RNG, simulated network.
        .target(
            name: "CohortTestKit",
            dependencies: ["CohortCore", "CohortMembership", "CohortReplication"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "CohortCoreTests", dependencies: ["CohortCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CohortMembershipTests",
            dependencies: ["CohortMembership", "CohortTestKit"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CohortReplicationTests",
            dependencies: ["CohortReplication", "CohortTestKit"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CohortWireTests",
            dependencies: [
                "CohortWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CohortNodeTests",
            dependencies: [
                "CohortNode", "CohortHummingbird",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CohortBalancerCoreTests",
            dependencies: ["CohortBalancerCore", "CohortCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CohortBalancerTests",
            dependencies: [
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                "CohortBalancer", "CohortBalancerCore", "CohortCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CohortCommandTests",
            dependencies: [
                "CohortCommand", "CohortBalancer", "CohortBalancerCore", "CohortCore", "CohortMembership", "CohortNode",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Spawns real `cohort` processes; talks to them over sockets only (Foundation + Glibc).
        // Its locks are NIO's (pthread): the thread sanitizer sees through those, not
        // through the standard library's `Mutex` (a futex it does not model).
        .testTarget(
            name: "CohortEndToEndTests",
            dependencies: [.product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
    ]
)

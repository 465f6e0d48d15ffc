import CohortCore
import CohortMembership
import CohortNode
import CohortReplication
import CohortWire
import Testing

/// Three (or four) real nodes in one process, on 127.0.0.1 with ports picked by the OS.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct InProcessClusterTests {
    static let key = ClusterKey.generate()

    static func makeNode(_ name: String, seeds: [Address], key: ClusterKey = key, durability: ReplicationEngine.Durability = .acknowledged) async throws -> ClusterNode {
        let configuration = ClusterNode.Configuration(
            name: name, clusterAddress: Address(host: "127.0.0.1", port: 0), seeds: seeds,
            protection: .sealed(key), durability: durability
        )
        return try await ClusterNode.bind(configuration: configuration)
    }

    /// Runs `body` with nodes whose `run()` executes in child tasks; cancels them after.
    static func withRunning<T: Sendable>(_ nodes: [ClusterNode], _ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in nodes { group.addTask { try await node.run() } }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    static func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting: \(what)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func aliveNames(_ node: ClusterNode) -> Set<String> {
        Set(node.members.filter { $0.status == .alive }.map(\.id.name))
    }

    static func change(_ id: SessionID, from version: SessionVersion, count: UInt8) -> LocalChange {
        LocalChange(id: id, loadedVersion: version, changes: [.set(name: "count", value: [count])], maxIdle: .seconds(60))
    }

    @Test func threeNodesReplicateAcknowledgedWritesAndServeAfterAKill() async throws {
        let n1 = try await Self.makeNode("n1", seeds: [])
        let n2 = try await Self.makeNode("n2", seeds: [n1.id.address])
        let n3 = try await Self.makeNode("n3", seeds: [n1.id.address])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in [n1, n2, n3] { group.addTask { try await node.run() } }
            defer { group.cancelAll() }
            try await Self.waitUntil("three alive members everywhere") {
                [n1, n2, n3].allSatisfy { Self.aliveNames($0) == ["n1", "n2", "n3"] }
            }

            // Acknowledged writes on n1 are on n2 and n3 when commit returns.
            let id = n1.makeSessionID()
            var version = SessionVersion.zero
            for count in UInt8(1)...5 {
                let report = await n1.commit(Self.change(id, from: version, count: count))
                #expect(report.outcome == .acknowledged)
                version = try #require(report.session?.version)
                #expect(n2.localSession(forKey: id.key)?.attributes["count"] == [count])
                #expect(n3.localSession(forKey: id.key)?.attributes["count"] == [count])
            }

            // A node that joins later fetches the session on a miss.
            let n4 = try await Self.makeNode("n4", seeds: [n2.id.address])
            group.addTask { try await n4.run() }
            try await Self.waitUntil("n4 sees everyone") { Self.aliveNames(n4) == ["n1", "n2", "n3", "n4"] }
            let fetched = await n4.load(id: id)
            #expect(fetched?.attributes["count"] == [5])
            #expect(fetched?.version == version)
        }
    }

    @Test func nodesWithoutSeedsFindEachOtherByMulticastBeacon() async throws {
        let group = Address(host: "239.255.77.\(Int.random(in: 1...250))", port: Int.random(in: 40_000...50_000))
        var nodes: [ClusterNode] = []
        for name in ["m1", "m2", "m3"] {
            var configuration = ClusterNode.Configuration(
                name: name, clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .sealed(Self.key))
            configuration.multicast = MulticastConfiguration(group: group, interval: .milliseconds(200))
            nodes.append(try await ClusterNode.bind(configuration: configuration))
        }
        try await Self.withRunning(nodes) {
            try await Self.waitUntil("all found by beacon") { nodes.allSatisfy { Self.aliveNames($0) == ["m1", "m2", "m3"] } }
        }
    }

    @Test func aNodeWithAnotherKeyNeverBecomesAMember() async throws {
        let n1 = try await Self.makeNode("n1", seeds: [])
        let n2 = try await Self.makeNode("n2", seeds: [n1.id.address])
        let intruder = try await Self.makeNode("x", seeds: [n1.id.address, n2.id.address], key: ClusterKey.generate())
        try await Self.withRunning([n1, n2, intruder]) {
            try await Self.waitUntil("n1 and n2 see each other") { Self.aliveNames(n1) == ["n1", "n2"] && Self.aliveNames(n2) == ["n1", "n2"] }
            try await Self.waitUntil("n1 rejected the intruder's frames") { n1.counters.framesRejected > 0 }
            #expect(!n1.members.contains { $0.id.name == "x" })
            #expect(!n2.members.contains { $0.id.name == "x" })
            #expect(intruder.members.map(\.id.name) == ["x"])
        }
    }

    @Test func gracefulShutdownLeavesTheClusterInsteadOfDying() async throws {
        let n1 = try await Self.makeNode("n1", seeds: [])
        let n2 = try await Self.makeNode("n2", seeds: [n1.id.address])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await n1.run() }
            defer { group.cancelAll() }
            try await withThrowingTaskGroup(of: Void.self) { inner in
                inner.addTask { try await n2.run() }
                try await Self.waitUntil("joined") { Self.aliveNames(n1) == ["n1", "n2"] }
                inner.cancelAll()  // n2 stops: it announces that it leaves
            }
            try await Self.waitUntil("n2 left", timeout: .seconds(10)) {
                n1.members.contains { $0.id.name == "n2" && $0.status == .left }
            }
            #expect(!n1.members.contains { $0.id.name == "n2" && $0.status == .dead })
        }
    }
}

import CohortCore
import CohortNode
import CohortReplication
import CohortWire
import Testing

/// The key roll of SECURITY.md in one process: three nodes reload their keyrings step by
/// step while writes go on; every write is acknowledged and no frame is rejected.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct KeyRollTests {
    @Test func threeNodesRollToANewKeyWithoutARestart() async throws {
        let old = ClusterKey.generate()
        let new = ClusterKey.generate()
        let n1 = try await InProcessClusterTests.makeNode("n1", seeds: [], key: old)
        let n2 = try await InProcessClusterTests.makeNode("n2", seeds: [n1.id.address], key: old)
        let n3 = try await InProcessClusterTests.makeNode("n3", seeds: [n1.id.address], key: old)
        let nodes = [n1, n2, n3]
        try await InProcessClusterTests.withRunning(nodes) {
            try await InProcessClusterTests.waitUntil("three alive members everywhere") {
                nodes.allSatisfy { InProcessClusterTests.aliveNames($0) == ["n1", "n2", "n3"] }
            }
            let id = n1.makeSessionID()
            var version = SessionVersion.zero
            var count: UInt8 = 0
            func write() async throws {
                count += 1
                let report = await n1.commit(InProcessClusterTests.change(id, from: version, count: count))
                #expect(report.outcome == .acknowledged, "write \(count): \(String(describing: report.outcome))")
                version = try #require(report.session?.version)
            }
            try await write()
            for keyring in [
                Keyring(sendingKey: old, alsoAccepting: [new]),
                Keyring(sendingKey: new, alsoAccepting: [old]),
                Keyring(sendingKey: new),
            ] {
                for node in nodes {
                    try node.reloadKeys(keyring)
                    try await write()
                }
            }
            #expect(nodes.allSatisfy { $0.keyring == Keyring(sendingKey: new) })
            #expect(nodes.map(\.counters.framesRejected) == [0, 0, 0])
            #expect(nodes.map(\.counters.keyReloads) == [3, 3, 3])
            #expect(n3.localSession(forKey: id.key)?.attributes["count"] == [count])

            // A node with only the old key cannot join any more.
            let stale = try await InProcessClusterTests.makeNode("x", seeds: [n1.id.address], key: old)
            try await InProcessClusterTests.withRunning([stale]) {
                try await InProcessClusterTests.waitUntil("n1 rejected the stale key") { n1.counters.framesRejected > 0 }
                #expect(!n1.members.contains { $0.id.name == "x" })
            }
        }
    }

    @Test func anInsecureNodeRefusesKeysAtRunTime() async throws {
        let node = try await ClusterNode.bind(configuration: .init(
            name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure))
        #expect(throws: ConfigurationError.self) { try node.reloadKeys(Keyring(sendingKey: .generate())) }
        #expect(node.keyring == nil)
    }
}

import CohortCore
import CohortNode
import CohortReplication
import Testing

/// A node that just started does not conclude "no such session" before it knows its peers.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct DiscoveryWaitTests {
    @Test("a node whose seeds never answer becomes ready after the grace and says so; one that found its seed does not")
    func readyWithoutATransferIsReported() async throws {
        let silent = Address(host: "127.0.0.1", port: 9)  // nothing answers there
        var configuration = ClusterNode.Configuration(
            name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), seeds: [silent], protection: .sealed(InProcessClusterTests.key))
        configuration.discoveryGrace = .milliseconds(300)
        let alone = try await ClusterNode.bind(configuration: configuration)
        let n2 = try await InProcessClusterTests.makeNode("n2", seeds: [])
        try await InProcessClusterTests.withRunning([alone, n2]) {
            try await InProcessClusterTests.waitUntil("n1 ready") { alone.isReady }
            #expect(alone.readinessNote?.contains("no seed answered") == true, "\(String(describing: alone.readinessNote))")
            let n3 = try await InProcessClusterTests.makeNode("n3", seeds: [n2.id.address])
            try await InProcessClusterTests.withRunning([n3]) {
                try await InProcessClusterTests.waitUntil("n3 ready") { n3.isReady }
                #expect(n3.readinessNote == nil)
            }
        }
    }

    @Test("a session asked for before a starting node heard from its seed is found on the seed, not started anew")
    func aLoadDuringDiscoveryWaitsForIt() async throws {
        // n2 holds the session, but does not answer yet (bound, not running).
        let n2 = try await InProcessClusterTests.makeNode("n2", seeds: [])
        let id = n2.makeSessionID()
        #expect(await n2.commit(InProcessClusterTests.change(id, from: .zero, count: 7)).session != nil)
        let n1 = try await InProcessClusterTests.makeNode("n1", seeds: [n2.id.address])
        try await InProcessClusterTests.withRunning([n1]) {
            try await InProcessClusterTests.waitUntil("n1 discovering") { n1.isDiscovering }
            // The balancer sends the user's next request to n1 as soon as its port accepts;
            // n2 starts answering meanwhile.
            let session = try await withThrowingTaskGroup(of: Session?.self) { group in
                group.addTask { await n1.load(id: id) }
                group.addTask { try await n2.run(); return nil }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
            #expect(session?.attributes["count"] == [7], "n1 answered before it knew n2: \(String(describing: session))")
        }
    }
}

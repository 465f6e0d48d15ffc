import CohortCore
import CohortNode
import CohortReplication
import Testing

/// A logout is a write like any other under acknowledged durability: the other owners
/// confirm the removal, and the request does not wait for the ack timeout.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct AcknowledgedLogoutTests {
    @Test func anAcknowledgedLogoutIsConfirmedByEveryOwnerWithoutWaitingForTheTimeout() async throws {
        let n1 = try await InProcessClusterTests.makeNode("n1", seeds: [])
        let n2 = try await InProcessClusterTests.makeNode("n2", seeds: [n1.id.address])
        let n3 = try await InProcessClusterTests.makeNode("n3", seeds: [n1.id.address])
        try await InProcessClusterTests.withRunning([n1, n2, n3]) {
            try await InProcessClusterTests.waitUntil("three alive members everywhere") {
                [n1, n2, n3].allSatisfy { InProcessClusterTests.aliveNames($0) == ["n1", "n2", "n3"] }
            }
            let id = n1.makeSessionID()
            let created = await n1.commit(InProcessClusterTests.change(id, from: .zero, count: 1))
            #expect(created.outcome == .acknowledged)
            let version = try #require(created.session?.version)

            let started = ContinuousClock.now
            let logout = await n1.commit(LocalChange(id: id, loadedVersion: version, changes: [], maxIdle: .seconds(60), invalidate: true))
            let took = ContinuousClock.now - started
            #expect(logout.outcome == .acknowledged)
            #expect(logout.session == nil)
            #expect(took < .milliseconds(1_800), "the logout waited \(took) (the ack timeout is 2 s)")
            #expect(n2.localSession(forKey: id.key) == nil)
            #expect(n3.localSession(forKey: id.key) == nil)
            #expect(n1.counters.degradedCommits == 0)
        }
    }
}

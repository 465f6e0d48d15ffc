import CohortCore
import CohortNode
import CohortReplication
import Testing

/// A node that joins a running cluster is not ready until it holds its copies, and the
/// session events of a node report local and replicated changes.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct StateTransferTests {
    @Test func aJoiningNodeBecomesReadyOnceItHoldsEveryCopy() async throws {
        let n1 = try await InProcessClusterTests.makeNode("n1", seeds: [])
        let n2 = try await InProcessClusterTests.makeNode("n2", seeds: [n1.id.address])
        try await InProcessClusterTests.withRunning([n1, n2]) {
            try await InProcessClusterTests.waitUntil("n1 and n2 ready") { n1.isReady && n2.isReady }
            var generator = SplitMix64(seed: 21)
            var ids: [SessionID] = []
            for index in 0..<2000 {
                let id = SessionID.generate(route: index % 2 == 0 ? "n1" : "n2", using: &generator)
                ids.append(id)
                let node = index % 2 == 0 ? n1 : n2
                _ = await node.commit(LocalChange(
                    id: id, loadedVersion: .zero, changes: [.set(name: "v", value: Array(repeating: UInt8(index % 256), count: 1024))],
                    maxIdle: .seconds(600)))
            }
            let n3 = try await InProcessClusterTests.makeNode("n3", seeds: [n1.id.address])
            #expect(!n3.isReady, "a node is not ready before it joined")
            try await InProcessClusterTests.withRunning([n3]) {
                let start = ContinuousClock.now
                try await InProcessClusterTests.waitUntil("n3 ready", timeout: .seconds(20)) { n3.isReady }
                print("[transfer] n3 ready with \(n3.sessionCount) sessions \(ContinuousClock.now - start) after starting")
                #expect(n3.sessionCount == ids.count, "ready means every copy arrived")
                for id in ids.prefix(50) {
                    #expect(n3.localSession(forKey: id.key)?.attributes["v"]?.count == 1024)
                }
            }
        }
    }

    @Test func sessionEventsReportLocalAndReplicatedChanges() async throws {
        let n1 = try await InProcessClusterTests.makeNode("n1", seeds: [])
        let n2 = try await InProcessClusterTests.makeNode("n2", seeds: [n1.id.address])
        try await InProcessClusterTests.withRunning([n1, n2]) {
            try await InProcessClusterTests.waitUntil("n1 and n2 see each other") {
                InProcessClusterTests.aliveNames(n1) == ["n1", "n2"] && InProcessClusterTests.aliveNames(n2) == ["n1", "n2"]
            }
            let localEvents = n1.sessionEvents()
            let peerEvents = n2.sessionEvents()
            let id = n1.makeSessionID()
            let created = await n1.commit(LocalChange(id: id, loadedVersion: .zero, changes: [.set(name: "user", value: [1])], maxIdle: .seconds(60)))
            _ = await n1.commit(LocalChange(
                id: id, loadedVersion: created.session?.version ?? .zero, changes: [], maxIdle: .seconds(60), invalidate: true))
            var local: [SessionEvent] = []
            for await event in localEvents {
                local.append(event)
                if local.count == 3 { break }
            }
            #expect(local.map(\.kind) == [.created, .attributesChanged(["user"]), .invalidated])
            #expect(local.allSatisfy { $0.origin == .local })
            var replicated: [SessionEvent] = []
            for await event in peerEvents {
                replicated.append(event)
                if replicated.count == 3 { break }
            }
            #expect(replicated.map(\.kind) == [.created, .attributesChanged(["user"]), .invalidated])
            #expect(replicated.allSatisfy { $0.origin == .peer("n1") })
        }
    }
}

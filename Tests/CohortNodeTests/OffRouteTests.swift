import CohortCore
import CohortNode
import Hummingbird
import HummingbirdTesting
import Testing

/// A session served by a node its route does not name, while the route node lives: what
/// a balancer does when it could not reach that node, or when it is not sticky.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct OffRouteTests {
    /// With async durability a write's response leaves its node before the write reaches
    /// the others. A read served off the route right after it still sees it (the owners
    /// are asked), and the session keeps its route: its node is fine.
    @Test func aReadOffTheRouteSeesTheRouteNodesLastAsyncWriteAndKeepsTheRoute() async throws {
        let n1 = try await InProcessClusterTests.makeNode("n1", seeds: [], durability: .async)
        let n2 = try await InProcessClusterTests.makeNode("n2", seeds: [n1.id.address], durability: .async)
        let (app1, _) = try await ClusterSessionMiddlewareTests.makeApp(node: n1)
        let (app2, _) = try await ClusterSessionMiddlewareTests.makeApp(node: n2)
        try await InProcessClusterTests.withRunning([n1, n2]) {
            try await InProcessClusterTests.waitUntil("n1 and n2 alive on both") {
                [n1, n2].allSatisfy { InProcessClusterTests.aliveNames($0) == ["n1", "n2"] && $0.isReady }
            }
            try await app1.test(.router) { onRoute in
                try await app2.test(.router) { offRoute in
                    let created = try await onRoute.execute(uri: "/count", method: .post)
                    let id = try #require(ClusterSessionMiddlewareTests.cookieValue(created))
                    #expect(id.hasSuffix(".n1"))
                    var stale: [String] = []
                    for count in 2...30 {
                        let written = try await onRoute.execute(uri: "/count", method: .post, headers: [.cookie: "COHORTSESSION=\(id)"])
                        #expect(String(buffer: written.body) == "\(count)")
                        let read = try await offRoute.execute(uri: "/read", method: .get, headers: [.cookie: "COHORTSESSION=\(id)"])
                        if String(buffer: read.body) != "\(count)" { stale.append("\(count): read \(String(buffer: read.body))") }
                        #expect(read.headers[.setCookie] == nil, "n2 rebound a session whose node is fine")
                    }
                    #expect(stale.isEmpty, "n2 served copies older than n1's last write: \(stale)")
                    #expect(n1.localSession(forKey: String(id.prefix { $0 != "." }))?.id.route == "n1")
                }
            }
        }
    }
}

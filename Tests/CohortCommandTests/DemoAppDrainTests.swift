import CohortCore
import CohortHummingbird
import CohortNode
import HummingbirdTesting
import Logging
import Testing

@testable import CohortCommand

/// `cohort node`'s application while its node drains: what the balancers see.
@Suite struct DemoAppDrainTests {
    @Test func whileDrainingHealthSaysSoAndResponsesCloseTheirConnections() async throws {
        let node = try await ClusterNode.bind(configuration: .init(
            name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure, durability: .async))
        let app = DemoApp.make(
            node: node, sessions: ClusterSessionConfiguration(), address: Address(host: "127.0.0.1", port: 0), demo: false,
            logger: Logger(label: "test"))
        try await app.test(.router) { client in
            let before = try await client.execute(uri: "/api/counter", method: .post)
            #expect(before.status == .ok)
            #expect(before.headers[.connection] == nil)
            node.startDraining()
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.status == .serviceUnavailable)
            #expect(health.headers[ClusterNode.drainingField] == "true")
            let during = try await client.execute(uri: "/api/counter", method: .post)
            #expect(during.status == .ok)
            #expect(during.headers[.connection] == "close", "cohort node's context must say the request came over HTTP/1")
            let cluster = try await client.execute(uri: "/cluster", method: .get)
            #expect(String(buffer: cluster.body).contains(#""draining":true"#))
        }
    }
}

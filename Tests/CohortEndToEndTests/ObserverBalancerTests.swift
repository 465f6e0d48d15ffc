import Foundation
import Testing

// `cohort balancer --join`: the balancer is an observer member of the cluster and learns
// its backends, and their deaths, from membership instead of from its own timeouts.
@Suite(.serialized, .timeLimit(.minutes(3)), .tags(.endToEnd), .tracksFailuresForNodeLogs)
struct ObserverBalancerTests {
    struct BackendsView: Decodable {
        struct Row: Decodable {
            var name: String
            var address: String
            var state: String
        }
        var backends: [Row]

        func state(of name: String) -> String? { backends.first { $0.name == name }?.state }
    }

    @Test func aJoinedBalancerLearnsBackendsFromMembershipAndDropsADeadNode() async throws {
        try await withTestCluster { cluster in
            let key = try await cluster.keygen("cluster.key")
            try await cluster.startFullMesh(keyFile: key, durability: "acknowledged")
            let listen = Endpoint.loopback(try FreePorts.tcp())
            let admin = Endpoint.loopback(try FreePorts.tcp())
            let process = try cluster.spawn("balancer", [
                "balancer", "--listen", "\(listen)", "--admin", "\(admin)",
                "--join", "\(cluster.spec("n1").cluster)", "--key-file", key,
            ])
            let balancer = CohortBalancerProcess(process: process, endpoint: listen, admin: admin)
            func backends() throws -> BackendsView {
                try HTTPClient.get("/_cohort/backends", on: admin, timeout: .seconds(1)).decode(BackendsView.self)
            }

            // No --backend given: all three nodes come from membership, with their HTTP addresses.
            try await waitUntil("the balancer learned n1, n2, n3 from membership", timeout: .seconds(10)) {
                try balancer.ensureRunning()
                let view = try backends()
                return ["n1", "n2", "n3"].allSatisfy { view.state(of: $0) == "up" }
            }
            let view = try backends()
            for name in ["n1", "n2", "n3"] {
                #expect(view.backends.first { $0.name == name }?.address == "\(cluster.http(name))")
            }
            // The nodes list the balancer as an observer member.
            try await waitUntil("n2 lists the balancer", timeout: .seconds(5)) {
                try cluster.clusterView(of: "n2").lists("balancer", as: "alive")
            }

            var browser = Browser()
            var last = try browser.incrementCounter(on: listen)
            for _ in 1..<5 { last = try browser.incrementCounter(on: listen) }
            #expect(last.count == 5)
            let sticky = last.node

            cluster.process(sticky).kill9()
            let killedAt = ContinuousClock.now
            let after = try browser.incrementCounter(on: listen)
            #expect(after.count == 6, "count after kill -9 of \(sticky): \(after.count)")
            #expect(after.node != sticky)
            #expect(after.key == last.key)
            // Membership, not the balancer's own checks, marks the dead node down.
            let detected = try await waitUntil("the balancer marks \(sticky) down", timeout: .seconds(10)) {
                try backends().state(of: sticky) == "down"
            }
            print("[ObserverBalancerTests] balancer saw \(sticky) down \((ContinuousClock.now - killedAt).readable) after kill -9 (waited \(detected.readable))")
        }
    }
}

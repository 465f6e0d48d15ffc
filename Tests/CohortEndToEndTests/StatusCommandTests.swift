import Foundation
import Testing

/// `cohort status` against real nodes: the whole cluster from one node's address, and
/// a node killed with SIGKILL shown as dead with exit status 1.
@Suite(.serialized, .timeLimit(.minutes(3)), .tags(.endToEnd), .tracksFailuresForNodeLogs)
struct StatusCommandTests {
    @Test func showsTheClusterFromOneNodeThenADeadNode() async throws {
        try await withTestCluster { cluster in
            try await cluster.startFullMesh(durability: "acknowledged")
            let n1 = cluster.http("n1")

            let healthy = try cluster.spawn("status", ["status", "--node", "\(n1)"])
            let healthyExit = try await healthy.waitForExit(timeout: .seconds(20))
            #expect(healthyExit == .exited(0), "cohort status on a healthy cluster: \(String(describing: healthyExit))\n\(healthy.stdout)\(healthy.stderr)")
            let rows = Self.rows(healthy.stdout)
            for name in ["n1", "n2", "n3"] {
                #expect(rows[name]?.prefix(3) == [name, "alive", "yes"], "row of \(name): \(rows[name] ?? [])\n\(healthy.stdout)")
                #expect(rows[name]?.last == "\(cluster.http(name))", "\(name)'s HTTP address is listed")
            }

            cluster.process("n3").kill9()
            try await waitUntil("n1 lists n3 as dead", timeout: .seconds(10)) {
                try cluster.clusterView(of: "n1").lists("n3", as: "dead")
            }
            let degraded = try cluster.spawn("status", ["status", "--node", "\(n1)"])
            let degradedExit = try await degraded.waitForExit(timeout: .seconds(20))
            #expect(degradedExit == .exited(1), "cohort status with a dead member: \(String(describing: degradedExit))\n\(degraded.stdout)")
            let after = Self.rows(degraded.stdout)
            #expect(after["n3"]?.prefix(3) == ["n3", "dead", "-"], "n3 after kill -9: \(after["n3"] ?? [])\n\(degraded.stdout)")
            #expect(after["n2"]?.prefix(3) == ["n2", "alive", "yes"])
        }
    }

    /// The table's rows by node name, split on whitespace.
    static func rows(_ output: String) -> [String: [String]] {
        var rows: [String: [String]] = [:]
        for line in output.split(separator: "\n") {
            let cells = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if let name = cells.first, ["n1", "n2", "n3"].contains(name), cells.count >= 8 { rows[name] = cells }
        }
        return rows
    }
}

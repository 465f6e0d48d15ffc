import Foundation
import Testing

/// Five real nodes with `--placement owners:2`: every session has exactly two copies,
/// and after `kill -9` of one node the copies are restored and no value is lost.
@Suite(.serialized, .timeLimit(.minutes(3)), .tags(.endToEnd), .tracksFailuresForNodeLogs)
struct PlacementEndToEndTests {
    static let nodes = ["n1", "n2", "n3", "n4", "n5"]

    /// The sum of the copies every node in `names` holds.
    func heldCopies(_ cluster: TestCluster, _ names: [String]) throws -> (total: Int, stray: Int) {
        var total = 0
        var stray = 0
        for name in names {
            let view = try cluster.clusterView(of: name)
            total += view.sessions
            stray += view.stray ?? 0
        }
        return (total, stray)
    }

    @Test func twoCopiesOfEverySessionAndBackToTwoAfterKill9() async throws {
        try await withTestCluster { cluster in
            try await cluster.startFullMesh(Self.nodes, durability: "acknowledged", extraArguments: ["--placement", "owners:2"])
            // 100 sessions spread over the nodes, each counted to a known value.
            var browsers: [(Browser, expected: Int)] = []
            for index in 0..<100 {
                var browser = Browser()
                let node = Self.nodes[index % Self.nodes.count]
                var last = 0
                for _ in 0...(index % 4) { last = try browser.incrementCounter(on: cluster.http(node)).count }
                browsers.append((browser, last))
            }
            let settled = try await waitUntil("the five nodes hold 2 × 100 copies", timeout: .seconds(10)) {
                let held = try heldCopies(cluster, Self.nodes)
                guard held.total == 200, held.stray == 0 else { throw NotYet("held \(held.total) copies, \(held.stray) strays") }
                return true
            }
            log("2 × 100 copies held \(settled.readable) after the writes")

            cluster.process("n3").kill9()
            let survivors = Self.nodes.filter { $0 != "n3" }
            let restored = try await waitUntil("the four survivors hold 2 × 100 copies again", timeout: .seconds(10)) {
                let held = try heldCopies(cluster, survivors)
                guard held.total == 200, held.stray == 0 else { throw NotYet("held \(held.total) copies, \(held.stray) strays") }
                return true
            }
            log("2 × 100 copies restored \(restored.readable) after kill -9 of n3")

            // Every session still reads its last acknowledged value, on any survivor.
            for (index, entry) in browsers.enumerated() {
                var browser = entry.0
                let seen = try browser.session(on: cluster.http(survivors[index % survivors.count]))
                #expect(seen.count == entry.expected, "session \(index): count \(seen.count), last acknowledged \(entry.expected)")
            }
        }
    }

    /// The demo's login rotates the session id: the data moves to the new id on every
    /// node, and the old id (e.g. one an attacker planted before login) is worthless.
    @Test func loginRotatesTheIdAndTheOldOneStopsWorkingEverywhere() async throws {
        try await withTestCluster { cluster in
            try await cluster.startFullMesh(["n1", "n2", "n3"], durability: "acknowledged")
            var browser = Browser()
            for _ in 1...3 { _ = try browser.incrementCounter(on: cluster.http("n1")) }
            let before = try browser.session(on: cluster.http("n1"))
            let planted = browser.cookies
            let login = try browser.send("POST", "/api/login?user=alice", on: cluster.http("n1"))
            #expect(login.status == 200, "login: HTTP \(login.status) \(login.text)")
            let after = try browser.session(on: cluster.http("n2"))
            #expect(after.id != before.id, "the id changed at login")
            #expect(after.key != before.key, "the random part changed, not only the route")
            #expect(after.count == 3, "the session kept its data: \(after.count)")
            for name in ["n1", "n2", "n3"] {
                var attacker = Browser(cookies: planted)
                let seen = try attacker.session(on: cluster.http(name))
                #expect(seen.key != before.key && seen.count == 0, "\(name) still serves the pre-login id: \(seen)")
            }
        }
    }

    private func log(_ message: String) {
        print("[e2e] \(message)")
    }
}

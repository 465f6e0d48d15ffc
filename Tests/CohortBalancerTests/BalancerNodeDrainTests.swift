@testable import CohortBalancer
import CohortBalancerCore
import Testing

/// A node that stops gracefully says so in its health answer (`Cohort-Draining`), and the
/// balancer acts on the first such answer instead of counting failures.
@Suite("Balancer and draining nodes", .timeLimit(.minutes(1)))
struct BalancerNodeDrainTests {
    @Test("a node whose health answer says it drains is taken out at once, its sessions go elsewhere, and it is back once it passes")
    func drainingAnswer() async throws {
        // So many failures needed that only the draining answer can take `b` out.
        try await withHarness(configure: { $0.failureThreshold = 1_000 }) { (h: Harness) async throws in
            #expect(try await h.get(route: "b").backend == "b")
            let backend = try #require(h.backends.first { $0.name == "b" })
            backend.draining.withLockedValue { $0 = true }
            try await h.waitUntil("b marked down by its draining answer") { h.state(of: "b") == .down }
            #expect(h.state(of: "b") == .down)
            // Its sessions (and new ones) are served by the others meanwhile.
            for _ in 0..<4 {
                #expect(try await h.get(route: "b").backend != "b")
                #expect(try await h.get().backend != "b")
            }
            backend.draining.withLockedValue { $0 = false }
            try await h.waitUntil("b up again after a passing check") { h.state(of: "b") == .up }
            #expect(try await h.get(route: "b").backend == "b")
        }
    }
}

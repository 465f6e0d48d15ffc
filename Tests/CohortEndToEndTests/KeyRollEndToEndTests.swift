import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// The live key roll of SECURITY.md on three real `cohort node` processes behind
// `cohort balancer`, under load: each node's key file is rewritten and the node gets
// SIGHUP, three times (accept the new key; send with it; drop the old one). No process
// restarts, no request fails, no count skips, and no frame is ever rejected.
@Suite(.serialized, .timeLimit(.minutes(5)), .tags(.endToEnd), .tracksFailuresForNodeLogs)
struct KeyRollEndToEndTests {
    static let trio = ["n1", "n2", "n3"]

    /// What `GET /cluster` says about keys and rejected frames.
    struct KeyView: Decodable {
        struct Keys: Decodable {
            var sending: Int
            var accepted: [Int]
        }
        struct Counters: Decodable {
            var framesRejected: Int
            var degradedCommits: Int
            var keyReloads: Int
        }
        var keys: Keys?
        var counters: Counters
    }

    @Test func liveKeyRollUnderLoadLosesNothing() async throws {
        try await withTestCluster { cluster in
            let oldKey = try String(contentsOfFile: try await cluster.keygen("old.key"), encoding: .utf8)
            let newKey = try String(contentsOfFile: try await cluster.keygen("new.key"), encoding: .utf8)
            // Each node has its own key file, as on separate machines.
            var specs = try Self.trio.map { try NodeSpec.onFreePorts($0) }
            for index in specs.indices {
                let path = cluster.directory.appendingPathComponent("\(specs[index].name).key").path
                try oldKey.write(toFile: path, atomically: true, encoding: .utf8)
                specs[index].seeds = specs.filter { $0.name != specs[index].name }.map(\.cluster)
                specs[index].keyFile = path
                specs[index].durability = "acknowledged"
            }
            for spec in specs { try cluster.start(spec) }
            try await cluster.waitUntilHealthy(Self.trio)
            try await cluster.waitUntilMembers(Dictionary(uniqueKeysWithValues: Self.trio.map { ($0, "alive") }), on: Self.trio, timeout: .seconds(10))

            let balancer = try await cluster.startBalancer(backends: Self.trio)
            let load = CounterLoad(clients: 60, endpoint: balancer.endpoint)
            let deadline = ContinuousClock.now + .seconds(90)

            func progress(_ count: Int, _ what: String) async throws {
                let target = load.completedRequests + count
                try await waitUntil("\(count) more requests \(what)", deadline: deadline, pollInterval: .milliseconds(20)) {
                    try balancer.ensureRunning()
                    try cluster.ensureRunning(Self.trio)
                    if load.completedRequests >= target { return true }
                    throw NotYet("\(load.completedRequests) of \(target) requests answered")
                }
            }

            /// Rewrites every node's key file, sends SIGHUP, and waits until each node
            /// reports the reload (`keyReloads == step`) with the expected key count.
            func rollStep(_ step: Int, _ contents: String, keys: Int, _ what: String) async throws {
                load.enter(phase: what)
                for spec in specs {
                    guard let path = spec.keyFile else { continue }
                    try contents.write(toFile: path, atomically: true, encoding: .utf8)
                    kill(cluster.process(spec.name).pid, SIGHUP)
                }
                try await waitUntil("every node reloaded its keys (\(what))", deadline: deadline) {
                    try cluster.ensureRunning(Self.trio)
                    for name in Self.trio {
                        let view = try Self.keyView(cluster, name)
                        guard view.counters.keyReloads == step, view.keys?.accepted.count == keys else {
                            throw NotYet("\(name): \(view.counters.keyReloads) reloads, keys \(String(describing: view.keys))")
                        }
                    }
                    return true
                }
                try await progress(600, "after: \(what)")
            }

            load.start(workers: 12)
            do {
                load.enter(phase: "old key")
                try await progress(600, "with the old key")
                try await rollStep(1, oldKey + newKey, keys: 2, "1: accept the new key")
                try await rollStep(2, newKey + oldKey, keys: 2, "2: send with the new key")
                try await rollStep(3, newKey, keys: 1, "3: drop the old key")
                try await load.stop()
            } catch {
                try? await load.stop()
                throw error
            }

            let totals = load.totals
            print("[e2e] key roll: \(totals.requests) POSTs, violations \(totals.violations.count); per phase: \(totals.perPhase.dropFirst().map(\.description).joined(separator: "; "))")
            #expect(totals.violations.isEmpty, """
                \(totals.violations.count) violation(s); the first ones:
                \(totals.violations.prefix(25).map { "  \($0)" }.joined(separator: "\n"))
                """)
            for name in Self.trio {
                let view = try Self.keyView(cluster, name)
                #expect(view.counters.framesRejected == 0, "\(name) rejected \(view.counters.framesRejected) frame(s) during the roll")
                #expect(view.counters.degradedCommits == 0, "\(name) had \(view.counters.degradedCommits) degraded commit(s)")
                #expect(cluster.process(name).isRunning, "\(name) restarted or died")
            }
            // Nobody was restarted and all are still members of one cluster.
            try await cluster.waitUntilMembers(Dictionary(uniqueKeysWithValues: Self.trio.map { ($0, "alive") }), on: Self.trio, timeout: .seconds(5))
            // A node that still has only the old key is now locked out.
            var stale = try NodeSpec.onFreePorts("n4")
            let stalePath = cluster.directory.appendingPathComponent("n4.key").path
            try oldKey.write(toFile: stalePath, atomically: true, encoding: .utf8)
            stale.keyFile = stalePath
            stale.seeds = specs.map(\.cluster)
            try cluster.start(stale)
            try await cluster.waitUntilHealthy(["n4"])
            try await waitUntil("n1 rejects frames sealed with the dropped key", timeout: .seconds(10)) {
                try Self.keyView(cluster, "n1").counters.framesRejected > 0
            }
            #expect(!(try cluster.clusterView(of: "n1").memberNames.contains("n4")), "n4 with the dropped key became a member")
        }
    }

    static func keyView(_ cluster: TestCluster, _ name: String) throws -> KeyView {
        try HTTPClient.get("/cluster", on: cluster.http(name), timeout: .seconds(2)).decode(KeyView.self)
    }
}

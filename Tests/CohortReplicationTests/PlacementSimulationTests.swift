import CohortCore
import CohortReplication
import CohortTestKit
import Testing

/// Seeded simulations of `owners(n)` placement at 16 and 64 nodes with 10,000 sessions:
/// random crashes, joins and partitions, then the placement invariants once things settle.
@Suite struct PlacementSimulationTests {
    static let sessionCount = 10_000

    struct Scenario: CustomTestStringConvertible, Sendable {
        var nodes: Int
        var owners: Int
        var seed: UInt64
        var testDescription: String { "\(nodes) nodes, owners:\(owners)" }
    }

    static let scenarios = [
        Scenario(nodes: 16, owners: 2, seed: 1), Scenario(nodes: 16, owners: 3, seed: 2),
        Scenario(nodes: 64, owners: 2, seed: 3), Scenario(nodes: 64, owners: 3, seed: 4),
    ]

    func configuration(owners: Int) -> ReplicationEngine.Configuration {
        var configuration = ReplicationEngine.Configuration()
        configuration.placement = .owners(owners)
        return configuration
    }

    /// Every session has exactly `n` copies, on the nodes placement names, all equal.
    func expectPlaced(_ simulation: ReplicationSimulation, owners n: Int, sessions: Int, _ when: String) {
        let copies = simulation.copies()
        #expect(copies.count == sessions, "\(when): sessions held somewhere")
        let misplaced = copies.filter { $0.value.holders.count != n }
        #expect(misplaced.isEmpty, "\(when): \(misplaced.count) sessions without exactly \(n) copies, e.g. \(misplaced.first.map { "\($0.value.holders)" } ?? "")")
        let inconsistent = copies.filter { !$0.value.consistent }
        #expect(inconsistent.isEmpty, "\(when): \(inconsistent.count) sessions with differing copies")
        // The holders are the owners every node computes.
        let anyNode = simulation.liveNodes[0]
        var wrongHolders = 0
        for (key, entry) in copies {
            guard let holder = entry.holders.first, let session = simulation.engines[holder]?.session(forKey: key),
                  let owners = simulation.engines[anyNode]?.owners(of: session.id)
            else { continue }
            if Set(owners) != Set(entry.holders) { wrongHolders += 1 }
        }
        #expect(wrongHolders == 0, "\(when): sessions held by nodes other than their owners")
    }

    @Test(arguments: scenarios)
    func placementSurvivesCrashesJoinsAndPartitions(_ scenario: Scenario) {
        let n = scenario.owners
        var random = SplitMix64(seed: scenario.seed)
        var names = (1...scenario.nodes).map { "node-\($0)" }
        var simulation = ReplicationSimulation(nodes: names, configuration: configuration(owners: n))
        var ids: [SessionID] = []
        var values: [String: UInt8] = [:]
        for index in 0..<Self.sessionCount {
            let node = names[Int.random(in: 0..<names.count, using: &random)]
            let id = SessionID.generate(route: node, using: &random)
            ids.append(id)
            values[id.key] = UInt8(index % 251)
            simulation.write(id, on: node, [.set(name: "v", value: [UInt8(index % 251)])])
        }
        simulation.settle()
        expectPlaced(simulation, owners: n, sessions: ids.count, "after creation")

        // Messages per write: n - 1 deltas, sent only to the other owners.
        simulation.resetCounts()
        for id in ids.prefix(1000) {
            guard let primary = simulation.primary(of: id, via: names[0]) else { continue }
            let value = UInt8.random(in: 0...250, using: &random)
            values[id.key] = value
            simulation.write(id, on: primary, [.set(name: "v", value: [value])])
        }
        simulation.deliver()
        #expect(simulation.sent["delta"] == 1000 * (n - 1))

        // A join moves about 1/N of the sessions, not all of them: the joiner takes a
        // backup slot where it outscores a current backup (primaries stay with their
        // route), so (n-1)/N of the copies move.
        let pulledBefore = simulation.engines.values.reduce(0) { $0 + $1.statistics.pulled }
        names.append("node-new")
        simulation.join("node-new")
        simulation.settle()
        let moved = simulation.engines.values.reduce(0) { $0 + $1.statistics.pulled } - pulledBefore
        let expected = Double(Self.sessionCount * (n - 1)) / Double(names.count)
        #expect(Double(moved) > expected * 0.6 && Double(moved) < expected * 1.5, "a join moved \(moved) copies, expected about \(Int(expected))")
        expectPlaced(simulation, owners: n, sessions: ids.count, "after a join")

        // Random crashes (fewer than n at a time, so no session loses every copy), joins
        // and a partition that heals.
        for round in 0..<3 {
            for _ in 0..<(n - 1) {
                let victim = names.remove(at: Int.random(in: 0..<names.count, using: &random))
                simulation.crash(victim)
            }
            simulation.settle()
            expectPlaced(simulation, owners: n, sessions: ids.count, "after crashes in round \(round)")
            let joiner = "joiner-\(round)"
            names.append(joiner)
            simulation.join(joiner)
            simulation.settle()
            expectPlaced(simulation, owners: n, sessions: ids.count, "after a join in round \(round)")
        }
        let minority = Set(names.shuffled(using: &random).prefix(names.count / 4))
        simulation.partition(minority)
        simulation.settle()
        simulation.heal()
        simulation.settle()
        expectPlaced(simulation, owners: n, sessions: ids.count, "after a partition healed")

        // Every session still reads its last written value on every copy.
        var wrong = 0
        let finalCopies = simulation.copies()
        for id in ids {
            guard let holder = finalCopies[id.key]?.holders.first,
                  let session = simulation.engines[holder]?.session(forKey: id.key)
            else { wrong += 1; continue }
            if session.attributes["v"] != values[id.key].map({ [$0] }) { wrong += 1 }
        }
        #expect(wrong == 0, "\(wrong) sessions lost their last value")
    }

    @Test func copiesAreRestoredWhenNodesLearnOfACrashAtDifferentTimes() {
        var simulation = ReplicationSimulation(nodes: (1...6).map { "n\($0)" }, configuration: configuration(owners: 2))
        var random = SplitMix64(seed: 12)
        let ids = (0..<600).map { index in SessionID.generate(route: "n\(index % 6 + 1)", using: &random) }
        for id in ids { simulation.write(id, on: id.route, [.set(name: "v", value: [1])]) }
        simulation.settle()
        // n2 notices first and offers copies to nodes that still count n1 alive.
        simulation.crash("n1", seenBy: ["n2"])
        for _ in 0..<10 { simulation.tick() }
        simulation.detect("n1")
        simulation.settle()
        expectPlaced(simulation, owners: 2, sessions: ids.count, "after a crash seen at different times")
        // `/cluster`'s role counts add up: one primary and one backup per session.
        let roles = simulation.engines.values.map { $0.roleCounts() }
        #expect(roles.reduce(0) { $0 + $1.primary } == ids.count)
        #expect(roles.reduce(0) { $0 + $1.backup } == ids.count)
        #expect(roles.reduce(0) { $0 + $1.stray } == 0)
    }

    @Test func writesOnBothSidesOfAPartitionConvergeToTheHigherVersionAndAreCounted() {
        var simulation = ReplicationSimulation(nodes: ["a", "b", "c", "d"], configuration: configuration(owners: 2))
        var random = SplitMix64(seed: 9)
        let id = SessionID.generate(route: "a", using: &random)
        simulation.write(id, on: "a", [.set(name: "v", value: [1])])
        simulation.settle()
        let holders = simulation.copies()[id.key]?.holders ?? []
        #expect(holders.count == 2)
        // Cut the primary's side from the backup's side; both sides write.
        let backup = holders.first { $0 != "a" } ?? "b"
        simulation.partition(["a"])
        simulation.settle()
        simulation.write(id, on: "a", [.set(name: "v", value: [2])])
        let otherPrimary = simulation.primary(of: id, via: backup) ?? backup
        simulation.write(id, on: otherPrimary, [.set(name: "w", value: [3])])
        simulation.settle()
        simulation.heal()
        simulation.settle()
        let copies = simulation.copies()[id.key]
        #expect(copies?.holders.count == 2)
        #expect(copies?.consistent == true)
        // Same counter on both sides: the origin breaks the tie, deterministically.
        let winner = max(SessionVersion(counter: 2, origin: "a"), SessionVersion(counter: 2, origin: otherPrimary))
        let held = copies.flatMap { simulation.engines[$0.holders[0]]?.session(forKey: id.key) }
        #expect(held?.version == winner)
        #expect(simulation.engines.values.reduce(0) { $0 + $1.statistics.conflicts } >= 1)
    }
}

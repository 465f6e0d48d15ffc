import CohortCore
import CohortMembership
import CohortTestKit
import Testing

/// Whole-cluster behaviour of ``Membership/Instance`` on the deterministic simulated network,
/// each over several seeds. Every node has only `node0` as seed.
@Suite("Membership simulation")
struct MembershipSimulationTests {
    static let configuration = Membership.Configuration()

    /// How long a cluster of `count` nodes started all at once may take to see itself whole,
    /// from seeds only: the seed learns everyone at once and gossip carries the `N` joins to
    /// everyone, `maxGossipPerPacket` updates a packet, in about `log2(N)` rounds each.
    /// (Measured over 40 seeds: 0.22 s for 3 nodes, 0.42 s for 10, 4.4 to 7.4 s for 50.)
    static func convergenceBound(_ count: Int) -> Duration {
        let log2 = Int.bitWidth - (count - 1).leadingZeroBitCount
        let rounds = (count * log2 + configuration.maxGossipPerPacket - 1) / configuration.maxGossipPerPacket
        return configuration.probeInterval * (rounds + 10)
    }

    /// How long after a partition heals the isolated node may take to be alive everywhere
    /// and see everyone alive: the next reconnect ping (within `reconnectInterval`) plus a
    /// few round trips of refutation, with slack for ticks and gossip.
    static let readmissionBound = configuration.reconnectInterval + configuration.probeInterval * 2

    /// How long after a restart the new uid may take to be alive everywhere and the old one
    /// gone: a restarted seed has no seed to ping, so it waits to be probed at its address
    /// (within `2 × (N − 1)` probe intervals); others ping their seed at once. Then the news
    /// spreads as after a heal.
    static func restartBound(_ count: Int) -> Duration {
        configuration.probeInterval * (2 * (count - 1)) + readmissionBound
    }

    /// A started simulation of `count` nodes that has converged (everyone alive everywhere).
    /// The last node is an observer (a balancer), which changes nothing for membership.
    static func converged(_ count: Int, seed: Int) -> MembershipSimulation {
        var sim = MembershipSimulation(
            nodes: count,
            seed: UInt64(seed),
            configuration: configuration,
            roles: { $0 == count - 1 ? .observer : .node }
        )
        sim.startAll()
        let took = sim.advance(until: { $0.allRunningSeeEachOtherAlive() }, timeout: convergenceBound(count))
        #expect(took != nil, "seed \(seed): \(count) nodes did not converge")
        return sim
    }

    @Test("all nodes see each other alive from seeds only", arguments: [3, 10, 50], 0..<5)
    func convergesFromSeeds(count: Int, seed: Int) {
        var sim = MembershipSimulation(nodes: count, seed: UInt64(seed), configuration: Self.configuration)
        sim.startAll()
        let took = sim.advance(until: { $0.allRunningSeeEachOtherAlive() }, timeout: Self.convergenceBound(count))
        #expect(took != nil, "seed \(seed)")
        #expect(sim.changes.allSatisfy { $0.member.status == .alive }, "seed \(seed): \(sim.changes.filter { $0.member.status != .alive })")
    }

    @Test("a crashed node is declared dead by every survivor within the detection bound", arguments: [3, 10, 50], 0..<5)
    func crashIsDetected(count: Int, seed: Int) {
        var sim = Self.converged(count, seed: seed)
        let victim = (seed * 7 + 1) % count
        let victimID = sim.nodeID(victim)
        sim.crash(victim)
        let bound = Self.configuration.detectionBound(clusterSize: count)
        let took = sim.advance(
            until: { sim in sim.upNodes.allSatisfy { sim.status(of: victim, seenBy: $0) == .dead } },
            timeout: bound
        )
        #expect(took != nil, "seed \(seed): not dead everywhere within \(bound)")
        #expect(sim.deaths.allSatisfy { $0.member.id == victimID }, "seed \(seed): \(sim.deaths)")
    }

    @Test("20% loss on one link for two minutes kills nobody", arguments: 0..<5)
    func lossyLinkKillsNobody(seed: Int) {
        var sim = Self.converged(5, seed: seed)
        sim.setLoss(between: 1, and: 2, probability: 0.2)
        sim.advance(by: .seconds(120))
        #expect(sim.packetsDropped > 0)
        #expect(sim.deaths.isEmpty, "seed \(seed): \(sim.deaths)")
        #expect(sim.allRunningSeeEachOtherAlive())
    }

    @Test("an isolated node is declared dead, then readmitted after the partition heals", arguments: [3, 10, 50], 0..<5)
    func partitionHeals(count: Int, seed: Int) {
        var sim = Self.converged(count, seed: seed)
        let isolated = (seed + 1) % count
        let isolatedID = sim.nodeID(isolated)
        let others = sim.upNodes.filter { $0 != isolated }
        sim.isolate(isolated)
        let bound = Self.configuration.detectionBound(clusterSize: count)
        let detected = sim.advance(
            until: { sim in others.allSatisfy { sim.status(of: isolated, seenBy: $0) == .dead } },
            timeout: bound
        )
        #expect(detected != nil, "seed \(seed): isolated node not dead everywhere within \(bound)")
        // The majority never turns on itself.
        #expect(sim.deaths.allSatisfy { $0.member.id == isolatedID || $0.observer == isolated }, "seed \(seed): \(sim.deaths)")

        sim.heal()
        let changesBeforeHeal = sim.changes.count
        let readmitted = sim.advance(until: { $0.allRunningSeeEachOtherAlive() }, timeout: Self.readmissionBound)
        #expect(readmitted != nil, "seed \(seed): not readmitted within \(Self.readmissionBound)")
        #expect(sim.instance(isolated).myself.incarnation > 0, "seed \(seed): the isolated node never refuted")
        // After the heal the others declare nobody dead (no flapping) ...
        sim.advance(by: .seconds(10))
        // ... except by the isolated node itself, before it hears of the heal.
        let lateDeaths = sim.changes[changesBeforeHeal...].filter { $0.member.status == .dead && $0.observer != isolated }
        #expect(lateDeaths.isEmpty, "seed \(seed): \(lateDeaths)")
        #expect(sim.allRunningSeeEachOtherAlive())
    }

    @Test("a node that leaves is left everywhere within a few probe intervals, never dead", arguments: [3, 10], 0..<5)
    func gracefulLeave(count: Int, seed: Int) {
        var sim = Self.converged(count, seed: seed)
        let leaver = (seed * 3 + 1) % count
        sim.leave(leaver)
        let took = sim.advance(
            until: { sim in sim.upNodes.allSatisfy { sim.status(of: leaver, seenBy: $0) == .left } },
            timeout: Self.configuration.probeInterval * 3
        )
        #expect(took != nil, "seed \(seed)")
        sim.advance(by: Self.configuration.detectionBound(clusterSize: count))
        #expect(sim.deaths.isEmpty, "seed \(seed): \(sim.deaths)")
        #expect(sim.upNodes.allSatisfy { sim.status(of: leaver, seenBy: $0) == .left })
        #expect(sim.allRunningSeeEachOtherAlive())
    }

    @Test("a restarted node is seen alive with its new uid; the old uid is not live", arguments: [3, 10], 0..<5)
    func restartReplacesUID(count: Int, seed: Int) {
        var sim = Self.converged(count, seed: seed)
        let restarted = seed % 2 == 0 ? 0 : (seed + 1) % count  // the seed node too
        let oldID = sim.nodeID(restarted)
        sim.restart(restarted)
        let newID = sim.nodeID(restarted)
        #expect(oldID.uid != newID.uid)
        let took = sim.advance(
            until: { sim in
                sim.allRunningSeeEachOtherAlive()
                    && sim.upNodes.allSatisfy { sim.instance($0).member(oldID)?.status.isLive != true }
            },
            timeout: Self.restartBound(count)
        )
        #expect(took != nil, "seed \(seed)")
        for observer in sim.upNodes where observer != restarted {
            #expect(sim.instance(observer).member(named: oldID.name)?.id == newID, "seed \(seed) node\(observer)")
        }
        #expect(sim.deaths.allSatisfy { $0.member.id == oldID }, "seed \(seed): \(sim.deaths)")
        // Replaced at first contact with the new process, not found out by failed probes.
        let suspicions = sim.changes.filter { $0.member.id == oldID && $0.member.status == .suspect }
        #expect(suspicions.isEmpty, "seed \(seed): \(suspicions)")
    }

    @Test("a false suspicion is refuted with a higher incarnation", arguments: 0..<5)
    func falseSuspicionIsRefuted(seed: Int) {
        var sim = Self.converged(5, seed: seed)
        let victim = seed % 5
        let victimID = sim.nodeID(victim)
        let before = sim.changes.count
        sim.setLoss(to: victim, probability: 1)
        let suspected = sim.advance(
            until: { sim in sim.changes[before...].contains { $0.member.id == victimID && $0.member.status == .suspect } },
            timeout: Self.configuration.probeInterval * 12
        )
        #expect(suspected != nil, "seed \(seed): never suspected")
        sim.setLoss(to: victim, probability: 0)
        sim.advance(by: Self.configuration.detectionBound(clusterSize: 5))
        #expect(sim.instance(victim).myself.incarnation > 0, "seed \(seed)")
        #expect(sim.deaths.isEmpty, "seed \(seed): \(sim.deaths)")
        #expect(sim.allRunningSeeEachOtherAlive())
        for observer in sim.upNodes where observer != victim {
            #expect(sim.instance(observer).member(victimID)?.incarnation == sim.instance(victim).myself.incarnation)
        }
    }
}

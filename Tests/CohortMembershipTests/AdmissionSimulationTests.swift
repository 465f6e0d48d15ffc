import CohortCore
import CohortMembership
import CohortTestKit
import Testing

/// Membership with ``Membership/Configuration/requiresAdmission`` on the simulated network:
/// every node's certificate is checked (``MembershipSimulation/verification``) before it
/// takes part. Each scenario runs over several seeds.
@Suite("Membership simulation with admission")
struct AdmissionSimulationTests {
    static let configuration: Membership.Configuration = {
        var configuration = Membership.Configuration()
        configuration.requiresAdmission = true
        return configuration
    }()

    /// Convergence from seeds as without admission, plus a few round trips per node for
    /// the verifications (each side checks the other before either answers).
    static func convergenceBound(_ count: Int) -> Duration {
        MembershipSimulationTests.convergenceBound(count) + configuration.probeInterval * 5
    }

    /// A started simulation of `count` nodes in which `outsider` (if any) holds the key but
    /// a certificate from another CA: every check of it fails. The outsider itself admits
    /// everyone, so it builds a view of the cluster and gossips about it.
    static func simulation(_ count: Int, seed: Int, outsider: Int? = nil) -> MembershipSimulation {
        var sim = MembershipSimulation(nodes: count, seed: UInt64(seed), configuration: configuration)
        sim.verification = { verifier, target, _ in target != outsider || verifier == outsider }
        sim.startAll()
        return sim
    }

    static func seeAllAlive(_ sim: MembershipSimulation, _ nodes: [Int]) -> Bool {
        nodes.allSatisfy { observer in
            nodes.allSatisfy { $0 == observer || sim.status(of: $0, seenBy: observer) == .alive }
        }
    }

    @Test("verified nodes converge from seeds and detect a crash as without admission", arguments: [3, 10], 0..<5)
    func verifiedNodesConvergeAndDetectACrash(count: Int, seed: Int) {
        var sim = Self.simulation(count, seed: seed)
        let converged = sim.advance(until: { $0.allRunningSeeEachOtherAlive() }, timeout: Self.convergenceBound(count))
        #expect(converged != nil, "seed \(seed): \(count) nodes did not converge")
        #expect(sim.verifications.allSatisfy { $0.admitted }, "seed \(seed)")

        let victim = (seed * 7 + 1) % count
        sim.crash(victim)
        let bound = Self.configuration.detectionBound(clusterSize: count)
        let detected = sim.advance(
            until: { sim in sim.upNodes.allSatisfy { sim.status(of: victim, seenBy: $0) == .dead } },
            timeout: bound
        )
        #expect(detected != nil, "seed \(seed): not dead everywhere within \(bound)")
        #expect(sim.deaths.allSatisfy { $0.member.id == sim.nodeID(victim) }, "seed \(seed): \(sim.deaths)")
    }

    @Test("a node whose certificate never verifies is never in an honest view, and its gossip is ignored", arguments: [3, 6], 0..<5)
    func anUnverifiableNodeNeverBecomesAMember(count: Int, seed: Int) {
        let outsider = count - 1  // it has the others as seeds too
        var sim = Self.simulation(count, seed: seed, outsider: outsider)
        let honest = Array(0..<outsider)
        let outsiderID = sim.nodeID(outsider)
        let converged = sim.advance(until: { Self.seeAllAlive($0, honest) }, timeout: Self.convergenceBound(count))
        #expect(converged != nil, "seed \(seed): the honest nodes did not converge")

        // The outsider claims every honest node is dead, at a high incarnation, directly
        // to each of them, every probe interval for a while.
        for _ in 0..<20 {
            for target in honest {
                let lies = honest.map { Membership.Member(id: sim.nodeID($0), incarnation: 1_000, status: .dead) }
                let packet = Membership.Packet(from: sim.instance(outsider).myself, message: .ping(sequence: 1), gossip: lies)
                sim.inject(packet, from: outsider, to: target)
            }
            sim.advance(by: Self.configuration.probeInterval)
        }
        sim.advance(by: Self.configuration.detectionBound(clusterSize: count))

        let honestChanges = sim.changes.filter { honest.contains($0.observer) }
        #expect(!honestChanges.contains { $0.member.id == outsiderID }, "seed \(seed): \(honestChanges)")
        #expect(honestChanges.allSatisfy { $0.member.status == .alive }, "seed \(seed): \(honestChanges)")
        #expect(Self.seeAllAlive(sim, honest), "seed \(seed)")
        for observer in honest {
            #expect(sim.instance(observer).member(named: outsiderID.name) == nil, "seed \(seed) node\(observer)")
            #expect(sim.instance(observer).myself.incarnation == 0, "seed \(seed) node\(observer) had to refute")
            let checks = sim.verifications(of: outsiderID, by: observer)
            #expect(!checks.isEmpty && !checks.contains { $0.admitted }, "seed \(seed) node\(observer)")
            // Rate-limited with backoff: far fewer checks than packets received.
            #expect(checks.count <= 12, "seed \(seed) node\(observer): \(checks.count) checks")
        }
    }

    @Test("a node whose first checks fail is admitted after backoff", arguments: 0..<5)
    func aNodeIsAdmittedAfterFailedChecks(seed: Int) {
        let late = 2
        var sim = MembershipSimulation(nodes: 4, seed: UInt64(seed), configuration: Self.configuration)
        sim.verification = { _, target, attempt in target != late || attempt >= 2 }
        sim.startAll()
        let took = sim.advance(until: { $0.allRunningSeeEachOtherAlive() }, timeout: .seconds(10))
        #expect(took != nil, "seed \(seed): never admitted")
        let lateID = sim.nodeID(late)
        for observer in sim.upNodes where observer != late {
            let checks = sim.verifications(of: lateID, by: observer)
            #expect(checks.map(\.admitted) == [false, false, true], "seed \(seed) node\(observer): \(checks)")
            if checks.count == 3 {
                // The retry waits grow: one probe interval ×2, then ×4.
                #expect(checks[1].time - checks[0].time >= Self.configuration.probeInterval * 2, "seed \(seed)")
                #expect(checks[2].time - checks[1].time >= Self.configuration.probeInterval * 4, "seed \(seed)")
            }
        }
        #expect(sim.deaths.isEmpty, "seed \(seed): \(sim.deaths)")
    }
}

import CohortCore
import CohortMembership
import CohortTestKit
import Testing

@Test func debugPartition() {
    let count = 50, seed = 16
    var sim = MembershipSimulation(nodes: count, seed: UInt64(seed))
    sim.startAll()
    _ = sim.advance(until: { $0.allRunningSeeEachOtherAlive() }, timeout: .seconds(20))
    let isolated = (seed + 1) % count
    let others = sim.upNodes.filter { $0 != isolated }
    sim.isolate(isolated)
    let d = sim.advance(until: { sim in others.allSatisfy { sim.status(of: isolated, seenBy: $0) == .dead } }, timeout: .seconds(30))
    print("detected", d as Any, sim.now)
    let pview = sim.instance(isolated).members.map { "\($0.id.name):\($0.status)" }
    print("p view", pview)
    sim.heal()
    let before = sim.changes.count
    sim.recordsPackets = true
    for _ in 0..<10 {
        sim.advance(by: .milliseconds(500))
        var notAlive: [String] = []
        for o in sim.upNodes { for t in sim.upNodes where t != o && sim.status(of: t, seenBy: o) != .alive { notAlive.append("\(o)->\(t):\(String(describing: sim.status(of: t, seenBy: o)))") } }
        print(sim.now, notAlive.count, notAlive.prefix(12))
    }
    for c in sim.changes[before...] { print(c) }
}

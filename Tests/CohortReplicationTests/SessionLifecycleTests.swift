import CohortCore
import CohortReplication
import CohortTestKit
import Testing

/// Expiry (idle and absolute lifetime), id rotation, invalidation and session events,
/// specified on engines and on a simulated cluster.
@Suite struct SessionLifecycleTests {
    let t0 = Instant(seconds: 100)
    var generator = SplitMix64(seed: 11)

    func engine(_ name: String, peers: [String] = [], placement: Placement = .everyNode) -> ReplicationEngine {
        var configuration = ReplicationEngine.Configuration()
        configuration.placement = placement
        var engine = ReplicationEngine(nodeName: name, configuration: configuration)
        for peer in peers { _ = engine.onPeerUp(peer, now: t0) }
        engine.markDiscovered()
        _ = engine.onTick(now: t0 - .seconds(1))
        return engine
    }

    func deltas(_ directives: [ReplicationDirective]) -> [SessionDelta] {
        directives.compactMap { if case .send(.delta(let delta), _) = $0 { delta } else { nil } }
    }

    func events(_ directives: [ReplicationDirective]) -> [SessionEvent] {
        directives.compactMap { if case .event(let event) = $0 { event } else { nil } }
    }

    @Test mutating func theAbsoluteLifetimeEndsABusySessionOnEveryNode() {
        let id = SessionID.generate(route: "n1", using: &generator)
        var n1 = engine("n1", peers: ["n2"])
        var n2 = engine("n2", peers: ["n1"])
        let (_, created) = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: .zero, changes: [.set(name: "a", value: [1])], maxIdle: .seconds(60), maxLifetime: .seconds(100)),
            durability: .async, now: t0)
        _ = n2.onPeerMessage(.delta(deltas(created)[0]), from: "n1", now: t0)
        // Used every 10 s: the idle timeout never passes, the lifetime does.
        var lastVersion = SessionVersion(counter: 1, origin: "n1")
        for step in 1...9 {
            let now = t0 + .seconds(Int64(step * 10))
            let (commit, directives) = n1.onLocalCommit(
                LocalChange(id: id, loadedVersion: lastVersion, changes: [.set(name: "a", value: [UInt8(step)])], maxIdle: .seconds(60)),
                durability: .async, now: now)
            lastVersion = commit.session?.version ?? lastVersion
            for delta in deltas(directives) { _ = n2.onPeerMessage(.delta(delta), from: "n1", now: now) }
            _ = n1.onTick(now: now)
            _ = n2.onTick(now: now)
        }
        #expect(n1.usableSession(forKey: id.key, now: t0 + .seconds(95)) != nil)
        #expect(n1.usableSession(forKey: id.key, now: t0 + .seconds(101)) == nil)
        let ended = n1.onTick(now: t0 + .seconds(102))
        #expect(n1.session(forKey: id.key) == nil)
        #expect(ended.contains(.send(.removed(key: id.key, version: lastVersion, reason: .expired), to: "n2")))
        // The copy keeps the lifetime it was created with, measured on its own clock, and
        // ends by itself a grace period later even if the primary's message is lost.
        _ = n2.onTick(now: t0 + .seconds(150))
        #expect(n2.session(forKey: id.key) != nil)
        _ = n2.onTick(now: t0 + .seconds(162))
        #expect(n2.session(forKey: id.key) == nil)
    }

    @Test mutating func rotationMovesTheSessionToANewIdAndTheOldOneStopsWorking() {
        let old = SessionID.generate(route: "n1", using: &generator)
        let new = SessionID.generate(route: "n1", using: &generator)
        var n1 = engine("n1", peers: ["n2"])
        var n2 = engine("n2", peers: ["n1"])
        n1.eventsEnabled = true
        n2.eventsEnabled = true
        let (first, created) = n1.onLocalCommit(
            LocalChange(id: old, loadedVersion: .zero, changes: [.set(name: "cart", value: [7])], maxIdle: .seconds(60)),
            durability: .async, now: t0)
        _ = n2.onPeerMessage(.delta(deltas(created)[0]), from: "n1", now: t0)
        let (rotated, directives) = n1.onLocalCommit(
            LocalChange(id: new, loadedVersion: first.session?.version ?? .zero, changes: [.set(name: "user", value: [1])],
                        maxIdle: .seconds(60), renamedFrom: old.key),
            durability: .async, now: t0)
        #expect(rotated.session?.attributes == ["cart": [7], "user": [1]])
        #expect(n1.session(forKey: old.key) == nil)
        #expect(events(directives).map(\.kind).contains(.idChanged(previous: old)))
        let delta = deltas(directives)[0]
        #expect(delta.renamedFrom == old.key)
        let applied = n2.onPeerMessage(.delta(delta), from: "n1", now: t0)
        #expect(n2.session(forKey: new.key)?.attributes == ["cart": [7], "user": [1]])
        #expect(n2.session(forKey: old.key) == nil)
        #expect(events(applied).contains(SessionEvent(.idChanged(previous: old), id: new, origin: .peer("n1"))))
        // The old id is blocked: no fetch on miss, and a late copy cannot bring it back.
        #expect(n2.onLocalMiss(id: old, now: t0).0 == .notFound)
        _ = n2.onPeerMessage(.delta(deltas(created)[0]), from: "n1", now: t0)
        #expect(n2.session(forKey: old.key) == nil)
    }

    @Test mutating func eventsTellCreationChangesAndEndsWithTheirOrigin() {
        let id = SessionID.generate(route: "n1", using: &generator)
        var n1 = engine("n1", peers: ["n2"])
        var n2 = engine("n2", peers: ["n1"])
        n1.eventsEnabled = true
        n2.eventsEnabled = true
        let (commit, created) = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: .zero, changes: [.set(name: "a", value: [1])], maxIdle: .seconds(10)),
            durability: .async, now: t0)
        #expect(events(created) == [
            SessionEvent(.created, id: id, origin: .local), SessionEvent(.attributesChanged(["a"]), id: id, origin: .local),
        ])
        let applied = n2.onPeerMessage(.delta(deltas(created)[0]), from: "n1", now: t0)
        #expect(events(applied) == [
            SessionEvent(.created, id: id, origin: .peer("n1")), SessionEvent(.attributesChanged(["a"]), id: id, origin: .peer("n1")),
        ])
        let (_, invalidated) = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: commit.session?.version ?? .zero, changes: [], maxIdle: .seconds(10), invalidate: true),
            durability: .async, now: t0)
        #expect(events(invalidated) == [SessionEvent(.invalidated, id: id, origin: .local)])
        let removed = invalidated.compactMap { if case .send(let message, "n2") = $0 { message } else { nil } }
        #expect(events(removed.flatMap { n2.onPeerMessage($0, from: "n1", now: t0) }) == [SessionEvent(.invalidated, id: id, origin: .peer("n1"))])
        // No listener, no events.
        n1.eventsEnabled = false
        let other = SessionID.generate(route: "n1", using: &generator)
        let (_, quiet) = n1.onLocalCommit(
            LocalChange(id: other, loadedVersion: .zero, changes: [.set(name: "a", value: [1])], maxIdle: .seconds(10)), durability: .async, now: t0)
        #expect(events(quiet).isEmpty)
    }

    @Test mutating func idleSessionsExpireEverywhereAndATouchedOneNeverDoesAcrossAFailover() {
        var configuration = ReplicationEngine.Configuration()
        configuration.placement = .owners(2)
        var simulation = ReplicationSimulation(nodes: ["a", "b", "c"], configuration: configuration)
        let idle = SessionID.generate(route: "a", using: &generator)
        let busy = SessionID.generate(route: "a", using: &generator)
        simulation.write(idle, on: "a", [.set(name: "v", value: [1])], maxIdle: .seconds(30))
        simulation.write(busy, on: "a", [.set(name: "v", value: [1])], maxIdle: .seconds(30))
        simulation.settle()
        for second in 1...200 {
            if second == 40 { simulation.crash("a") }
            // A read every 5 s, on the session's primary as the live nodes see it.
            if second % 5 == 0, let primary = simulation.primary(of: busy, via: simulation.liveNodes[0]) {
                simulation.access(busy, on: primary)
            }
            simulation.tick(.seconds(1))
        }
        let copies = simulation.copies()
        #expect(copies[idle.key] == nil, "the idle session expired on every node")
        #expect(copies[busy.key]?.holders.count == 2, "the busy session lives on two nodes")
    }
}

/// Taking a session over verifies the held copy against the other owners.
@Suite struct TakeOverTests {
    @Test func aTakeOverWaitsForEveryOwnerAndKeepsTheNewestCopy() {
        let t0 = Instant(seconds: 50)
        let id = SessionID(key: "EEEEEEEEEEEEEEEEEEEEEEEEEEE", route: "n1")
        var n2 = ReplicationEngine(nodeName: "n2")
        for peer in ["n1", "n3"] { _ = n2.onPeerUp(peer, now: t0) }
        let stale = SessionSnapshot(id: id, version: SessionVersion(counter: 10, origin: "n1"), attributes: ["count": [10]], maxIdle: .seconds(60), idleFor: .zero)
        let newest = SessionSnapshot(id: id, version: SessionVersion(counter: 11, origin: "n1"), base: stale.version, attributes: ["count": [11]], maxIdle: .seconds(60), idleFor: .zero)
        _ = n2.onPeerMessage(.session(stale), from: "n3", now: t0)
        // n1 (the route) died: n2 takes over and asks the others, although it holds a copy.
        _ = n2.onPeerUnreachable("n1", now: t0)
        let (start, asked) = n2.onLocalVerify(id: id, now: t0)
        #expect(start == .pending)
        #expect(asked == [.send(.fetch(key: id.key), to: "n3")])
        let done = n2.onPeerMessage(.session(newest), from: "n3", now: t0)
        #expect(done.contains(.fetchCompleted(key: id.key, newest.session(now: t0))))
        // With nobody to ask, the held copy is the answer.
        var alone = ReplicationEngine(nodeName: "n4")
        #expect(alone.onLocalVerify(id: id, now: t0).0 == .notFound)
    }
}

/// Readiness: a starting node waits for every peer's offers, with a way out.
@Suite struct ReadinessTests {
    @Test func aStartingNodeWaitsForEveryPeersOfferEndUnlessForced() {
        let t0 = Instant(seconds: 5)
        var node = ReplicationEngine(nodeName: "n3")
        _ = node.onPeerUp("n1", now: t0)
        _ = node.onPeerUp("n2", now: t0)
        node.markDiscovered()
        _ = node.onTick(now: t0)
        #expect(!node.isReady)
        _ = node.onPeerMessage(.offerEnd, from: "n1", now: t0)
        _ = node.onTick(now: t0)
        #expect(!node.isReady, "n2 has not finished offering")
        // n2's offers never come (its connection is broken): the shell's timeout forces it.
        let missing = node.forceReady()
        #expect(missing.awaitingPeers == ["n2"])
        #expect(node.isReady)
    }
}

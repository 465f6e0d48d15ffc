import CohortCore
import CohortReplication
import CohortTestKit
import Testing

/// Unit specifications of the replication engine: each test feeds inputs and checks the
/// directives and the store.
@Suite struct ReplicationEngineTests {
    let id = SessionID(key: "AAAAAAAAAAAAAAAAAAAAAAAAAAA", route: "n1")
    let t0 = Instant(seconds: 100)

    func engine(_ name: String, peers: [String] = []) -> ReplicationEngine {
        var engine = ReplicationEngine(nodeName: name)
        for peer in peers { _ = engine.onPeerUp(peer, now: t0) }
        // The first tick runs the (empty) placement scan that joining starts.
        engine.markDiscovered()
        _ = engine.onTick(now: t0 - .seconds(1))
        return engine
    }

    func set(_ name: String, _ value: UInt8) -> AttributeChange { .set(name: name, value: [value]) }

    func sends(_ directives: [ReplicationDirective]) -> [(ReplicationMessage, String)] {
        directives.compactMap { if case .send(let message, let peer) = $0 { (message, peer) } else { nil } }
    }

    func deltas(_ directives: [ReplicationDirective]) -> [SessionDelta] {
        sends(directives).compactMap { if case .delta(let delta) = $0.0 { delta } else { nil } }
    }

    @Test func localCommitSendsOneDeltaPerPeerWithOnlyTheChanges() {
        var n1 = engine("n1", peers: ["n2", "n3"])
        let (commit, directives) = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: .zero, changes: [set("a", 1)], maxIdle: .seconds(60)), durability: .async, now: t0)
        #expect(commit.awaiting == nil)
        #expect(commit.session?.version == SessionVersion(counter: 1, origin: "n1"))
        let sent = deltas(directives)
        #expect(sent.count == 2)
        #expect(Set(sends(directives).map(\.1)) == ["n2", "n3"])
        #expect(sent.allSatisfy { $0.base == .zero && $0.changes == [set("a", 1)] })
    }

    @Test func acknowledgedCommitCompletesOnlyWhenEveryPeerAcked() {
        var n1 = engine("n1", peers: ["n2", "n3"])
        let (commit, _) = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: .zero, changes: [set("a", 1)], maxIdle: .seconds(60)), durability: .acknowledged, now: t0)
        let waiting = try! #require(commit.awaiting)
        let version = SessionVersion(counter: 1, origin: "n1")
        #expect(n1.onPeerMessage(.ack(key: id.key, version: version), from: "n2", now: t0).isEmpty)
        let done = n1.onPeerMessage(.ack(key: id.key, version: version), from: "n3", now: t0)
        #expect(done == [.commitCompleted(waiting, .acknowledged)])
    }

    @Test func acknowledgedCommitDegradesAfterTheTimeoutInsteadOfHanging() {
        var n1 = engine("n1", peers: ["n2"])
        let (commit, _) = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: .zero, changes: [set("a", 1)], maxIdle: .seconds(60)), durability: .acknowledged, now: t0)
        let waiting = try! #require(commit.awaiting)
        #expect(!n1.onTick(now: t0 + .seconds(1)).contains(.commitCompleted(waiting, .degraded(missing: ["n2"]))))
        #expect(n1.onTick(now: t0 + .seconds(3)).contains(.commitCompleted(waiting, .degraded(missing: ["n2"]))))
        #expect(n1.statistics.ackTimeouts == 1)
    }

    @Test func aPeerThatGoesDownOrBecomesUnreachableReleasesTheWrite() {
        var n1 = engine("n1", peers: ["n2", "n3"])
        let (commit, _) = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: .zero, changes: [set("a", 1)], maxIdle: .seconds(60)), durability: .acknowledged, now: t0)
        let waiting = try! #require(commit.awaiting)
        _ = n1.onPeerMessage(.ack(key: id.key, version: SessionVersion(counter: 1, origin: "n1")), from: "n2", now: t0)
        // n3 may never have received it: the write completes, but not as acknowledged.
        #expect(n1.onPeerUnreachable("n3", now: t0) == [.commitCompleted(waiting, .degraded(missing: ["n3"]))])
        // While n3 is unreachable, new writes do not wait for it.
        let (second, _) = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: SessionVersion(counter: 1, origin: "n1"), changes: [set("a", 2)], maxIdle: .seconds(60)),
            durability: .acknowledged, now: t0)
        let secondID = try! #require(second.awaiting)
        #expect(n1.onPeerDown("n2", now: t0) == [.commitCompleted(secondID, .acknowledged)])
    }

    @Test func deltasApplyInOrderAndDuplicatesAreHarmless() {
        var n1 = engine("n1", peers: ["n2"])
        var n2 = engine("n2", peers: ["n1"])
        var version = SessionVersion.zero
        var all: [SessionDelta] = []
        for value in UInt8(1)...5 {
            let (commit, directives) = n1.onLocalCommit(
                LocalChange(id: id, loadedVersion: version, changes: [set("a", value)], maxIdle: .seconds(60)), durability: .async, now: t0)
            version = commit.session?.version ?? version
            all += deltas(directives)
        }
        for delta in all {
            _ = n2.onPeerMessage(.delta(delta), from: "n1", now: t0)
        }
        // Every delta again: the held copy's version and its base are acknowledged; older
        // ones cannot be placed in its history (see `onDelta`) and get the copy instead.
        var replies: [String] = []
        for delta in all {
            for directive in n2.onPeerMessage(.delta(delta), from: "n1", now: t0) {
                guard case .send(let message, to: "n1") = directive else { continue }
                switch message {
                case .ack(_, let acked): replies.append("ack \(acked.counter)")
                case .session(let snapshot): replies.append("copy \(snapshot.version.counter)")
                default: replies.append("other")
                }
            }
        }
        #expect(replies == ["copy 5", "copy 5", "copy 5", "ack 4", "ack 5"])
        #expect(n2.session(forKey: id.key)?.attributes == ["a": [5]])
        #expect(n2.session(forKey: id.key)?.version == version)
        #expect(n2.statistics.deltasApplied == 5)
        #expect(n2.statistics.duplicatesIgnored == 5)
    }

    @Test func aGapAsksTheSenderForTheWholeSessionAndAcksOnceRepaired() {
        var n1 = engine("n1", peers: ["n2"])
        var n2 = engine("n2", peers: ["n1"])
        let (c1, d1) = n1.onLocalCommit(LocalChange(id: id, loadedVersion: .zero, changes: [set("a", 1)], maxIdle: .seconds(60)), durability: .async, now: t0)
        let (c2, d2) = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: c1.session!.version, changes: [set("b", 2)], maxIdle: .seconds(60)), durability: .async, now: t0)
        _ = d1  // lost on the way
        let reply = n2.onPeerMessage(.delta(deltas(d2)[0]), from: "n1", now: t0)
        #expect(sends(reply).map(\.0) == [.fetch(key: id.key)])
        #expect(n2.session(forKey: id.key) == nil)
        #expect(n2.statistics.gapsDetected == 1)
        // n1 answers the fetch with the whole session; n2 stores it and acks the version.
        let answer = n1.onPeerMessage(.fetch(key: id.key), from: "n2", now: t0)
        guard case .session(let snapshot) = try! #require(sends(answer).first).0 else {
            Issue.record("expected a whole session")
            return
        }
        let repaired = n2.onPeerMessage(.session(snapshot), from: "n1", now: t0)
        #expect(sends(repaired).map(\.0) == [.ack(key: id.key, version: c2.session!.version)])
        #expect(n2.session(forKey: id.key)?.attributes == ["a": [1], "b": [2]])
    }

    @Test(arguments: ["n1", "n3"])
    func anOlderCopyDoesNotCancelTheAckAGapRepairOwes(olderFrom: String) {
        // n2 restarted: n3's delta v2 arrives before a hand-over of v1 (from n1, or an
        // earlier push of n3's), then n3's answer to the fetch.
        var n2 = engine("n2", peers: ["n1", "n3"])
        let v1 = SessionVersion(counter: 1, origin: "n3")
        let v2 = SessionVersion(counter: 2, origin: "n3")
        let delta = SessionDelta(id: id, base: v1, version: v2, changes: [set("a", 2)], maxIdle: .seconds(60))
        #expect(sends(n2.onPeerMessage(.delta(delta), from: "n3", now: t0)).map(\.0) == [.fetch(key: id.key)])
        let older = SessionSnapshot(id: id, version: v1, attributes: ["a": [1]], maxIdle: .seconds(60), idleFor: .zero)
        #expect(sends(n2.onPeerMessage(.session(older), from: olderFrom, now: t0)).isEmpty)  // v1 does not cover v2
        let answer = SessionSnapshot(id: id, version: v2, attributes: ["a": [2]], maxIdle: .seconds(60), idleFor: .zero)
        let acks = sends(n2.onPeerMessage(.session(answer), from: "n3", now: t0))
        #expect(acks.map(\.0) == [.ack(key: id.key, version: v2)])
        #expect(acks.map(\.1) == ["n3"])
    }

    @Test func reorderedDeltasEndInTheSameStateAsInOrder() {
        var n1 = engine("n1", peers: ["n2"])
        var version = SessionVersion.zero
        var all: [SessionDelta] = []
        for value in UInt8(1)...6 {
            let (commit, directives) = n1.onLocalCommit(
                LocalChange(id: id, loadedVersion: version, changes: [set("k\(value % 3)", value)], maxIdle: .seconds(60)), durability: .async, now: t0)
            version = commit.session!.version
            all += deltas(directives)
        }
        var generator = SplitMix64(seed: 7)
        for _ in 0..<20 {
            var n2 = engine("n2", peers: ["n1"])
            var inbox: [(ReplicationMessage, String)] = all.shuffled(using: &generator).map { (.delta($0), "n1") }
            var source = n1
            // Deliver everything, answering n2's fetches from n1, until quiet.
            while !inbox.isEmpty {
                let (message, from) = inbox.removeFirst()
                for (reply, to) in sends(n2.onPeerMessage(message, from: from, now: t0)) where to == "n1" {
                    inbox += sends(source.onPeerMessage(reply, from: "n2", now: t0)).filter { $0.1 == "n2" }.map { ($0.0, "n1") }
                }
            }
            #expect(n2.session(forKey: id.key)?.attributes == n1.session(forKey: id.key)?.attributes)
            #expect(n2.session(forKey: id.key)?.version == version)
        }
    }

    @Test func concurrentHistoriesConvergeByVersionThenOrigin() {
        // n1 and n2 both wrote version 2 of the same session during a partition.
        var n1 = engine("n1", peers: ["n2"])
        var n2 = engine("n2", peers: ["n1"])
        let (c1, d1) = n1.onLocalCommit(LocalChange(id: id, loadedVersion: .zero, changes: [set("a", 1)], maxIdle: .seconds(60)), durability: .async, now: t0)
        _ = n2.onPeerMessage(.delta(deltas(d1)[0]), from: "n1", now: t0)
        let (_, fromN1) = n1.onLocalCommit(LocalChange(id: id, loadedVersion: c1.session!.version, changes: [set("a", 11)], maxIdle: .seconds(60)), durability: .async, now: t0)
        let (_, fromN2) = n2.onLocalCommit(LocalChange(id: id.rebound(to: "n2"), loadedVersion: c1.session!.version, changes: [set("a", 22)], maxIdle: .seconds(60)), durability: .async, now: t0)
        // Healed: each receives the other's delta; the loser fetches the winner's copy.
        for (message, to) in sends(n1.onPeerMessage(.delta(deltas(fromN2)[0]), from: "n2", now: t0)) where to == "n2" {
            for (reply, _) in sends(n2.onPeerMessage(message, from: "n1", now: t0)) {
                _ = n1.onPeerMessage(reply, from: "n2", now: t0)
            }
        }
        _ = n2.onPeerMessage(.delta(deltas(fromN1)[0]), from: "n1", now: t0)
        // (2, "n2") > (2, "n1"): n2's write wins on both nodes.
        #expect(n1.session(forKey: id.key)?.attributes == ["a": [22]])
        #expect(n2.session(forKey: id.key)?.attributes == ["a": [22]])
        #expect(n1.session(forKey: id.key)?.version == n2.session(forKey: id.key)?.version)
        #expect(n1.statistics.conflicts + n2.statistics.conflicts >= 1)
    }

    @Test func aJoiningNodePullsEverySessionOnceAndThenReportsReady() {
        var simulation = ReplicationSimulation(nodes: ["n1", "n2", "n3"], configuration: .init())
        var generator = SplitMix64(seed: 7)
        for index in 0..<300 {
            let node = ["n1", "n2", "n3"][index % 3]
            simulation.write(SessionID.generate(route: node, using: &generator), on: node, [set("a", UInt8(index % 200))])
        }
        simulation.deliver()
        simulation.join("n4")
        #expect(simulation.engines["n4"]?.isReady == false)
        simulation.settle()
        let n4 = simulation.engines["n4"]
        #expect(n4?.isReady == true)
        #expect(n4?.store.count == 300)
        // Offered by three nodes, pulled once.
        #expect(n4?.statistics.pulled == 300)
        #expect(simulation.copies().values.allSatisfy { $0.holders.count == 4 && $0.consistent })
        let roles = simulation.engines.values.map { $0.roleCounts() }
        #expect(roles.reduce(0) { $0 + $1.primary } == 300)
        #expect(roles.reduce(0) { $0 + $1.backup } == 900)
    }

    @Test func aRestartedNodeGetsItsSessionsBack() {
        var simulation = ReplicationSimulation(nodes: ["n1", "n2", "n3"], configuration: .init())
        var generator = SplitMix64(seed: 8)
        let ids = (0..<50).map { _ in SessionID.generate(route: "n2", using: &generator) }
        for id in ids { simulation.write(id, on: "n2", [set("a", 1)]) }
        simulation.deliver()
        simulation.crash("n2")
        simulation.settle()
        simulation.join("n2")
        simulation.settle()
        #expect(simulation.engines["n2"]?.store.count == 50)
        #expect(simulation.engines["n2"]?.isReady == true)
    }

    @Test func fetchOnMissAsksEveryReachablePeerAndReturnsTheFirstCopy() {
        var n3 = engine("n3", peers: ["n1", "n2"])
        let (start, directives) = n3.onLocalMiss(id: id, now: t0)
        #expect(start == .pending)
        #expect(Set(sends(directives).map(\.1)) == ["n1", "n2"])
        #expect(n3.onPeerMessage(.missing(key: id.key), from: "n1", now: t0).isEmpty)
        let snapshot = SessionSnapshot(id: id, version: SessionVersion(counter: 4, origin: "n1"), attributes: ["a": [4]], maxIdle: .seconds(60), idleFor: .seconds(5))
        let done = n3.onPeerMessage(.session(snapshot), from: "n2", now: t0)
        #expect(done == [.fetchCompleted(key: id.key, snapshot.session(now: t0))])
        // Nobody to ask: not found at once.
        var alone = engine("n4")
        #expect(alone.onLocalMiss(id: id, now: t0).0 == .notFound)
    }

    @Test func ownersExpireIdleSessionsAndTellPeersCopiesWaitLonger() {
        var n1 = engine("n1", peers: ["n2"])
        var n2 = engine("n2", peers: ["n1"])
        let (_, d) = n1.onLocalCommit(LocalChange(id: id, loadedVersion: .zero, changes: [set("a", 1)], maxIdle: .seconds(10)), durability: .async, now: t0)
        _ = n2.onPeerMessage(.delta(deltas(d)[0]), from: "n1", now: t0)
        #expect(n1.onTick(now: t0 + .seconds(9)).isEmpty)
        let expiry = n1.onTick(now: t0 + .seconds(11))
        #expect(n1.session(forKey: id.key) == nil)
        #expect(sends(expiry).map(\.0) == [.removed(key: id.key, version: SessionVersion(counter: 1, origin: "n1"), reason: .expired)])
        // The copy on n2 outlives the owner's deadline by itself...
        _ = n2.onTick(now: t0 + .seconds(11))
        #expect(n2.session(forKey: id.key) != nil)
        _ = n2.onTick(now: t0 + .seconds(21))
        #expect(n2.session(forKey: id.key) == nil)
        // ...and a late copy cannot revive an ended session.
        _ = n1.onPeerMessage(.delta(deltas(d)[0]), from: "n2", now: t0 + .seconds(12))
        #expect(n1.session(forKey: id.key) == nil)
    }

    @Test func touchesKeepCopiesAliveWhileTheOwnerServesReads() {
        var n1 = engine("n1", peers: ["n2"])
        var n2 = engine("n2", peers: ["n1"])
        let (_, d) = n1.onLocalCommit(LocalChange(id: id, loadedVersion: .zero, changes: [set("a", 1)], maxIdle: .seconds(10)), durability: .async, now: t0)
        _ = n2.onPeerMessage(.delta(deltas(d)[0]), from: "n1", now: t0)
        var now = t0
        for _ in 0..<10 {
            now = now + .seconds(5)
            n1.onLocalAccess(key: id.key, now: now)
            for (message, to) in sends(n1.onTick(now: now)) where to == "n2" {
                _ = n2.onPeerMessage(message, from: "n1", now: now)
            }
            _ = n2.onTick(now: now)
        }
        #expect(n1.session(forKey: id.key) != nil)
        #expect(n2.session(forKey: id.key) != nil)
    }

    /// ~292 years, the longest duration on the wire, from a peer before this node's first
    /// tick: the expiry sweep must not walk the seconds between the clock's start and now.
    @Test(.timeLimit(.minutes(1)))
    func extremeDurationsFromAPeerDoNotStallTheExpirySweep() {
        var n2 = ReplicationEngine(nodeName: "n2")
        _ = n2.onPeerUp("n1", now: t0)
        n2.markDiscovered()
        let far = Duration.milliseconds(Int64.max / 1_000_000)
        let old = SessionSnapshot(
            id: id, version: SessionVersion(counter: 1, origin: "n1"), attributes: [:], maxIdle: far, idleFor: far, age: far)
        _ = n2.onPeerMessage(.session(old), from: "n1", now: t0)
        let other = SessionID(key: "DDDDDDDDDDDDDDDDDDDDDDDDDDD", route: "n1")
        let delta = SessionDelta(
            id: other, base: .zero, version: SessionVersion(counter: 1, origin: "n1"), changes: [set("a", 1)], maxIdle: far,
            maxLifetime: far)
        _ = n2.onPeerMessage(.delta(delta), from: "n1", now: t0)
        _ = n2.onTick(now: t0 + .seconds(1))
        #expect(n2.session(forKey: other.key) != nil, "an idle timeout of centuries has not passed")
    }

    @Test func invalidationRemovesTheSessionEverywhere() {
        var n1 = engine("n1", peers: ["n2"])
        var n2 = engine("n2", peers: ["n1"])
        let (c, d) = n1.onLocalCommit(LocalChange(id: id, loadedVersion: .zero, changes: [set("a", 1)], maxIdle: .seconds(60)), durability: .async, now: t0)
        _ = n2.onPeerMessage(.delta(deltas(d)[0]), from: "n1", now: t0)
        let (gone, removal) = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: c.session!.version, changes: [], maxIdle: .seconds(60), invalidate: true), durability: .async, now: t0)
        #expect(gone.session == nil)
        for (message, _) in sends(removal) { _ = n2.onPeerMessage(message, from: "n1", now: t0) }
        #expect(n2.session(forKey: id.key) == nil)
        #expect(n2.onPeerMessage(.delta(deltas(d)[0]), from: "n1", now: t0).count == 1)  // just an ack
        #expect(n2.session(forKey: id.key) == nil)
    }
}

import CohortCore
import CohortReplication
import Testing

/// Specifications of how sessions end under acknowledged durability, and of what a peer
/// that lost its connection is owed: a logout is confirmed like any other write, a write
/// that raced a logout does not bring the session back, and a write a peer may never have
/// received is reported as such and repaired once the peer is reachable again.
@Suite struct EndedSessionTests {
    let id = SessionID(key: "BBBBBBBBBBBBBBBBBBBBBBBBBBB", route: "n1")
    let t0 = Instant(seconds: 100)

    func engine(_ name: String, peers: [String]) -> ReplicationEngine {
        var engine = ReplicationEngine(nodeName: name)
        for peer in peers { _ = engine.onPeerUp(peer, now: t0) }
        engine.markDiscovered()
        _ = engine.onTick(now: t0 - .seconds(1))
        return engine
    }

    func write(_ name: String, _ value: UInt8, loaded: SessionVersion) -> LocalChange {
        LocalChange(id: id, loadedVersion: loaded, changes: [.set(name: name, value: [value])], maxIdle: .seconds(60))
    }

    /// Delivers every message among `engines` (starting with `directives` from `origin`)
    /// until none is left; returns the completions seen.
    func deliver(_ directives: [ReplicationDirective], from origin: String, among engines: inout [String: ReplicationEngine],
                 dropping dropped: Set<String> = []) -> [ReplicationDirective] {
        var queue = directives.map { (origin, $0) }
        var completions: [ReplicationDirective] = []
        while !queue.isEmpty {
            let (from, directive) = queue.removeFirst()
            switch directive {
            case .send(let message, let to):
                guard !dropped.contains(to), !dropped.contains(from), var receiver = engines[to] else { continue }
                let out = receiver.onPeerMessage(message, from: from, now: t0)
                engines[to] = receiver
                queue += out.map { (to, $0) }
            case .commitCompleted:
                completions.append(directive)
            default:
                continue
            }
        }
        return completions
    }

    @Test func anAcknowledgedLogoutCompletesWhenTheOtherOwnersRemovedTheSession() throws {
        var engines = ["n1": engine("n1", peers: ["n2", "n3"]), "n2": engine("n2", peers: ["n1", "n3"]),
                       "n3": engine("n3", peers: ["n1", "n2"])]
        let (created, sent) = engines["n1"]!.onLocalCommit(write("a", 1, loaded: .zero), durability: .acknowledged, now: t0)
        #expect(deliver(sent, from: "n1", among: &engines).count == 1)
        let loaded = try #require(created.session?.version)

        var n1 = engines["n1"]!
        let (logout, removal) = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: loaded, changes: [], maxIdle: .seconds(60), invalidate: true),
            durability: .acknowledged, now: t0)
        engines["n1"] = n1
        let waiting = try #require(logout.awaiting)
        let completions = deliver(removal, from: "n1", among: &engines)
        #expect(completions == [.commitCompleted(waiting, .acknowledged)], "each owner acks the removal; no 2 s timeout")
        #expect(engines.values.allSatisfy { $0.session(forKey: id.key) == nil })
        #expect(engines["n1"]!.statistics.ackTimeouts == 0)
    }

    @Test(arguments: [false, true])
    func aWriteThatRacedALogoutOrARotationDoesNotBringTheSessionBack(rotated: Bool) throws {
        var n1 = engine("n1", peers: ["n2"])
        let (created, _) = n1.onLocalCommit(write("a", 1, loaded: .zero), durability: .async, now: t0)
        let loaded = try #require(created.session?.version)
        // Request B ends the session (a logout, or a login that rotates its id) while
        // request A, which loaded it at `loaded`, is still running.
        if rotated {
            let newID = SessionID(key: "CCCCCCCCCCCCCCCCCCCCCCCCCCC", route: "n1")
            _ = n1.onLocalCommit(
                LocalChange(id: newID, loadedVersion: loaded, changes: [], maxIdle: .seconds(60), renamedFrom: id.key),
                durability: .async, now: t0)
        } else {
            _ = n1.onLocalCommit(
                LocalChange(id: id, loadedVersion: loaded, changes: [], maxIdle: .seconds(60), invalidate: true),
                durability: .async, now: t0)
        }
        let (late, directives) = n1.onLocalCommit(write("b", 2, loaded: loaded), durability: .acknowledged, now: t0)
        #expect(late.session == nil)
        #expect(late.awaiting == nil)
        #expect(late.refusedBecause == (rotated ? .rotated : .invalidated))
        #expect(directives.isEmpty, "nothing of the refused write is replicated")
        #expect(n1.session(forKey: id.key) == nil)
        #expect(n1.statistics.writesOnEndedSessions == 1)
        // The old id stays ended for every later write based on it.
        let (again, stale) = n1.onLocalCommit(write("c", 3, loaded: loaded), durability: .async, now: t0)
        #expect(again.session == nil)
        #expect(stale.isEmpty)
    }

    @Test func aWriteInFlightOnABrokenConnectionIsReportedAndRepairedOnReconnect() throws {
        var engines = ["n1": engine("n1", peers: ["n2"]), "n2": engine("n2", peers: ["n1"])]
        let (first, sent) = engines["n1"]!.onLocalCommit(write("a", 1, loaded: .zero), durability: .acknowledged, now: t0)
        _ = deliver(sent, from: "n1", among: &engines)
        let v1 = try #require(first.session?.version)

        // The second write's delta is lost with the connection.
        var n1 = engines["n1"]!
        let (second, _) = n1.onLocalCommit(write("a", 2, loaded: v1), durability: .acknowledged, now: t0)
        let waiting = try #require(second.awaiting)
        #expect(n1.onPeerUnreachable("n2", now: t0) == [.commitCompleted(waiting, .degraded(missing: ["n2"]))],
                "not .acknowledged: n2 may never have received it")
        // A third write while n2 is unreachable does not wait for it.
        let (third, _) = n1.onLocalCommit(write("a", 3, loaded: try #require(second.session?.version)), durability: .acknowledged, now: t0)
        #expect(third.awaiting == nil)
        let newest = try #require(third.session?.version)
        #expect(engines["n2"]!.session(forKey: id.key)?.version == v1)

        // Reconnected: the next tick offers n2 what it owns, and n2 pulls the newest copy.
        n1.onPeerReachable("n2")
        let scan = n1.onTick(now: t0 + .milliseconds(100))
        engines["n1"] = n1
        _ = deliver(scan, from: "n1", among: &engines)
        #expect(engines["n2"]!.session(forKey: id.key)?.version == newest)
        #expect(engines["n2"]!.session(forKey: id.key)?.attributes == engines["n1"]!.session(forKey: id.key)?.attributes)
    }

    /// A copy that missed the logout (its `removed` was lost) lives on another node for up
    /// to `maxIdle × copyExpiryFactor`: the tombstone outlives it, so the copy's offer is
    /// answered with the end instead of being pulled back.
    @Test func theTombstoneOutlivesEveryCopyThatMissedTheEnd() throws {
        var n1 = engine("n1", peers: ["n2"])
        let hour = Duration.seconds(3600)
        let change = LocalChange(id: id, loadedVersion: .zero, changes: [.set(name: "a", value: [1])], maxIdle: hour)
        let (created, _) = n1.onLocalCommit(change, durability: .async, now: t0)
        let version = try #require(created.session?.version)
        _ = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: version, changes: [], maxIdle: hour, invalidate: true), durability: .async, now: t0)

        // Past the default retention (10 min), within the copy's life (2 h): still ended.
        let later = t0 + .seconds(3 * 3600 / 2)
        _ = n1.onTick(now: later)
        let answer = n1.onPeerMessage(.offer([SessionOffer(id: id, version: version)]), from: "n2", now: later)
        let removed = answer.contains { directive in
            guard case .send(.removed(let key, _, let reason), let peer) = directive else { return false }
            return key == id.key && reason == .invalidated && peer == "n2"
        }
        #expect(removed, "\(answer)")
        #expect(n1.session(forKey: id.key) == nil)
    }

    /// Two owners wrote the same version during a partition: the losing write is not
    /// acknowledged (it is gone once the copies converge), and its writer adopts the winner.
    /// Two nodes wrote one session at once (both served it during a failover): the write
    /// that loses the tie-break is lost everywhere, and its node says so at once.
    @Test func aWriteThatLosesTheTieBreakIsReportedLostAtOnce() throws {
        var engines = ["n1": engine("n1", peers: ["n2"]), "n2": engine("n2", peers: ["n1"])]
        let (created, sent) = engines["n1"]!.onLocalCommit(write("a", 1, loaded: .zero), durability: .async, now: t0)
        _ = deliver(sent, from: "n1", among: &engines)
        let v1 = try #require(created.session?.version)

        var n1 = engines["n1"]!
        let (mine, fromN1) = n1.onLocalCommit(write("a", 11, loaded: v1), durability: .acknowledged, now: t0)
        engines["n1"] = n1
        let waiting = try #require(mine.awaiting)
        var n2 = engines["n2"]!
        _ = n2.onLocalCommit(write("a", 22, loaded: v1), durability: .async, now: t0)  // v2@n2 beats v2@n1
        engines["n2"] = n2

        #expect(deliver(fromN1, from: "n1", among: &engines) == [.commitCompleted(waiting, .superseded)],
                "the losing write is neither acknowledged nor left to time out as merely unconfirmed")
        #expect(engines["n1"]!.session(forKey: id.key)?.attributes["a"] == [22], "n1 adopted the winner")
        var later = engines["n1"]!
        #expect(!later.onTick(now: t0 + .seconds(3)).contains { if case .commitCompleted = $0 { true } else { false } })
    }

    /// A node cut off long enough to be declared dead (a VM stall, SIGSTOP) comes back and
    /// writes on its stale copy while the node that took the session over wrote several
    /// times: its version is then below the new branch's base, which no copy can place in
    /// its history. It must not be acknowledged (that would answer 200 for a write the
    /// cluster does not keep): the writer adopts the newer copy and learns its write is lost.
    @Test func aWriteOnACopyTheClusterMovedPastIsReportedLostNotAcknowledged() throws {
        var engines = ["n1": engine("n1", peers: ["n2", "n3"]), "n2": engine("n2", peers: ["n1", "n3"]),
                       "n3": engine("n3", peers: ["n1", "n2"])]
        var version = SessionVersion.zero
        for value in UInt8(1)...5 {
            let (created, sent) = engines["n1"]!.onLocalCommit(write("a", value, loaded: version), durability: .acknowledged, now: t0)
            #expect(deliver(sent, from: "n1", among: &engines).count == 1)
            version = try #require(created.session?.version)
        }
        // n1 stalls and is declared dead; n2 takes the session over and writes three times.
        for name in ["n2", "n3"] { _ = engines[name]!.onPeerDown("n1", now: t0) }
        var taken = version
        for value in UInt8(6)...8 {
            let (committed, sent) = engines["n2"]!.onLocalCommit(write("a", value, loaded: taken), durability: .acknowledged, now: t0)
            #expect(deliver(sent, from: "n2", among: &engines).count == 1)
            taken = try #require(committed.session?.version)
        }
        // n1 runs again and is readmitted; it writes on its copy (v5@n1) before it heard
        // of any of it.
        for name in ["n2", "n3"] { _ = engines[name]!.onPeerUp("n1", now: t0) }
        let (stale, sent) = engines["n1"]!.onLocalCommit(write("a", 66, loaded: version), durability: .acknowledged, now: t0)
        let waiting = try #require(stale.awaiting)
        #expect(deliver(sent, from: "n1", among: &engines) == [.commitCompleted(waiting, .superseded)])
        for name in ["n1", "n2", "n3"] {
            #expect(engines[name]!.session(forKey: id.key)?.attributes["a"] == [8], "\(name) keeps the taken-over branch")
            #expect(engines[name]!.session(forKey: id.key)?.version == taken, "\(name)")
        }
    }

    /// A node that stops (cancelled, say, before its application) completes what waits
    /// on its peers, and afterwards waits for nothing: no request hangs on it.
    @Test func stoppingCompletesEveryWaitingWriteAndFetchAndNothingWaitsAfter() throws {
        var n1 = engine("n1", peers: ["n2"])
        let (commit, _) = n1.onLocalCommit(write("a", 1, loaded: .zero), durability: .acknowledged, now: t0)
        let waiting = try #require(commit.awaiting)
        let other = SessionID(key: "EEEEEEEEEEEEEEEEEEEEEEEEEEE", route: "n2")
        #expect(n1.onLocalMiss(id: other, now: t0).0 == .pending)

        let stopped = n1.onStop()
        #expect(stopped.contains(.commitCompleted(waiting, .degraded(missing: ["n2"]))))
        #expect(stopped.contains(.fetchCompleted(key: other.key, nil)))

        let (late, _) = n1.onLocalCommit(write("a", 2, loaded: try #require(commit.session?.version)), durability: .acknowledged, now: t0)
        #expect(late.awaiting == nil)
        #expect(n1.onLocalMiss(id: SessionID(key: "FFFFFFFFFFFFFFFFFFFFFFFFFFF", route: "n2"), now: t0).0 == .notFound)
    }

    /// A delta on another branch that loses to the held copy without tying it (a lower
    /// counter: the other side of a healed partition wrote less, or wrote on a copy that
    /// lagged) is not acked either; a plain duplicate still is.
    @Test func aLosingWriteFromAnotherBranchIsNotAcknowledgedAndADuplicateIs() throws {
        var n3 = engine("n3", peers: ["n1", "n2"])
        let v1 = SessionVersion(counter: 1, origin: "n1"), v2 = SessionVersion(counter: 2, origin: "n1")
        let v3 = SessionVersion(counter: 3, origin: "n1")
        for (base, version) in [(SessionVersion.zero, v1), (v1, v2), (v2, v3)] {
            let delta = SessionDelta(id: id, base: base, version: version, changes: [.set(name: "a", value: [UInt8(version.counter)])], maxIdle: .seconds(60))
            _ = n3.onPeerMessage(.delta(delta), from: "n1", now: t0)
        }
        #expect(n3.session(forKey: id.key)?.version == v3)

        // n2 wrote v2@n2 on top of v1: it lost v2@n1 and v3@n1's history.
        let losing = SessionDelta(
            id: id, base: v1, version: SessionVersion(counter: 2, origin: "n2"), changes: [.set(name: "b", value: [9])], maxIdle: .seconds(60))
        let answer = n3.onPeerMessage(.delta(losing), from: "n2", now: t0)
        #expect(!answer.contains { if case .send(.ack, _) = $0 { true } else { false } }, "\(answer)")
        #expect(answer.contains { if case .send(.session(let copy), "n2") = $0 { copy.version == v3 } else { false } })
        #expect(n3.session(forKey: id.key)?.attributes["b"] == nil)

        // A duplicate of n1's own v2 (a retransmission) is acked as before.
        let duplicate = SessionDelta(id: id, base: v1, version: v2, changes: [.set(name: "a", value: [2])], maxIdle: .seconds(60))
        #expect(n3.onPeerMessage(.delta(duplicate), from: "n1", now: t0) == [.send(.ack(key: id.key, version: v2), to: "n1")])
    }

    /// Under `owners:N` a node that is not an owner gets no deltas: its copy may lag, and
    /// the node knows not to serve it unchecked.
    @Test func onlyOwnersTrustTheirCopies() {
        var configuration = ReplicationEngine.Configuration()
        configuration.placement = .owners(2)
        var engines: [String: ReplicationEngine] = [:]
        for name in ["n1", "n2", "n3"] {
            var engine = ReplicationEngine(nodeName: name, configuration: configuration)
            for peer in ["n1", "n2", "n3"] where peer != name { _ = engine.onPeerUp(peer, now: t0) }
            engines[name] = engine
        }
        let owners = engines["n1"]!.owners(of: id)
        #expect(owners.count == 2)
        for (name, engine) in engines {
            #expect(engine.ownsCopy(of: id) == owners.contains(name), "\(name)")
        }
        #expect(engine("n1", peers: ["n2", "n3"]).ownsCopy(of: id), "every node owns every session by default")
    }
}

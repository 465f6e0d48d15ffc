import CohortCore

extension ReplicationEngine {
    /// `peer` became live: it joins the replication group. A placement scan starts at the
    /// next tick; it offers `peer` the copies it now owns (see ReplicationEngine+Transfer).
    /// While this node is not yet ready, it waits for `peer`'s own offers too.
    public mutating func onPeerUp(_ peer: String, now: Instant) -> [ReplicationDirective] {
        guard peer != nodeName, !peers.contains(peer) else { return [] }
        peers.insert(peer)
        rebuildView()
        transfer.fresh.insert(peer)
        transfer.scanRequested = true
        if !transfer.ready, !transfer.offerEndsReceived.contains(peer) {
            transfer.awaitingOfferEnd.insert(peer)
        }
        requeuePulls(from: peer)
        return []
    }

    /// The connection to live `peer` broke (its process may have crashed; membership has
    /// not declared it dead yet). Writes stop waiting for it until ``onPeerReachable(_:)``,
    /// so a crash costs a write no more than a reconnect attempt. A write it had not acked
    /// completes ``CommitOutcome/degraded(missing:)`` with it: what was in flight on the
    /// broken connection may never arrive, so the write is held only by this node and the
    /// owners that acked.
    public mutating func onPeerUnreachable(_ peer: String, now: Instant) -> [ReplicationDirective] {
        guard peers.contains(peer), unreachable.insert(peer).inserted else { return [] }
        var directives = releaseWaits(on: peer, unconfirmed: true)
        reroutePulls(awayFrom: peer, left: false, now: now, into: &directives)
        return directives
    }

    /// The connection to `peer` works again. What it missed meanwhile (the frames lost
    /// with the broken connection, the writes that skipped it) is offered to it by a
    /// placement scan at the next tick, as to a peer that just came up: it pulls every
    /// copy it owns that is newer here, and hears of every session that ended.
    public mutating func onPeerReachable(_ peer: String) {
        guard unreachable.remove(peer) != nil, peers.contains(peer) else { return }
        transfer.fresh.insert(peer)
        transfer.scanRequested = true
        requeuePulls(from: peer)
    }

    /// `peer` is no longer live: writes stop waiting for it, fetches stop asking it, and a
    /// placement scan gives its sessions new owners at the next tick.
    public mutating func onPeerDown(_ peer: String, now: Instant) -> [ReplicationDirective] {
        guard peers.remove(peer) != nil else { return [] }
        unreachable.remove(peer)
        rebuildView()
        transfer.fresh.insert(peer)
        transfer.scanRequested = true
        transfer.awaitingOfferEnd.remove(peer)
        transfer.offerEndsReceived.remove(peer)
        var directives = releaseWaits(on: peer, unconfirmed: false)
        reroutePulls(awayFrom: peer, left: true, now: now, into: &directives)
        return directives
    }

    /// This node stops (its links are closed): every write still waiting for acks
    /// completes degraded, every fetch with the local copy, and from now on nothing waits
    /// for a peer (a write completes at once, a miss is not fetched), so no request hangs.
    public mutating func onStop() -> [ReplicationDirective] {
        stopped = true
        var directives: [ReplicationDirective] = []
        pendingCommits.expire(now: Instant(nanoseconds: .max)) { id, pending in
            directives.append(.commitCompleted(id, .degraded(missing: pending.missing)))
        }
        for key in pendingFetches.keys.sorted() {
            directives.append(.fetchCompleted(key: key, store.sessions[key]))
        }
        pendingFetches = [:]
        return directives
    }

    private mutating func rebuildView() {
        view = (peers.union([nodeName])).sorted().map { ($0, Rendezvous.nodeHash($0)) }
    }

    private mutating func releaseWaits(on peer: String, unconfirmed: Bool) -> [ReplicationDirective] {
        var directives: [ReplicationDirective] = []
        pendingCommits.release(peer: peer, unconfirmed: unconfirmed) { id, missing in
            directives.append(.commitCompleted(id, CommitOutcome(unconfirmed: missing)))
        }
        for key in pendingFetches.keys.sorted() {
            guard var pending = pendingFetches[key], pending.waitingFor.remove(peer) != nil else { continue }
            if pending.waitingFor.isEmpty {
                pendingFetches[key] = nil
                directives.append(.fetchCompleted(key: key, store.sessions[key]))
            } else {
                pendingFetches[key] = pending
            }
        }
        gapRepairs = gapRepairs.filter { $0.value.askedFrom != peer }
        return directives
    }
}

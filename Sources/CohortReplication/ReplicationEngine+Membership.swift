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
        return []
    }

    /// The connection to live `peer` broke (its process probably crashed; membership has
    /// not declared it dead yet). Writes stop waiting for it until ``onPeerReachable(_:)``,
    /// so a crash costs a write no more than a reconnect attempt. The write is then held
    /// by this node and every reachable owner, which keeps the single-crash promise.
    public mutating func onPeerUnreachable(_ peer: String, now: Instant) -> [ReplicationDirective] {
        guard peers.contains(peer), unreachable.insert(peer).inserted else { return [] }
        var directives = releaseWaits(on: peer)
        reroutePulls(awayFrom: peer, now: now, into: &directives)
        return directives
    }

    /// The connection to `peer` works again.
    public mutating func onPeerReachable(_ peer: String) {
        unreachable.remove(peer)
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
        var directives = releaseWaits(on: peer)
        reroutePulls(awayFrom: peer, now: now, into: &directives)
        return directives
    }

    private mutating func rebuildView() {
        view = (peers.union([nodeName])).sorted().map { ($0, Rendezvous.nodeHash($0)) }
    }

    private mutating func releaseWaits(on peer: String) -> [ReplicationDirective] {
        var directives: [ReplicationDirective] = []
        pendingCommits.release(peer: peer) { id in
            directives.append(.commitCompleted(id, .acknowledged))
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

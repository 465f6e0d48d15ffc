import CohortCore

extension ReplicationEngine {
    /// A message from peer `from` arrived. Hostile or out-of-date input is ignored and
    /// counted, never trusted to be consistent.
    public mutating func onPeerMessage(_ message: ReplicationMessage, from peer: String, now: Instant) -> [ReplicationDirective] {
        var directives: [ReplicationDirective] = []
        switch message {
        case .delta(let delta):
            onDelta(delta, from: peer, now: now, into: &directives)
        case .ack(let key, let version):
            onAck(key: key, version: version, from: peer, into: &directives)
        case .fetch(let key):
            if let session = store.sessions[key] {
                directives.append(.send(.session(session.snapshot(now: now)), to: peer))
            } else {
                directives.append(.send(.missing(key: key), to: peer))
            }
        case .session(let snapshot):
            onSession(snapshot, from: peer, now: now, into: &directives)
        case .missing(let key):
            onMissing(key: key, from: peer, into: &directives)
        case .removed(let key, let version):
            if let held = store.sessions[key], held.version > version { break }
            store.remove(key: key, version: version, forgetAt: now + configuration.tombstoneRetention)
            pendingTouches.remove(key)
        case .touched(let keys):
            for key in keys {
                guard var session = store.sessions[key] else { continue }
                session.lastAccess = now
                store.sessions[key] = session
            }
        }
        return directives
    }

    /// `peer` became live: it joins the replication group and receives the sessions this
    /// node is responsible for handing over: those this node owns, and, if this node is
    /// the first live node by name (so each is sent once), those whose owner is not live,
    /// including those routed to `peer` itself (a restarted node lost its copies).
    public mutating func onPeerUp(_ peer: String, now: Instant) -> [ReplicationDirective] {
        guard peer != nodeName, !peers.contains(peer) else { return [] }
        let otherPeers = peers
        peers.insert(peer)
        let firstLive = otherPeers.allSatisfy { nodeName < $0 }
        var directives: [ReplicationDirective] = []
        for session in store.sessions.values {
            let route = session.id.route
            let ownerLive = route == nodeName || otherPeers.contains(route)
            if route == nodeName || (!ownerLive && firstLive) {
                directives.append(.send(.session(session.snapshot(now: now)), to: peer))
            }
        }
        return directives
    }

    /// The connection to live `peer` broke (its process probably crashed; membership has
    /// not declared it dead yet). Writes stop waiting for it until ``onPeerReachable(_:)``,
    /// so a crash costs a write no more than a reconnect attempt. The write is then held
    /// by this node and every reachable peer, which keeps the single-crash promise.
    public mutating func onPeerUnreachable(_ peer: String, now: Instant) -> [ReplicationDirective] {
        guard peers.contains(peer), unreachable.insert(peer).inserted else { return [] }
        return releaseWaits(on: peer)
    }

    /// The connection to `peer` works again.
    public mutating func onPeerReachable(_ peer: String) {
        unreachable.remove(peer)
    }

    /// `peer` is no longer live: writes stop waiting for it, fetches stop asking it.
    public mutating func onPeerDown(_ peer: String, now: Instant) -> [ReplicationDirective] {
        guard peers.remove(peer) != nil else { return [] }
        unreachable.remove(peer)
        return releaseWaits(on: peer)
    }

    private mutating func releaseWaits(on peer: String) -> [ReplicationDirective] {
        var directives: [ReplicationDirective] = []
        for id in pendingCommits.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
            guard var pending = pendingCommits[id], pending.waitingFor.remove(peer) != nil else { continue }
            if pending.waitingFor.isEmpty {
                pendingCommits[id] = nil
                directives.append(.commitCompleted(id, .acknowledged))
            } else {
                pendingCommits[id] = pending
            }
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

    // MARK: - Message handlers

    private mutating func onDelta(_ delta: SessionDelta, from peer: String, now: Instant, into directives: inout [ReplicationDirective]) {
        let key = delta.id.key
        if store.isEnded(key: key, version: delta.version) {
            statistics.duplicatesIgnored += 1
            directives.append(.send(.ack(key: key, version: delta.version), to: peer))
            return
        }
        let held = store.sessions[key]
        let heldVersion = held?.version ?? .zero
        if heldVersion >= delta.version {
            // Already applied (a duplicate), or a concurrent write that wins the tie-break.
            if heldVersion.counter == delta.version.counter && heldVersion != delta.version {
                statistics.conflicts += 1
            } else {
                statistics.duplicatesIgnored += 1
            }
            directives.append(.send(.ack(key: key, version: delta.version), to: peer))
            return
        }
        guard heldVersion == delta.base else {
            // A gap (or a concurrent history): the delta cannot be applied on this copy.
            if held != nil && heldVersion.counter >= delta.base.counter { statistics.conflicts += 1 }
            statistics.gapsDetected += 1
            requestRepair(key: key, from: peer, ackTo: peer, version: delta.version, now: now, into: &directives)
            return
        }
        var session = held ?? Session(id: delta.id, version: delta.version, maxIdle: delta.maxIdle, lastAccess: now)
        session.id = delta.id
        session.version = delta.version
        session.maxIdle = delta.maxIdle
        session.lastAccess = now
        Self.apply(delta.changes, to: &session.attributes)
        store.sessions[key] = session
        statistics.deltasApplied += 1
        directives.append(.send(.ack(key: key, version: delta.version), to: peer))
    }

    private mutating func requestRepair(
        key: String, from peer: String, ackTo: String, version: SessionVersion, now: Instant,
        into directives: inout [ReplicationDirective]
    ) {
        if var repair = gapRepairs[key] {
            repair.ackTo[ackTo] = max(repair.ackTo[ackTo] ?? version, version)
            gapRepairs[key] = repair
            return
        }
        gapRepairs[key] = GapRepair(askedFrom: peer, ackTo: [ackTo: version], deadline: now + configuration.fetchTimeout)
        directives.append(.send(.fetch(key: key), to: peer))
    }

    private mutating func onSession(_ snapshot: SessionSnapshot, from peer: String, now: Instant, into directives: inout [ReplicationDirective]) {
        let key = snapshot.id.key
        if !store.isEnded(key: key, version: snapshot.version) {
            let held = store.sessions[key]
            if held.map({ $0.version < snapshot.version }) ?? true {
                var session = snapshot.session(now: now)
                if let held, held.lastAccess > session.lastAccess { session.lastAccess = held.lastAccess }
                store.sessions[key] = session
                statistics.sessionsReceived += 1
            }
        }
        // Ack the peers whose delta this copy now covers. A whole session pushed earlier
        // (or by another peer) may be older than what a waiting peer needs: those keep
        // waiting for the answer to the fetch (or the repair's deadline).
        if var repair = gapRepairs[key], let version = store.sessions[key]?.version {
            for (waiting, needed) in repair.ackTo.sorted(by: { $0.key < $1.key }) where needed <= version {
                directives.append(.send(.ack(key: key, version: version), to: waiting))
                repair.ackTo[waiting] = nil
            }
            gapRepairs[key] = repair.ackTo.isEmpty ? nil : repair
        }
        if pendingFetches.removeValue(forKey: key) != nil {
            directives.append(.fetchCompleted(key: key, store.sessions[key]))
        }
    }

    private mutating func onMissing(key: String, from peer: String, into directives: inout [ReplicationDirective]) {
        if let repair = gapRepairs[key], repair.askedFrom == peer {
            gapRepairs[key] = nil
        }
        guard var pending = pendingFetches[key], pending.waitingFor.remove(peer) != nil else { return }
        if pending.waitingFor.isEmpty {
            pendingFetches[key] = nil
            directives.append(.fetchCompleted(key: key, store.sessions[key]))
        } else {
            pendingFetches[key] = pending
        }
    }

    private mutating func onAck(key: String, version: SessionVersion, from peer: String, into directives: inout [ReplicationDirective]) {
        guard !pendingCommits.isEmpty else { return }
        for id in pendingCommits.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
            guard var pending = pendingCommits[id], pending.key == key, pending.version <= version,
                  pending.waitingFor.remove(peer) != nil
            else { continue }
            if pending.waitingFor.isEmpty {
                pendingCommits[id] = nil
                directives.append(.commitCompleted(id, .acknowledged))
            } else {
                pendingCommits[id] = pending
            }
        }
    }
}

import CohortCore

extension ReplicationEngine {
    /// Time passed: fire ack and fetch timeouts, announce touches, expire idle sessions.
    /// Call it often (the shell uses its membership tick); work per call is bounded by
    /// what is due.
    public mutating func onTick(now: Instant) -> [ReplicationDirective] {
        var directives: [ReplicationDirective] = []
        expireWaits(now: now, into: &directives)
        if now >= nextTouchFlush {
            nextTouchFlush = now + configuration.touchInterval
            flushTouches(into: &directives)
        }
        if now >= nextSweep {
            nextSweep = now + configuration.sweepInterval
            sweep(now: now, into: &directives)
        }
        return directives
    }

    /// Maximum keys in one `touched` message.
    static let maxTouchBatch = 4096

    private mutating func expireWaits(now: Instant, into directives: inout [ReplicationDirective]) {
        if !pendingCommits.isEmpty {
            for id in pendingCommits.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
                guard let pending = pendingCommits[id], pending.deadline <= now else { continue }
                pendingCommits[id] = nil
                statistics.ackTimeouts += 1
                directives.append(.commitCompleted(id, .timedOut(missing: pending.waitingFor.sorted())))
            }
        }
        if !pendingFetches.isEmpty {
            for key in pendingFetches.keys.sorted() where (pendingFetches[key]?.deadline ?? now) <= now {
                pendingFetches[key] = nil
                directives.append(.fetchCompleted(key: key, store.sessions[key]))
            }
        }
        if !gapRepairs.isEmpty {
            gapRepairs = gapRepairs.filter { $0.value.deadline > now }
        }
    }

    private mutating func flushTouches(into directives: inout [ReplicationDirective]) {
        guard !pendingTouches.isEmpty else { return }
        let keys = pendingTouches.sorted()
        pendingTouches.removeAll(keepingCapacity: true)
        guard !peers.isEmpty else { return }
        var start = 0
        while start < keys.count {
            let batch = Array(keys[start..<min(keys.count, start + Self.maxTouchBatch)])
            for peer in peers.sorted() {
                directives.append(.send(.touched(keys: batch), to: peer))
            }
            start += Self.maxTouchBatch
        }
    }

    /// Owned sessions expire after `maxIdle` and the peers are told; copies expire by
    /// themselves only after `maxIdle × copyExpiryFactor`, in case the owner died.
    /// Idle time is measured on this node's clock only.
    private mutating func sweep(now: Instant, into directives: inout [ReplicationDirective]) {
        store.forgetTombstones(now: now)
        var expired: [(String, SessionVersion, Bool)] = []
        for (key, session) in store.sessions {
            let idle = now - session.lastAccess
            let owned = session.id.route == nodeName
            let limit = owned ? session.maxIdle : session.maxIdle * configuration.copyExpiryFactor
            if idle > limit {
                expired.append((key, session.version, owned))
            }
        }
        for (key, version, owned) in expired.sorted(by: { $0.0 < $1.0 }) {
            store.remove(key: key, version: version, forgetAt: now + configuration.tombstoneRetention)
            pendingTouches.remove(key)
            statistics.expired += 1
            if owned {
                for peer in peers.sorted() {
                    directives.append(.send(.removed(key: key, version: version), to: peer))
                }
            }
        }
    }
}

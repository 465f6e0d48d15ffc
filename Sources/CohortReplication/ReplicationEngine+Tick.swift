import CohortCore

extension ReplicationEngine {
    /// Time passed: fire ack and fetch timeouts, advance the placement scan and the pulls,
    /// announce touches, expire sessions. Call it often (the shell uses its membership
    /// tick); the work per call is bounded by `scanBatch`, `sweepBatch` and `pullWindow`,
    /// whatever the number of sessions.
    public mutating func onTick(now: Instant) -> [ReplicationDirective] {
        var directives: [ReplicationDirective] = []
        expireWaits(now: now, into: &directives)
        if now >= nextTouchFlush {
            nextTouchFlush = now + configuration.touchInterval
            flushTouches(into: &directives)
        }
        if transfer.scanRequested { startScan() }
        stepScan(now: now, into: &directives)
        if now >= nextHousekeeping {
            nextHousekeeping = now + .seconds(1)
            retryHandoffs(now: now, into: &directives)
            retryPulls(now: now)
        }
        pumpPulls(now: now, into: &directives)
        sweep(now: now, into: &directives)
        store.forgetTombstones(now: now, limit: configuration.sweepBatch)
        flushOffers(into: &directives)
        updateReadiness()
        return directives
    }

    /// Maximum keys in one `touched` message.
    static let maxTouchBatch = 4096

    private mutating func expireWaits(now: Instant, into directives: inout [ReplicationDirective]) {
        var timedOut = 0
        pendingCommits.expire(now: now) { id, pending in
            timedOut += 1
            directives.append(.commitCompleted(id, .degraded(missing: pending.missing)))
        }
        statistics.ackTimeouts += timedOut
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

    /// Sends the keys used since the last flush to the sessions' other owners.
    private mutating func flushTouches(into directives: inout [ReplicationDirective]) {
        guard !pendingTouches.isEmpty else { return }
        let keys = pendingTouches.sorted()
        pendingTouches.removeAll(keepingCapacity: true)
        guard !peers.isEmpty else { return }
        var byPeer: [String: [String]] = [:]
        for key in keys {
            guard let session = store.sessions[key] else { continue }
            for peer in replicaTargets(of: session.id) { byPeer[peer, default: []].append(key) }
        }
        for (peer, keys) in byPeer.sorted(by: { $0.key < $1.key }) {
            var start = 0
            while start < keys.count {
                let batch = Array(keys[start..<min(keys.count, start + Self.maxTouchBatch)])
                directives.append(.send(.touched(keys: batch), to: peer))
                start += Self.maxTouchBatch
            }
        }
    }

    /// When the tombstone of a session that ended now is forgotten: after
    /// ``Configuration/tombstoneRetention``, and not before a copy of it that missed the
    /// end would have expired by itself on another node.
    func tombstoneExpiry(now: Instant, maxIdle: Duration?) -> Instant {
        now + max(configuration.tombstoneRetention, (maxIdle ?? .zero) * configuration.copyExpiryFactor)
    }

    /// When session `session` must next be looked at, on this node's clock: its primary
    /// expires it after `maxIdle` idle or at the end of its lifetime; other owners only
    /// well after that (`copyExpiryFactor`), in case the primary died; a copy this node
    /// does not own is handed over after `strayRetention` idle.
    func deadline(of session: Session) -> Instant {
        let owners = self.owners(of: session.id)
        let primary = owners.first == nodeName
        let idle = primary ? session.maxIdle : session.maxIdle * configuration.copyExpiryFactor
        var deadline = session.lastAccess + idle
        if let lifetime = session.maxLifetime {
            deadline = min(deadline, session.createdAt + lifetime + (primary ? .zero : session.maxIdle))
        }
        if !owners.contains(nodeName) {
            deadline = min(deadline, session.lastAccess + configuration.strayRetention)
        }
        return deadline
    }

    /// Looks at up to `sweepBatch` sessions whose deadline passed. Idle time and age are
    /// measured on this node's clock only.
    private mutating func sweep(now: Instant, into directives: inout [ReplicationDirective]) {
        let due = expiry.due(now: now, limit: configuration.sweepBatch, in: &store.sessions)
        for key in due {
            guard let session = store.sessions[key] else { continue }
            let owners = self.owners(of: session.id)
            let primary = owners.first == nodeName
            let idleLimit = primary ? session.maxIdle : session.maxIdle * configuration.copyExpiryFactor
            let lifetimeOver = session.maxLifetime.map { now - session.createdAt > $0 + (primary ? .zero : session.maxIdle) } ?? false
            if now - session.lastAccess > idleLimit || lifetimeOver {
                store.end(key: key, version: session.version, reason: .expired, forgetAt: tombstoneExpiry(now: now, maxIdle: session.maxIdle))
                pendingTouches.remove(key)
                transfer.handoffs[key] = nil
                statistics.expired += 1
                if primary {
                    for peer in owners where peer != nodeName {
                        directives.append(.send(.removed(key: key, version: session.version, reason: .expired), to: peer))
                    }
                }
                emit(.expired, id: session.id, origin: .local, into: &directives)
                continue
            }
            if !owners.contains(nodeName), transfer.handoffs[key] == nil, now - session.lastAccess >= configuration.strayRetention {
                startHandoff(session, now: now, into: &directives)
            }
            expiry.schedule(key, at: max(deadline(of: session), now + .seconds(1)), in: &store.sessions)
        }
    }
}

/// Sessions by the second at which they must next be looked at: scheduling and finding
/// what is due cost O(1) per session, so expiry never scans the whole store.
///
/// A session is scheduled at most once (at its earliest slot); when its slot comes and it
/// is not due after all (it was used meanwhile), the sweep schedules it again. Each
/// session's current slot is kept in the store's table (``SessionTable/expirySlot(forKey:)``);
/// a bucket may still name a key whose session went or was scheduled elsewhere since,
/// and such a key is skipped.
struct ExpiryWheel: Sendable {
    private var buckets: [Int64: [String]] = [:]
    private var cursor: Int64?

    /// Schedules the session held under `key` in `sessions` (nothing when none is).
    mutating func schedule(_ key: String, at deadline: Instant, in sessions: inout SessionTable) {
        var slot = deadline.nanoseconds / 1_000_000_000 + 1
        if let cursor, slot < cursor { slot = cursor }
        if let existing = sessions.expirySlot(forKey: key), existing <= slot { return }
        guard sessions.setExpirySlot(slot, forKey: key) else { return }
        buckets[slot, default: []].append(key)
    }

    /// Up to `limit` keys whose slot is at or before `now`; their slots are cleared.
    mutating func due(now: Instant, limit: Int, in sessions: inout SessionTable) -> [String] {
        let current = now.nanoseconds / 1_000_000_000
        var cursor = self.cursor ?? buckets.keys.min() ?? current
        var result: [String] = []
        while cursor <= current, result.count < limit {
            guard var bucket = buckets[cursor] else {
                // Far behind (the first sweep, or a deadline from a peer's extreme
                // durations): jump to the next bucket instead of visiting every second.
                if current - cursor > 64 {
                    cursor = buckets.keys.lazy.filter { $0 > cursor }.min().map { min($0, current + 1) } ?? current + 1
                } else {
                    cursor += 1
                }
                continue
            }
            while result.count < limit, let key = bucket.popLast() {
                if sessions.expirySlot(forKey: key) == cursor {
                    sessions.setExpirySlot(nil, forKey: key)
                    result.append(key)
                }
            }
            if bucket.isEmpty {
                buckets[cursor] = nil
                cursor += 1
            } else {
                buckets[cursor] = bucket
            }
        }
        self.cursor = cursor
        return result
    }
}

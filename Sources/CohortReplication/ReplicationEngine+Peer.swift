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
            onAck(key: key, version: version, from: peer, now: now, into: &directives)
        case .fetch(let key):
            answerFetch(key, from: peer, now: now, into: &directives)
        case .fetchMany(let keys):
            for key in keys { answerFetch(key, from: peer, now: now, into: &directives) }
        case .session(let snapshot):
            onSession(snapshot, from: peer, now: now, into: &directives)
        case .missing(let key):
            onMissing(key: key, from: peer, now: now, into: &directives)
        case .removed(let key, let version, let reason):
            onRemoved(key: key, version: version, reason: reason, from: peer, now: now, into: &directives)
        case .touched(let keys):
            for key in keys {
                guard var session = store.sessions[key] else { continue }
                session.lastAccess = now
                store.sessions[key] = session
            }
        case .offer(let entries):
            onOffer(entries, from: peer, now: now, into: &directives)
        case .offerEnd:
            onOfferEnd(from: peer, now: now)
        }
        return directives
    }

    // MARK: - Message handlers

    private func answerFetch(_ key: String, from peer: String, now: Instant, into directives: inout [ReplicationDirective]) {
        if let session = store.sessions[key] {
            directives.append(.send(.session(session.snapshot(now: now)), to: peer))
        } else {
            directives.append(.send(.missing(key: key), to: peer))
        }
    }

    private mutating func onDelta(_ delta: SessionDelta, from peer: String, now: Instant, into directives: inout [ReplicationDirective]) {
        let key = delta.id.key
        if store.isEnded(key: key, version: delta.version) {
            statistics.duplicatesIgnored += 1
            directives.append(.send(.ack(key: key, version: delta.version), to: peer))
            return
        }
        // A rotation: the copy under the old key moves to the new one.
        if let oldKey = delta.renamedFrom, oldKey != key {
            if let old = store.sessions[oldKey], store.sessions[key] == nil, old.version == delta.base {
                store.sessions[key] = old
                expiry.schedule(key, at: deadline(of: old), in: &store.sessions)
            }
            store.end(key: oldKey, version: delta.version, reason: .rotated, forgetAt: tombstoneExpiry(now: now, maxIdle: delta.maxIdle))
            pendingTouches.remove(oldKey)
        }
        // Only the held copy's version is read here: holding the copy itself would make
        // the change below copy its attributes.
        let heldVersion = store.sessions[key]?.version
        let held = heldVersion != nil
        if let heldVersion, heldVersion >= delta.version {
            if heldVersion != delta.version, let held = store.sessions[key] {
                if isDivergent(delta.version, from: held) {
                    // A write on another branch (two owners wrote during a partition, or one
                    // wrote on a copy that lagged) that loses to the held copy: the sender's
                    // write is lost, so it gets no ack but this copy, which it adopts (and
                    // its commit completes superseded).
                    countConflict(key: key, versions: (heldVersion, delta.version))
                    directives.append(.send(.session(held.snapshot(now: now)), to: peer))
                    return
                }
                if held.base != delta.version {
                    // Older than the held copy's base: whether it is in this copy's history
                    // cannot be told (a node that was cut off, declared dead and taken over
                    // writes on its stale copy; its version is below the new branch's base).
                    // No ack, which would tell the sender its write is kept: this copy,
                    // which it adopts if it lacks it. A sender whose write is in this
                    // history has it acknowledged by its later deltas' acks.
                    statistics.duplicatesIgnored += 1
                    directives.append(.send(.session(held.snapshot(now: now)), to: peer))
                    return
                }
            }
            statistics.duplicatesIgnored += 1  // already applied
            directives.append(.send(.ack(key: key, version: delta.version), to: peer))
            return
        }
        guard (heldVersion ?? .zero) == delta.base else {
            // A gap (or a concurrent history): the delta cannot be applied on this copy.
            if let heldVersion, heldVersion.counter >= delta.base.counter { countConflict(key: key, versions: (heldVersion, delta.version)) }
            statistics.gapsDetected += 1
            requestRepair(key: key, from: peer, ackTo: peer, version: delta.version, now: now, into: &directives)
            return
        }
        // The held copy changes where it is (its attributes are not copied: see
        // `SessionAttributes`); a new one is stored.
        let (previousID, session) = store.sessions.modify(key) { session in
            Self.applyDelta(delta, now: now, to: &session)
        } ?? {
            var session = Session(
                id: delta.id, version: delta.version, maxIdle: delta.maxIdle, maxLifetime: delta.maxLifetime, lastAccess: now)
            let applied = Self.applyDelta(delta, now: now, to: &session)
            store.sessions[key] = session
            expiry.schedule(key, at: deadline(of: session), in: &store.sessions)
            return applied
        }()
        statistics.deltasApplied += 1
        directives.append(.send(.ack(key: key, version: delta.version), to: peer))
        if eventsEnabled {
            emitChangeEvents(
                created: !held && delta.base == .zero, previousID: previousID, session: session, changes: delta.changes,
                origin: .peer(peer), into: &directives)
        }
    }

    /// What applying `delta` sets on the copy it changes; returns the id the copy had and
    /// the copy after.
    private static func applyDelta(_ delta: SessionDelta, now: Instant, to session: inout Session) -> (SessionID, Session) {
        let previousID = delta.renamedFrom.map { SessionID(key: $0, route: session.id.route) } ?? session.id
        session.id = delta.id
        session.base = delta.base
        session.version = delta.version
        session.maxIdle = delta.maxIdle
        session.lastAccess = now
        apply(delta.changes, to: &session.attributes)
        return (previousID, session)
    }

    private mutating func onRemoved(
        key: String, version: SessionVersion, reason: EndReason, from peer: String, now: Instant,
        into directives: inout [ReplicationDirective]
    ) {
        let held = store.sessions[key]
        // A newer write than the end (a concurrent history) keeps the copy, and no ack says otherwise.
        if let held, held.version > version { return }
        // An invalidation is a local commit its owner may wait for: ack it once ended here.
        if reason == .invalidated { directives.append(.send(.ack(key: key, version: version), to: peer)) }
        if store.isEnded(key: key, version: version) { return }
        store.end(key: key, version: version, reason: reason, forgetAt: tombstoneExpiry(now: now, maxIdle: held?.maxIdle))
        pendingTouches.remove(key)
        transfer.handoffs[key] = nil
        switch reason {
        case .invalidated: emit(.invalidated, id: held?.id ?? SessionID(key: key, route: ""), origin: .peer(peer), into: &directives)
        case .expired: emit(.expired, id: held?.id ?? SessionID(key: key, route: ""), origin: .peer(peer), into: &directives)
        case .rotated: break  // The delta carrying the new id raises idChanged.
        }
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

    /// Stores `snapshot` if it is newer than the held copy. Returns whether it did.
    @discardableResult
    mutating func adopt(_ snapshot: SessionSnapshot, now: Instant) -> Bool {
        let key = snapshot.id.key
        guard !store.isEnded(key: key, version: snapshot.version) else { return false }
        let held = store.sessions[key]
        if let held {
            guard held.version < snapshot.version else {
                if snapshot.version < held.version, isDivergent(snapshot.version, from: held) {
                    countConflict(key: key, versions: (held.version, snapshot.version))
                }
                return false
            }
            if held.version != snapshot.base, held.version.counter >= snapshot.base.counter {
                countConflict(key: key, versions: (held.version, snapshot.version))
            }
        }
        var session = snapshot.session(now: now)
        if let held, held.lastAccess > session.lastAccess { session.lastAccess = held.lastAccess }
        store.sessions[key] = session
        if held == nil { expiry.schedule(key, at: deadline(of: session), in: &store.sessions) }
        statistics.sessionsReceived += 1
        return true
    }

    /// Whether `version` is on another branch than `session`'s history: it is not an
    /// ancestor, which versions can tell when its counter is at least the session's base.
    private func isDivergent(_ version: SessionVersion, from session: Session) -> Bool {
        version != session.base && version.counter >= session.base.counter
    }

    mutating func countConflict(key: String, versions: (SessionVersion, SessionVersion)) {
        statistics.conflicts += 1
        transfer.recentConflicts.append(ConflictRecord(key: key, kept: max(versions.0, versions.1), lost: min(versions.0, versions.1)))
        if transfer.recentConflicts.count > 64 { transfer.recentConflicts.removeFirst() }
    }

    private mutating func onSession(_ snapshot: SessionSnapshot, from peer: String, now: Instant, into directives: inout [ReplicationDirective]) {
        let key = snapshot.id.key
        if adopt(snapshot, now: now), let adopted = store.sessions[key] {
            // This node's own writes in flight that the adopted copy does not include (a
            // concurrent write on another node won the tie-break) are lost: say so now,
            // rather than let them time out as merely unconfirmed.
            // A write is kept only if it is the adopted copy's version or its base: one
            // further back may or may not be in its history (see `onDelta`), and a write
            // reported lost that was kept is safer than the reverse.
            let (version, base) = (adopted.version, adopted.base)  // (not reading self during the change)
            pendingCommits.supersede(key: key, isLost: { $0 != version && $0 != base }) { id in
                directives.append(.commitCompleted(id, .superseded))
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
        completePull(key: key, from: peer, now: now, into: &directives)
        if var pending = pendingFetches[key] {
            pending.waitingFor.remove(peer)
            if pending.newestOfAll && !pending.waitingFor.isEmpty {
                pendingFetches[key] = pending
            } else {
                pendingFetches[key] = nil
                directives.append(.fetchCompleted(key: key, store.sessions[key]))
            }
        }
    }

    private mutating func onMissing(key: String, from peer: String, now: Instant, into directives: inout [ReplicationDirective]) {
        if let repair = gapRepairs[key], repair.askedFrom == peer {
            gapRepairs[key] = nil
        }
        pullMissed(key: key, from: peer, now: now, into: &directives)
        guard var pending = pendingFetches[key], pending.waitingFor.remove(peer) != nil else { return }
        if pending.waitingFor.isEmpty {
            pendingFetches[key] = nil
            directives.append(.fetchCompleted(key: key, store.sessions[key]))
        } else {
            pendingFetches[key] = pending
        }
    }

    private mutating func onAck(key: String, version: SessionVersion, from peer: String, now: Instant, into directives: inout [ReplicationDirective]) {
        handoffAcked(key: key, version: version, from: peer)
        pendingCommits.acknowledge(key: key, version: version, by: peer) { id, unconfirmed in
            directives.append(.commitCompleted(id, CommitOutcome(unconfirmed: unconfirmed)))
        }
    }
}

/// A conflict seen recently, for logs and `/cluster`.
public struct ConflictRecord: Hashable, Sendable {
    public var key: String
    public var kept: SessionVersion
    public var lost: SessionVersion
}

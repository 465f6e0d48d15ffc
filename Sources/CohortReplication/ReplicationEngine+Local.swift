import CohortCore

extension ReplicationEngine {
    /// The result of a local commit.
    public struct LocalCommit: Hashable, Sendable {
        /// The session after the commit (`nil` if it was invalidated).
        public var session: Session?
        /// Set when the caller must wait for ``ReplicationDirective/commitCompleted(_:_:)``
        /// with this id before answering (acknowledged durability with reachable owners).
        public var awaiting: CommitID?
        /// Why the write was refused, when the session it was based on ended meanwhile.
        public var refusedBecause: EndReason?
        /// The write was refused: merged into the session as held now, it would break
        /// ``LocalChange/bounds``. Nothing changed; `session` is the session as it is.
        public var exceededBounds: Bool

        public init(session: Session?, awaiting: CommitID?, refusedBecause: EndReason? = nil, exceededBounds: Bool = false) {
            self.session = session
            self.awaiting = awaiting
            self.refusedBecause = refusedBecause
            self.exceededBounds = exceededBounds
        }
    }

    /// Commits the changes one request made to one session and replicates them.
    ///
    /// Concurrency contract: changes are merged per attribute on top of the copy this node
    /// holds now, so two concurrent requests on one session never lose each other's
    /// changes to different attributes; for the same attribute the later commit wins.
    /// The new version is one more than both the held and the loaded version, made by this
    /// node. A rotation (`change.renamedFrom`) moves the session to `change.id` and ends
    /// the old key everywhere.
    ///
    /// A write based on a session that ended while the request ran (another request logged
    /// it out or rotated its id, or it expired) is refused: it returns no session and
    /// replicates nothing, so the ended id is not brought back with this request's changes.
    /// So is a write that would take the session past ``LocalChange/bounds`` (counted in
    /// ``Statistics/writesOverBounds``).
    public mutating func onLocalCommit(_ change: LocalChange, durability: Durability, now: Instant) -> (LocalCommit, [ReplicationDirective]) {
        let key = change.id.key
        let oldKey = change.renamedFrom ?? key
        // (Tombstones first: usually none matches, and the table's check copies nothing.)
        if !change.invalidate, change.loadedVersion != .zero, store.isEnded(key: oldKey, version: change.loadedVersion),
           !store.sessions.contains(oldKey) {
            statistics.writesOnEndedSessions += 1
            return (LocalCommit(session: nil, awaiting: nil, refusedBecause: store.tombstones[oldKey]?.reason ?? .expired), [])
        }
        if let bounds = change.bounds, !change.invalidate {
            // The copy the write would be merged into (as below), read in place.
            let target = store.sessions.contains(oldKey) ? oldKey : (change.renamedFrom != nil && store.sessions.contains(key) ? key : nil)
            let admitted = target.flatMap { store.sessions.withSession($0) { bounds.admit(change.changes, on: $0.attributes) } }
                ?? bounds.admit(change.changes, on: [:])
            if !admitted {
                statistics.writesOverBounds += 1
                return (LocalCommit(session: target.flatMap { store.sessions[$0] }, awaiting: nil, exceededBounds: true), [])
            }
        }
        let targets = replicaTargets(of: change.id)
        var directives: [ReplicationDirective] = []
        directives.reserveCapacity(targets.count + 1)
        let tombstoneCounter = store.tombstones[key]?.version.counter ?? 0
        let loadedCounter = change.loadedVersion.counter
        let nodeName = self.nodeName
        func nextVersion(after base: SessionVersion) -> SessionVersion {
            SessionVersion(counter: max(base.counter, loadedCounter, tombstoneCounter) + 1, origin: nodeName)
        }

        let version: SessionVersion
        var result: Session?
        if change.invalidate {
            let current = store.sessions[oldKey] ?? (change.renamedFrom == nil ? nil : store.sessions[key])
            version = nextVersion(after: current?.version ?? .zero)
            store.end(key: oldKey, version: version, reason: .invalidated, forgetAt: tombstoneExpiry(now: now, maxIdle: current?.maxIdle))
            pendingTouches.remove(oldKey)
            for peer in targets {
                directives.append(.send(.removed(key: oldKey, version: version, reason: .invalidated), to: peer))
            }
            emit(.invalidated, id: current?.id ?? change.id, origin: .local, into: &directives)
        } else {
            let base: SessionVersion
            let previousID: SessionID
            let existed: Bool
            let session: Session
            // The usual write: the session held under its key, changed where it is (its
            // attributes are not copied: see `SessionAttributes`).
            if change.renamedFrom == nil, let changed = store.sessions.modify(key, { held -> (SessionVersion, SessionID, Session) in
                let (base, previousID) = (held.version, held.id)
                Self.applyLocal(change, base: base, version: nextVersion(after: base), now: now, to: &held)
                return (base, previousID, held)
            }) {
                (base, previousID, session) = changed
                existed = true
            } else {
                // A new session, or a rotation: the copy held under the old key moves to the new one.
                let current = store.sessions[oldKey] ?? (change.renamedFrom == nil ? nil : store.sessions[key])
                existed = current != nil
                base = current?.version ?? .zero
                var moved = current ?? Session(
                    id: change.id, version: nextVersion(after: base), maxIdle: change.maxIdle, maxLifetime: change.maxLifetime,
                    lastAccess: now)
                previousID = moved.id
                if let renamedFrom = change.renamedFrom, renamedFrom != key {
                    store.end(
                        key: renamedFrom, version: nextVersion(after: base), reason: .rotated,
                        forgetAt: tombstoneExpiry(now: now, maxIdle: current?.maxIdle))
                    pendingTouches.remove(renamedFrom)
                }
                Self.applyLocal(change, base: base, version: nextVersion(after: base), now: now, to: &moved)
                let isNew = store.sessions[key] == nil
                store.sessions[key] = moved
                if isNew { expiry.schedule(key, at: deadline(of: moved), in: &store.sessions) }
                session = moved
            }
            version = session.version
            store.tombstones[key] = nil
            pendingTouches.remove(key)
            result = session
            let delta = SessionDelta(
                id: change.id, base: base, version: version, changes: change.changes, maxIdle: change.maxIdle,
                maxLifetime: session.maxLifetime, renamedFrom: change.renamedFrom)
            for peer in targets {
                directives.append(.send(.delta(delta), to: peer))
            }
            if let renamedFrom = change.renamedFrom {
                // Owners of the old key that do not own the new one drop their copy.
                let oldOwners = self.owners(key: renamedFrom, route: previousID.route, in: view)
                for peer in oldOwners where peer != nodeName && !targets.contains(peer) {
                    directives.append(.send(.removed(key: renamedFrom, version: version, reason: .rotated), to: peer))
                }
            }
            if eventsEnabled {
                emitChangeEvents(created: !existed, previousID: previousID, session: session, changes: change.changes, origin: .local, into: &directives)
            }
        }

        var awaiting: CommitID?
        var ackers = Set(targets)
        if !unreachable.isEmpty { ackers.subtract(unreachable) }
        if durability == .acknowledged && !ackers.isEmpty && !stopped {
            let id = CommitID(rawValue: nextCommitID)
            nextCommitID += 1
            // An invalidation is acked under the key it removed.
            let ackedKey = change.invalidate ? oldKey : key
            pendingCommits.insert(
                PendingCommit(key: ackedKey, version: version, waitingFor: ackers, deadline: now + configuration.ackTimeout), id: id)
            awaiting = id
        }
        return (LocalCommit(session: result, awaiting: awaiting), directives)
    }

    /// A request read session `key` without changing it: restart its idle clock here and
    /// tell the other owners at the next touch flush.
    public mutating func onLocalAccess(key: String, now: Instant) {
        guard var session = store.sessions[key] else { return }
        session.lastAccess = now
        store.sessions[key] = session
        if !peers.isEmpty { pendingTouches.insert(key) }
    }

    /// Whether a fetch on miss was started.
    public enum FetchStart: Hashable, Sendable {
        /// No live owner to ask, or the key is known to have ended.
        case notFound
        /// Wait for ``ReplicationDirective/fetchCompleted(key:_:)``.
        case pending
    }

    /// A request names session `id`, which this node does not hold (it just joined, is not
    /// one of the session's owners, or the copy has not arrived): ask the session's other
    /// owners (every live peer if the route names no live node, so a session whose
    /// owners all changed at once is still found). The first copy that arrives answers.
    /// Concurrent misses share one fetch.
    public mutating func onLocalMiss(id: SessionID, now: Instant) -> (FetchStart, [ReplicationDirective]) {
        startFetch(id: id, newestOfAll: false, now: now)
    }

    /// This node is about to serve session `id` as its new primary (its route node cannot
    /// serve it), or is still receiving its state transfer: its own copy may lag behind
    /// writes other owners acknowledged (it was unreachable for a moment, or joined while
    /// the writer did not count it yet). Ask every reachable owner and wait for all the
    /// answers; the newest copy wins. Without a reachable owner, the held copy answers at
    /// once (``FetchStart/notFound`` then means "use what you hold").
    public mutating func onLocalVerify(id: SessionID, now: Instant) -> (FetchStart, [ReplicationDirective]) {
        startFetch(id: id, newestOfAll: true, now: now)
    }

    private mutating func startFetch(id: SessionID, newestOfAll: Bool, now: Instant) -> (FetchStart, [ReplicationDirective]) {
        let key = id.key
        if var pending = pendingFetches[key] {
            if newestOfAll && !pending.newestOfAll {
                // A fetch that takes the first answer is already out: make it wait for all.
                pending.newestOfAll = true
                pendingFetches[key] = pending
            }
            return (.pending, [])
        }
        guard store.tombstones[key] == nil, !stopped else { return (.notFound, []) }
        var asked = Set(replicaTargets(of: id))
        if case .owners = configuration.placement, !peers.contains(id.route) {
            asked = peers
        }
        asked.subtract(unreachable)
        guard !asked.isEmpty else { return (.notFound, []) }
        pendingFetches[key] = PendingFetch(waitingFor: asked, deadline: now + configuration.fetchTimeout, newestOfAll: newestOfAll)
        return (.pending, asked.sorted().map { .send(.fetch(key: key), to: $0) })
    }

    /// What a local write sets on the session it changes.
    static func applyLocal(_ change: LocalChange, base: SessionVersion, version: SessionVersion, now: Instant, to session: inout Session) {
        session.id = change.id
        session.base = base
        session.version = version
        session.maxIdle = change.maxIdle
        session.lastAccess = now
        apply(change.changes, to: &session.attributes)
    }

    static func apply(_ changes: [AttributeChange], to attributes: inout SessionAttributes) {
        for change in changes {
            switch change {
            case .set(let name, let value): attributes[name] = value
            case .remove(let name): attributes[name] = nil
            }
        }
    }

    // MARK: - Events

    func emit(_ kind: SessionEvent.Kind, id: SessionID, origin: SessionEvent.Origin, into directives: inout [ReplicationDirective]) {
        guard eventsEnabled else { return }
        directives.append(.event(SessionEvent(kind, id: id, origin: origin)))
    }

    func emitChangeEvents(
        created: Bool, previousID: SessionID, session: Session, changes: [AttributeChange], origin: SessionEvent.Origin,
        into directives: inout [ReplicationDirective]
    ) {
        if created {
            emit(.created, id: session.id, origin: origin, into: &directives)
        } else if previousID != session.id {
            emit(.idChanged(previous: previousID), id: session.id, origin: origin, into: &directives)
        }
        let names = changes.map(\.name).filter { !$0.hasPrefix("cohort.") }
        if !names.isEmpty {
            emit(.attributesChanged(names), id: session.id, origin: origin, into: &directives)
        }
    }
}

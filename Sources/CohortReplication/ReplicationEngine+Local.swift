import CohortCore

extension ReplicationEngine {
    /// The result of a local commit.
    public struct LocalCommit: Hashable, Sendable {
        /// The session after the commit (`nil` if it was invalidated).
        public var session: Session?
        /// Set when the caller must wait for ``ReplicationDirective/commitCompleted(_:_:)``
        /// with this id before answering (acknowledged durability with live peers).
        public var awaiting: CommitID?
    }

    /// Commits the changes one request made to one session and replicates them.
    ///
    /// Changes are merged per attribute on top of the copy this node holds now, so two
    /// concurrent requests on one session never lose each other's changes to different
    /// attributes; for the same attribute the later commit wins. The new version is one
    /// more than both the held and the loaded version, made by this node.
    public mutating func onLocalCommit(_ change: LocalChange, durability: Durability, now: Instant) -> (LocalCommit, [ReplicationDirective]) {
        var directives: [ReplicationDirective] = []
        let key = change.id.key
        let current = store.sessions[key]
        let base = current?.version ?? .zero
        let counter = max(base.counter, change.loadedVersion.counter, store.tombstones[key]?.version.counter ?? 0) + 1
        let version = SessionVersion(counter: counter, origin: nodeName)

        var result: Session?
        if change.invalidate {
            store.remove(key: key, version: version, forgetAt: now + configuration.tombstoneRetention)
            pendingTouches.remove(key)
            for peer in peers.sorted() {
                directives.append(.send(.removed(key: key, version: version), to: peer))
            }
        } else {
            var session = current ?? Session(id: change.id, version: version, maxIdle: change.maxIdle, lastAccess: now)
            session.id = change.id
            session.version = version
            session.maxIdle = change.maxIdle
            session.lastAccess = now
            Self.apply(change.changes, to: &session.attributes)
            store.sessions[key] = session
            store.tombstones[key] = nil
            pendingTouches.remove(key)
            result = session
            let delta = SessionDelta(id: change.id, base: base, version: version, changes: change.changes, maxIdle: change.maxIdle)
            for peer in peers.sorted() {
                directives.append(.send(.delta(delta), to: peer))
            }
        }

        var awaiting: CommitID?
        let ackers = peers.subtracting(unreachable)
        if durability == .acknowledged && !ackers.isEmpty {
            let id = CommitID(rawValue: nextCommitID)
            nextCommitID += 1
            pendingCommits[id] = PendingCommit(key: key, version: version, waitingFor: ackers, deadline: now + configuration.ackTimeout)
            awaiting = id
        }
        return (LocalCommit(session: result, awaiting: awaiting), directives)
    }

    /// A request read session `key` without changing it: restart its idle clock here and,
    /// if this node owns it, tell the peers at the next touch flush.
    public mutating func onLocalAccess(key: String, now: Instant) {
        guard var session = store.sessions[key] else { return }
        session.lastAccess = now
        store.sessions[key] = session
        if session.id.route == nodeName {
            pendingTouches.insert(key)
        }
    }

    /// Whether a fetch on miss was started.
    public enum FetchStart: Hashable, Sendable {
        /// No live peer to ask: the session does not exist in the cluster.
        case notFound
        /// Wait for ``ReplicationDirective/fetchCompleted(key:_:)``.
        case pending
    }

    /// A request names session `key`, which this node does not hold (it just joined, or the
    /// copy has not arrived): ask every live peer for it. Concurrent misses on one key
    /// share one fetch.
    public mutating func onLocalMiss(key: String, now: Instant) -> (FetchStart, [ReplicationDirective]) {
        if pendingFetches[key] != nil { return (.pending, []) }
        let reachable = peers.subtracting(unreachable)
        guard !reachable.isEmpty, store.tombstones[key] == nil else { return (.notFound, []) }
        pendingFetches[key] = PendingFetch(waitingFor: reachable, deadline: now + configuration.fetchTimeout)
        return (.pending, reachable.sorted().map { .send(.fetch(key: key), to: $0) })
    }

    static func apply(_ changes: [AttributeChange], to attributes: inout [String: [UInt8]]) {
        for change in changes {
            switch change {
            case .set(let name, let value): attributes[name] = value
            case .remove(let name): attributes[name] = nil
            }
        }
    }
}

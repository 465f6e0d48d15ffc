import CohortCore

/// The replication protocol for one node, as a pure state machine.
///
/// The engine holds this node's ``SessionStore`` (every session copy it has), knows which
/// peers are live, and turns inputs into ``ReplicationDirective``s:
/// - a local commit (``onLocalCommit(_:durability:now:)``) becomes one delta sent to each
///   other *owner* of the session (every peer under ``Placement/everyNode``; n-1 nodes
///   under ``Placement/owners(_:)``); under ``Durability/acknowledged`` the commit
///   completes only when every reachable owner acked it, left, or the ack timeout passed;
/// - a peer's message (``onPeerMessage(_:from:now:)``) is applied with the version rule of
///   ``SessionDelta``; gaps are repaired by fetching the whole session from the sender;
/// - membership changes (``onPeerUp(_:now:)``, ``onPeerDown(_:now:)``) start a placement
///   scan: in bounded steps per tick, each copy whose owners changed is *offered* to its
///   new owners, which pull it at their own pace (see ReplicationEngine+Transfer.swift);
/// - ``onTick(now:)`` fires timeouts, advances the scan and the pulls, flushes touches and
///   expires sessions with bounded work per call.
///
/// Ordering obligations for the shell: messages to one peer must be delivered in the
/// order they were emitted (one TCP connection per peer does this).
public struct ReplicationEngine: Sendable {
    /// How long a write may wait for a peer's ack.
    public enum Durability: String, Hashable, Sendable, CaseIterable {
        /// Respond without waiting (Tomcat's default): a crash can lose the last writes.
        case async
        /// Respond after every reachable owner applied the write: survives any one crash.
        case acknowledged
    }

    public struct Configuration: Hashable, Sendable {
        /// Which nodes hold each session.
        public var placement: Placement = .everyNode
        /// How long an acknowledged write waits for its acks before it completes degraded.
        public var ackTimeout: Duration = .seconds(2)
        /// How long a fetch (on miss, or a state-transfer pull) waits for an answer.
        public var fetchTimeout: Duration = .seconds(1)
        /// How often read-only use of sessions is announced to the other owners.
        public var touchInterval: Duration = .seconds(1)
        /// A copy (a session this node is not the primary of) expires by itself only after
        /// `maxIdle × copyExpiryFactor` idle (or its lifetime plus `maxIdle`), in case the
        /// primary died before telling it.
        public var copyExpiryFactor: Int = 2
        /// How long an ended session's id stays blocked, so late copies cannot revive it:
        /// this long, and at least as long as a copy of it may live on another node that
        /// did not hear of the end (`maxIdle × copyExpiryFactor`).
        public var tombstoneRetention: Duration = .seconds(600)
        /// A copy this node holds without being an owner (it served a request for a
        /// session another node owns) is handed back to the owners after this long idle.
        public var strayRetention: Duration = .seconds(10)
        /// Sessions the placement scan looks at per tick (offers are ~40 bytes each).
        public var scanBatch: Int = 8192
        /// Expiry checks per tick.
        public var sweepBatch: Int = 2048
        /// Most entries in one offer message.
        public var offerBatch: Int = 512
        /// Most state-transfer pulls outstanding at once: the receiver's back-pressure
        /// (4,096 sessions of 1 KB are ~4.5 MiB in flight).
        public var pullWindow: Int = 4096
        /// How long a hand-over waits for the owners' acks before offering again.
        public var handoffRetry: Duration = .seconds(3)

        public init() {}
    }

    /// Identifies a local write that waits for acks.
    public struct CommitID: Hashable, Sendable, CustomStringConvertible {
        public var rawValue: UInt64
        public var description: String { "commit#\(rawValue)" }
    }

    /// How a waiting write ended.
    public enum CommitOutcome: Hashable, Sendable {
        /// Every owner that was reachable at commit time applied it (or left the cluster).
        case acknowledged
        /// These owners did not confirm: the ack timeout passed first, or their connection
        /// broke before they acked. The write is held by this node and the owners that did.
        case degraded(missing: [String])
        /// A concurrent write to the same session on another node won (two nodes served
        /// the session at once, e.g. during a failover), and its copy replaced this node's:
        /// this write is lost everywhere. The caller must not report it as done.
        case superseded

        /// A write every awaited peer confirmed, except the `unconfirmed` ones released
        /// from it (their connection broke).
        init(unconfirmed: [String]) {
            self = unconfirmed.isEmpty ? .acknowledged : .degraded(missing: unconfirmed.sorted())
        }
    }

    public let nodeName: String
    public let configuration: Configuration
    public internal(set) var store: SessionStore = .init()
    /// Names of the live peers (nodes holding sessions; never observers, never this node).
    public internal(set) var peers: Set<String> = [] {
        didSet { sortedPeers = peers.sorted() }
    }
    /// ``peers`` in name order, kept with them: every commit under ``Placement/everyNode``
    /// replicates to all of them, and sorting them per commit cost an allocation.
    private(set) var sortedPeers: [String] = []
    /// Live peers whose connection is down right now: writes do not wait for them.
    public internal(set) var unreachable: Set<String> = []
    public internal(set) var statistics = Statistics()
    /// Emit ``ReplicationDirective/event(_:)`` directives (off until someone listens).
    public var eventsEnabled = false

    /// Live node names (this one included) with their rendezvous hashes, sorted by name.
    var view: [(name: String, hash: UInt64)]
    var nextCommitID: UInt64 = 1
    /// Set by ``onStop()``: nothing waits for peers any longer.
    var stopped = false
    var pendingCommits = PendingCommits()
    var pendingFetches: [String: PendingFetch] = [:]
    /// Sessions asked for after a gap: key -> peers waiting for our ack once it arrives.
    var gapRepairs: [String: GapRepair] = [:]
    var pendingTouches: Set<String> = []
    var nextTouchFlush: Instant = .zero
    var nextHousekeeping: Instant = .zero
    var transfer = TransferState()
    var expiry = ExpiryWheel()

    public init(nodeName: String, configuration: Configuration = .init()) {
        self.nodeName = nodeName
        self.configuration = configuration
        self.view = [(nodeName, Rendezvous.nodeHash(nodeName))]
        self.transfer.baseView = [nodeName]
    }

    /// The session with random part `key`, if this node holds a copy.
    public func session(forKey key: String) -> Session? {
        store.sessions[key]
    }

    /// The session with random part `key` if this node holds it and it is within its idle
    /// timeout and lifetime (the sweep removes expired sessions only in steps).
    public func usableSession(forKey key: String, now: Instant) -> Session? {
        guard let session = store.sessions[key], !session.isExpired(now: now) else { return nil }
        return session
    }

    /// Whether `peer` is in the replication group.
    public func isPeer(_ peer: String) -> Bool { peers.contains(peer) }

    /// Writes waiting for acks (for `/cluster` and metrics).
    public var pendingCommitCount: Int { pendingCommits.count }

    /// The live nodes holding session `id` under the current membership, primary first.
    public func owners(of id: SessionID) -> [String] {
        owners(key: id.key, route: id.route, in: view)
    }

    func owners(key: String, route: String, in view: [(name: String, hash: UInt64)]) -> [String] {
        switch configuration.placement {
        case .everyNode:
            if view.contains(where: { $0.name == route }) {
                var owners = [route]
                owners.reserveCapacity(view.count)
                for member in view where member.name != route { owners.append(member.name) }
                return owners
            }
            let names = view.map { $0.name }
            let hash = Rendezvous.keyHash(key)
            let first = view.max { lhs, rhs in
                let l = Rendezvous.score(keyHash: hash, nodeHash: lhs.hash), r = Rendezvous.score(keyHash: hash, nodeHash: rhs.hash)
                return l != r ? l < r : lhs.name > rhs.name
            }
            guard let first else { return [] }
            return [first.name] + names.filter { $0 != first.name }
        case .owners(let count):
            return Rendezvous.owners(key: key, route: route, live: view, count: count)
        }
    }

    /// Whether this node receives every write to session `id` (it is one of its owners),
    /// so that its copy, if it holds one, is current. A copy a non-owner holds (a stray
    /// kept after serving a request, or a former owner's after the session moved) may
    /// lag, and must be checked with the owners before it is served.
    public func ownsCopy(of id: SessionID) -> Bool {
        isOwner(nodeName, of: id)
    }

    /// Whether `name` holds session `id` under the current membership (cheap for
    /// ``Placement/everyNode``: every live node does).
    func isOwner(_ name: String, of id: SessionID) -> Bool {
        if case .everyNode = configuration.placement { return view.contains { $0.name == name } }
        return owners(of: id).contains(name)
    }

    /// The other nodes a write to session `id` goes to.
    func replicaTargets(of id: SessionID) -> [String] {
        switch configuration.placement {
        case .everyNode: sortedPeers
        case .owners: owners(of: id).filter { $0 != nodeName }
        }
    }

    /// How many sessions this node holds as primary, as backup, and as a stray copy.
    public typealias RoleCounts = (primary: Int, backup: Int, stray: Int)

    /// What this node is for the sessions it holds: (primary, backup, stray) counts.
    /// O(sessions), with no allocation per session under ``Placement/everyNode``.
    public func roleCounts() -> RoleCounts {
        var counts = (primary: 0, backup: 0, stray: 0)
        let live = Set(view.map(\.name))
        for session in store.sessions.values {
            let route = session.id.route
            if case .everyNode = configuration.placement, live.contains(route) {
                if route == nodeName { counts.primary += 1 } else { counts.backup += 1 }
                continue
            }
            let owners = owners(of: session.id)
            if owners.first == nodeName {
                counts.primary += 1
            } else if owners.contains(nodeName) {
                counts.backup += 1
            } else {
                counts.stray += 1
            }
        }
        return counts
    }
}

/// What the shell must do after an input.
public enum ReplicationDirective: Hashable, Sendable {
    /// Send `message` to the peer named `to`, after everything sent to it before.
    case send(ReplicationMessage, to: String)
    /// The acknowledged write `id` ended.
    case commitCompleted(ReplicationEngine.CommitID, ReplicationEngine.CommitOutcome)
    /// A fetch on miss for `key` ended: the session, or `nil` if no peer holds it.
    case fetchCompleted(key: String, Session?)
    /// Publish this to the session event listeners.
    case event(SessionEvent)
}

/// Counters the engine keeps; the shell exports them as metrics.
public struct Statistics: Hashable, Sendable {
    public var deltasApplied = 0
    public var duplicatesIgnored = 0
    public var gapsDetected = 0
    /// Two nodes wrote the same session concurrently (during a partition); the higher
    /// version won.
    public var conflicts = 0
    public var sessionsReceived = 0
    public var ackTimeouts = 0
    /// Writes refused because their session ended while the request ran.
    public var writesOnEndedSessions = 0
    /// Local writes refused because, merged into the session as held, they would have
    /// taken it past ``LocalChange/bounds``.
    public var writesOverBounds = 0
    public var expired = 0
    /// Offer entries sent during state transfer.
    public var offered = 0
    /// Sessions pulled from a peer during state transfer.
    public var pulled = 0
    /// Copies dropped after the owners confirmed they hold them.
    public var handedOver = 0
}

struct PendingFetch: Hashable, Sendable {
    var waitingFor: Set<String>
    var deadline: Instant
    /// Wait for every answer and keep the newest (a take-over), instead of the first copy.
    var newestOfAll = false
}

struct GapRepair: Hashable, Sendable {
    var askedFrom: String
    /// Peers waiting for our ack, and the version each waits for.
    var ackTo: [String: SessionVersion]
    var deadline: Instant
}

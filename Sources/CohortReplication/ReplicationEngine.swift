import CohortCore

/// The replication protocol for one node, as a pure state machine.
///
/// The engine holds this node's ``SessionStore`` (every session copy it has), knows which
/// peers are live, and turns inputs into ``ReplicationDirective``s:
/// - a local commit (``onLocalCommit(_:durability:now:)``) becomes one delta sent to every
///   peer; under ``Durability/acknowledged`` the commit completes only when every peer
///   that was live at commit time acked it, left, or the ack timeout passed;
/// - a peer's message (``onPeerMessage(_:from:now:)``) is applied with the version rule of
///   ``SessionDelta``; gaps are repaired by fetching the whole session from the sender;
/// - membership changes (``onPeerUp(_:now:)``, ``onPeerDown(_:now:)``) start a state
///   transfer to the new peer or release writes waiting on the lost one;
/// - ``onTick(now:)`` fires timeouts, flushes touches and expires idle sessions.
///
/// Ordering obligations for the shell: messages to one peer must be delivered in the
/// order they were emitted (one TCP connection per peer does this).
///
/// Placement is every node (Tomcat's DeltaManager): every node holds every session.
public struct ReplicationEngine: Sendable {
    /// How long a write may wait for a peer's ack.
    public enum Durability: String, Hashable, Sendable, CaseIterable {
        /// Respond without waiting (Tomcat's default): a crash can lose the last writes.
        case async
        /// Respond after every live peer applied the write: survives any one crash.
        case acknowledged
    }

    public struct Configuration: Hashable, Sendable {
        /// How long an acknowledged write waits for its acks before it completes degraded.
        public var ackTimeout: Duration = .seconds(2)
        /// How long a fetch on miss waits for peers' answers.
        public var fetchTimeout: Duration = .seconds(1)
        /// How often read-only use of owned sessions is announced to peers.
        public var touchInterval: Duration = .seconds(1)
        /// How often idle sessions are looked for.
        public var sweepInterval: Duration = .seconds(1)
        /// A copy (a session another node owns) expires by itself only after
        /// `maxIdle × copyExpiryFactor` idle, in case its owner died.
        public var copyExpiryFactor: Int = 2
        /// How long an ended session's id stays blocked, so late copies cannot revive it.
        public var tombstoneRetention: Duration = .seconds(600)

        public init() {}
    }

    /// Identifies a local write that waits for acks.
    public struct CommitID: Hashable, Sendable, CustomStringConvertible {
        public var rawValue: UInt64
        public var description: String { "commit#\(rawValue)" }
    }

    /// How a waiting write ended.
    public enum CommitOutcome: Hashable, Sendable {
        /// Every peer that was live at commit time applied it (or left the cluster).
        case acknowledged
        /// The ack timeout passed; these peers had not confirmed.
        case timedOut(missing: [String])
    }

    public let nodeName: String
    public let configuration: Configuration
    public internal(set) var store: SessionStore = .init()
    /// Names of the live peers (nodes holding sessions; never observers, never this node).
    public internal(set) var peers: Set<String> = []
    /// Live peers whose connection is down right now: writes do not wait for them.
    public internal(set) var unreachable: Set<String> = []
    public internal(set) var statistics = Statistics()

    var nextCommitID: UInt64 = 1
    var pendingCommits: [CommitID: PendingCommit] = [:]
    var pendingFetches: [String: PendingFetch] = [:]
    /// Sessions asked for after a gap: key -> peers waiting for our ack once it arrives.
    var gapRepairs: [String: GapRepair] = [:]
    var pendingTouches: Set<String> = []
    var nextTouchFlush: Instant = .zero
    var nextSweep: Instant = .zero

    public init(nodeName: String, configuration: Configuration = .init()) {
        self.nodeName = nodeName
        self.configuration = configuration
    }

    /// The session with random part `key`, if this node holds a copy.
    public func session(forKey key: String) -> Session? {
        store.sessions[key]
    }

    /// The session with random part `key` if this node holds it and it has not been idle
    /// longer than its `maxIdle` (the sweep removes such sessions only periodically).
    public func usableSession(forKey key: String, now: Instant) -> Session? {
        guard let session = store.sessions[key], now - session.lastAccess <= session.maxIdle else { return nil }
        return session
    }

    /// Whether `peer` is in the replication group.
    public func isPeer(_ peer: String) -> Bool { peers.contains(peer) }

    /// Writes waiting for acks (for `/cluster` and metrics).
    public var pendingCommitCount: Int { pendingCommits.count }
}

/// What the shell must do after an input.
public enum ReplicationDirective: Hashable, Sendable {
    /// Send `message` to the peer named `to`, after everything sent to it before.
    case send(ReplicationMessage, to: String)
    /// The acknowledged write `id` ended.
    case commitCompleted(ReplicationEngine.CommitID, ReplicationEngine.CommitOutcome)
    /// A fetch on miss for `key` ended: the session, or `nil` if no peer holds it.
    case fetchCompleted(key: String, Session?)
}

/// Counters the engine keeps; the shell exports them as metrics.
public struct Statistics: Hashable, Sendable {
    public var deltasApplied = 0
    public var duplicatesIgnored = 0
    public var gapsDetected = 0
    public var conflicts = 0
    public var sessionsReceived = 0
    public var ackTimeouts = 0
    public var expired = 0
}

struct PendingCommit: Hashable, Sendable {
    var key: String
    var version: SessionVersion
    var waitingFor: Set<String>
    var deadline: Instant
}

struct PendingFetch: Hashable, Sendable {
    var waitingFor: Set<String>
    var deadline: Instant
}

struct GapRepair: Hashable, Sendable {
    var askedFrom: String
    /// Peers waiting for our ack, and the version each waits for.
    var ackTo: [String: SessionVersion]
    var deadline: Instant
}

import Metrics

/// Counters a node keeps about its cluster traffic: shown on `/cluster` and exported
/// through swift-metrics.
public struct NodeCounters: Hashable, Sendable {
    /// Frames that failed authentication or decoding (the connection was closed, or the
    /// datagram dropped).
    public var framesRejected = 0
    /// Of ``framesRejected``: authenticated frames refused by replay protection (seen
    /// before, older than the window, or sealed for another process or sender).
    public var framesReplayed = 0
    /// Messages dropped because a peer's send queue was full.
    public var sendQueueDrops = 0
    /// Acknowledged writes that completed without every ack (a timeout, or a peer's
    /// connection broke while they waited).
    public var degradedCommits = 0
    /// Connections to peers (re)established.
    public var peerConnects = 0
    /// Successful ``ClusterNode/reloadKeys(_:)`` calls (key roll steps).
    public var keyReloads = 0
    /// New sessions refused because the node held its maximum (HTTP 503).
    public var sessionsRefused = 0
    /// Session writes refused for breaking a per-session bound (HTTP 413).
    public var sessionWritesRefused = 0
    /// Membership verifications that failed (mutual TLS: a node whose certificate is not
    /// the cluster CA's for its name, or that did not answer as the process it claims to
    /// be): the node stays out of membership.
    public var admissionsRefused = 0
    /// Times the node found it had not run for longer than a probe of it may take (a VM
    /// stall, SIGSTOP, a starved process): for a while after, every session it serves is
    /// checked with its owners first, since peers may have taken it over meanwhile. Gaps
    /// within such a period count once.
    public var pauses = 0
    /// Conflicts already logged (the engine counts them).
    var conflictsLogged = 0
}

/// The metrics handles, created once per node.
struct NodeMetrics: Sendable {
    let framesRejected: Counter
    let framesReplayed: Counter
    let sessionsRefused: Counter
    let sessionWritesRefused: Counter
    let sendQueueDrops: Counter
    let degradedCommits: Counter
    let commits: Counter
    let conflicts: Counter
    let admissionsRefused: Counter
    /// How long acknowledged writes waited for their acks (only those that waited).
    let ackWait: Timer

    init(node: String) {
        let dimensions = [("node", node)]
        framesRejected = Counter(label: "cohort_frames_rejected_total", dimensions: dimensions)
        framesReplayed = Counter(label: "cohort_frames_replayed_total", dimensions: dimensions)
        sessionsRefused = Counter(label: "cohort_sessions_refused_total", dimensions: dimensions)
        sessionWritesRefused = Counter(label: "cohort_session_writes_refused_total", dimensions: dimensions)
        sendQueueDrops = Counter(label: "cohort_send_queue_drops_total", dimensions: dimensions)
        degradedCommits = Counter(label: "cohort_degraded_commits_total", dimensions: dimensions)
        commits = Counter(label: "cohort_commits_total", dimensions: dimensions)
        conflicts = Counter(label: "cohort_conflicts_total", dimensions: dimensions)
        admissionsRefused = Counter(label: "cohort_admissions_refused_total", dimensions: dimensions)
        ackWait = Timer(label: ClusterNode.ackWaitMetric, dimensions: dimensions, preferredDisplayUnit: .seconds)
    }
}

extension ClusterNode {
    /// The swift-metrics `Timer` of how long acknowledged writes waited for their acks
    /// (those that waited: a write with no live peer to wait for is not recorded).
    public static let ackWaitMetric = "cohort_ack_wait_seconds"

    /// Histogram buckets that suit ``ackWaitMetric``: acks take well under a millisecond
    /// on a LAN, and up to the ack timeout (2 s by default) when a peer stalls.
    public static let ackWaitBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
    ]
}

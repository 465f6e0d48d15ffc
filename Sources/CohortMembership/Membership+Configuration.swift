extension Membership {
    /// Tunables of the failure detector. The defaults suit a LAN or loopback.
    public struct Configuration: Hashable, Sendable {
        /// How often the shell calls ``Instance/onTick(now:)``. Timeouts are checked on
        /// ticks, so they fire up to one tick late.
        public var tickInterval: Duration = .milliseconds(20)
        /// How often each member probes one other member.
        public var probeInterval: Duration = .milliseconds(200)
        /// How long to wait for a direct ack before asking others to probe indirectly.
        public var pingTimeout: Duration = .milliseconds(60)
        /// How long a whole probe (direct, then indirect) may take before the target is
        /// suspected. Must not exceed ``probeInterval``.
        public var probeTimeout: Duration = .milliseconds(180)
        /// How many other members are asked to probe indirectly (SWIM's k).
        public var indirectProbeCount: Int = 3
        /// A suspect is declared dead after `suspicionMultiplier × max(1, ⌈log2(N)⌉) ×
        /// probeInterval` unless it refutes.
        public var suspicionMultiplier: Int = 3
        /// Each gossip update is piggybacked `gossipRetransmitMultiplier × ⌈log2(N+1)⌉` times.
        public var gossipRetransmitMultiplier: Int = 4
        /// At most this many gossip updates ride on one packet.
        public var maxGossipPerPacket: Int = 8
        /// How often seeds and dead members' addresses are contacted again, so that
        /// restarts and healed partitions are noticed.
        public var reconnectInterval: Duration = .seconds(1)
        /// How long a dead or left member is remembered (so old gossip cannot revive it).
        public var tombstoneRetention: Duration = .seconds(60)
        /// Whether a node takes part only after the shell verified it (its TLS certificate):
        /// until ``Instance/admit(_:now:)``, its packets are dropped and gossip about it is
        /// ignored, and the instance asks for the check with ``Directive/verify(_:)``
        /// (see `Instance+Admission`). Off: every node that holds the key is admitted.
        public var requiresAdmission = false
        /// Longest wait between two verification requests for the same node after failed
        /// checks (the wait starts at ``probeInterval`` and doubles with each failure).
        public var maxAdmissionBackoff: Duration = .seconds(5)

        public init() {}

        /// The suspicion timeout for a cluster of `clusterSize` members.
        public func suspicionTimeout(clusterSize: Int) -> Duration {
            probeInterval * (suspicionMultiplier * max(1, Self.ceilLog2(clusterSize)))
        }

        /// An upper bound on the time from a member's crash until every live member has
        /// marked it dead, for a cluster of `clusterSize` members (the crashed one included),
        /// assuming the network delivers packets between the survivors and the membership is
        /// otherwise stable. Every survivor reaches the verdict on its own within it:
        ///
        /// - it probes members round-robin from a shuffled list, so it probes the crashed
        ///   member within `2 × (N − 1)` probe intervals (one round may end and the next
        ///   start with it last), and suspects it `probeTimeout` later, unless gossip made
        ///   it suspect sooner;
        /// - it declares it dead once its own suspicion is older than the suspicion timeout;
        /// - plus one tick of slack for each of the three timed steps (probe start, probe
        ///   timeout, suspicion timeout).
        ///
        /// Gossip of the first verdict usually reaches everyone much sooner; the bound adds
        /// `⌈log2(N)⌉ + 1` probe intervals as margin for that spread (and for shells that
        /// tick late).
        public func detectionBound(clusterSize: Int) -> Duration {
            let n = max(2, clusterSize)
            let probeWait = probeInterval * (2 * (n - 1))
            let spread = probeInterval * (Self.ceilLog2(n) + 1)
            return probeWait + probeTimeout + suspicionTimeout(clusterSize: n) + spread + tickInterval * 3
        }

        static func ceilLog2(_ n: Int) -> Int {
            guard n > 1 else { return 0 }
            return Int.bitWidth - (n - 1).leadingZeroBitCount
        }
    }
}

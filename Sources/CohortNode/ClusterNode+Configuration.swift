import CohortCore
import CohortMembership
import CohortReplication
import CohortWire

extension ClusterNode {
    /// Everything a node needs to join a cluster.
    public struct Configuration: Sendable {
        /// This node's name: its route in session ids. See ``NodeID/isValidName(_:)``.
        public var name: String
        /// Where to listen for cluster traffic: UDP (membership) and TCP (replication) on
        /// the same port. Port 0 picks a free port (tests).
        public var clusterAddress: Address
        /// The address other nodes use to reach this one; defaults to ``clusterAddress``
        /// with the port actually bound. Required when ``clusterAddress`` is an "any
        /// address" such as `0.0.0.0` (``ClusterNode/bind(configuration:eventLoopGroup:logger:)``
        /// throws otherwise).
        public var advertisedAddress: Address?
        /// Where this node serves HTTP, announced to members (the balancer routes there):
        /// an address they can connect to, never `0.0.0.0`.
        public var httpAddress: Address?
        /// Addresses of members to contact first (static discovery).
        public var seeds: [Address]
        /// Discovery by multicast beacon, in addition to the seeds (off by default).
        public var multicast: MulticastConfiguration?
        /// How frames are protected: sealed with the cluster key, or (only with an explicit
        /// `--insecure`) sent in the clear.
        public var protection: FrameProtection
        /// Whether a commit waits for every peer's ack.
        public var durability: ReplicationEngine.Durability
        public var role: Membership.Role
        public var membership: Membership.Configuration
        public var replication: ReplicationEngine.Configuration
        public var limits: WireLimits
        /// Bytes that may wait to be written to one peer; beyond that, messages to it are
        /// dropped and counted (the peer repairs the gap by fetching whole sessions).
        public var maxPendingBytesPerPeer: Int
        /// Longest wait between reconnect attempts to a peer.
        public var maxReconnectBackoff: Duration
        /// How long a starting node that has seeds waits for discovery before it decides
        /// it is alone (it then reports ready if no peer answered).
        public var discoveryGrace: Duration
        /// Longest a starting node reports not ready (`/health` 503) while its state
        /// transfer runs; after that it reports ready anyway, logs what was missing, and
        /// fetches those sessions on a miss.
        public var readinessTimeout: Duration
        /// Mutual TLS for replication connections, in addition to sealed frames (`nil`: off).
        /// When set, membership also admits a node only after its certificate was verified
        /// (``Membership/Configuration/requiresAdmission`` is turned on, whatever
        /// ``membership`` says).
        public var tls: ClusterTLS?

        public init(
            name: String,
            clusterAddress: Address,
            seeds: [Address] = [],
            protection: FrameProtection,
            durability: ReplicationEngine.Durability = .acknowledged
        ) {
            self.name = name
            self.clusterAddress = clusterAddress
            self.advertisedAddress = nil
            self.httpAddress = nil
            self.seeds = seeds
            self.multicast = nil
            self.protection = protection
            self.durability = durability
            self.role = .node
            self.membership = .init()
            self.replication = .init()
            self.limits = .init()
            self.maxPendingBytesPerPeer = 32 << 20
            self.maxReconnectBackoff = .seconds(1)
            self.discoveryGrace = .seconds(3)
            self.readinessTimeout = .seconds(120)
            self.tls = nil
        }
    }
}

extension FrameProtection {
    /// Whether frames are sealed with a cluster key.
    var isSealed: Bool {
        switch self {
        case .sealed, .keyring: true
        case .insecure: false
        }
    }
}

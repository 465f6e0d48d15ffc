public import CohortCore

extension Membership {
    /// One node's view of the cluster: a pure, SWIM-style membership state machine.
    ///
    /// The shell calls ``start(now:)`` once, then ``onTick(now:)`` every
    /// ``Configuration/tickInterval`` and ``onPacket(_:now:)`` for every packet that arrives,
    /// and carries out the returned ``Directive``s in order. ``leave(now:)`` announces a
    /// graceful departure; after it the instance ignores every input.
    ///
    /// Contracts:
    /// - Time comes only from the `now` arguments, which must never go backwards; all
    ///   timeouts are checked on ticks, so each fires up to one tick late. No timer directive
    ///   is ever returned.
    /// - Randomness (probe order, indirect probe helpers) comes only from the injected
    ///   ``SplitMix64``: the same seed and the same inputs give the same directives.
    /// - Remote input never traps: unknown sequence numbers, unknown targets, packets from
    ///   this node itself and out-of-range values are ignored.
    /// - Each member (a ``NodeID``, so a name, an address and a per-process uid) moves
    ///   through alive ⇄ suspect → dead, or to left, by the precedence rules of
    ///   ``supersedes(_:_:)``. A restarted process (same name and address, new uid) replaces
    ///   the old uid as soon as a packet from it arrives.
    ///
    /// - With ``Configuration/requiresAdmission``, only admitted nodes take part: packets
    ///   from any other sender are dropped (not acked, their gossip unread), gossip and acks
    ///   about other nodes are not applied, and a ``Directive/verify(_:)`` asks the shell to
    ///   check the node instead (see ``admit(_:now:)``). Without it, every sender is admitted.
    ///
    /// The instance is split by aspect: probing and failure detection (`Instance+Probe`),
    /// gossip and the precedence rules (`Instance+Gossip`), seeds, reconnects and leave
    /// (`Instance+Discovery`), packet dispatch (`Instance+Packet`) and the admission gate
    /// (`Instance+Admission`).
    public struct Instance: Sendable {
        /// What this node knows about one other member.
        struct Record: Sendable {
            var member: Member
            /// When `member.status` last changed (the start of a suspicion, the time of death).
            var changedAt: Instant
            /// When this node last answered a packet from this (suspect or dead) member with a
            /// ping that carries its record, so that it is asked at most once per probe interval.
            var lastRefutationRequest: Instant?
        }

        let configuration: Configuration
        var random: SplitMix64
        /// This node; `status` is `.alive` until ``leave(now:)``, then `.left`.
        var me: Member
        let seeds: [Address]
        var started = false

        /// Every other member, live or tombstone.
        var records: [NodeID: Record] = [:]
        /// Uids seen for each name, oldest first (usually one).
        var idsByName: [String: [NodeID]] = [:]
        /// Number of records that are alive or suspect.
        var liveCount = 0
        /// Records that are suspect now (checked against the suspicion timeout on ticks).
        var suspects: Set<NodeID> = []

        var gossip = GossipQueue()
        var probe = ProbeSchedule()
        /// Pings this node sent on behalf of a ping request, by this node's sequence number.
        var relays: [UInt64: Relay] = [:]
        var nextSequence: UInt64 = 1
        var nextReconnectAt = Instant.zero
        /// When this node last reached out after being declared dead (see `rejoin`).
        var lastRejoinAt: Instant?
        /// Verified nodes and pending verifications (``Configuration/requiresAdmission``).
        var admission = Membership.AdmissionGate()

        /// Creates a node's membership view.
        ///
        /// - Parameters:
        ///   - myself: this process's identity (a fresh `uid` per process start).
        ///   - role: whether this node serves sessions or only watches.
        ///   - httpAddress: where this node serves HTTP, gossiped to others.
        ///   - seeds: addresses contacted at start and every ``Configuration/reconnectInterval``
        ///     while no live member has them. This node's own address is skipped.
        ///   - configuration: the failure detector's tunables.
        ///   - random: the generator for every random choice (seed it in tests).
        public init(
            myself: NodeID,
            role: Role = .node,
            httpAddress: Address? = nil,
            seeds: [Address],
            configuration: Configuration = .init(),
            random: SplitMix64
        ) {
            self.me = Member(id: myself, incarnation: 0, status: .alive, role: role, httpAddress: httpAddress)
            self.configuration = configuration
            self.random = random
            var unique: [Address] = []
            for seed in seeds where seed != myself.address && !unique.contains(seed) {
                unique.append(seed)
            }
            self.seeds = unique
        }

        /// This node as it gossips itself: `.alive` at its current incarnation (`.left`
        /// after ``leave(now:)``).
        public var myself: Member { me }

        /// Every known member including this node, with dead and left tombstones, sorted by
        /// name (then uid).
        public var members: [Member] {
            var all = records.values.map(\.member)
            all.append(me)
            all.sort { Self.precedes($0.id, $1.id) }
            return all
        }

        /// The member called `name`: of its uids, the most recently first seen that is live,
        /// else the most recently first seen; `nil` if none is known. For this node's own
        /// name, this node.
        public func member(named name: String) -> Member? {
            if name == me.id.name { return me }
            guard let ids = idsByName[name] else { return nil }
            var latest: Member?
            for id in ids.reversed() {
                guard let member = records[id]?.member else { continue }
                if member.status.isLive { return member }
                if latest == nil { latest = member }
            }
            return latest
        }

        /// What this node knows about exactly `id` (this node itself included), or `nil`.
        public func member(_ id: NodeID) -> Member? {
            id == me.id ? me : records[id]?.member
        }

        /// Alive and suspect members other than this node, sorted by name (then uid).
        public var liveMembers: [Member] {
            records.values.lazy.map(\.member).filter(\.status.isLive).sorted { Self.precedes($0.id, $1.id) }
        }

        /// The number of live members including this node: the `N` of every formula in
        /// ``Configuration``.
        public var clusterSize: Int { liveCount + 1 }

        /// The ids of live members other than this node, in a deterministic order
        /// (dictionary order is not, and simulations must replay from a seed).
        var sortedLiveIDs: [NodeID] {
            records.values.lazy.filter(\.member.status.isLive).map(\.member.id).sorted(by: Self.precedes)
        }

        /// A total, deterministic order on ids: by name, then address, then uid.
        static func precedes(_ lhs: NodeID, _ rhs: NodeID) -> Bool {
            if lhs.name != rhs.name { return lhs.name.utf8.lexicographicallyPrecedes(rhs.name.utf8) }
            if lhs.address.host != rhs.address.host {
                return lhs.address.host.utf8.lexicographicallyPrecedes(rhs.address.host.utf8)
            }
            if lhs.address.port != rhs.address.port { return lhs.address.port < rhs.address.port }
            return lhs.uid < rhs.uid
        }

        mutating func makeSequence() -> UInt64 {
            defer { nextSequence &+= 1 }
            return nextSequence
        }
    }
}

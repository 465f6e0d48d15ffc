import CohortCore

/// SWIM-style cluster membership and failure detection, as a pure state machine.
///
/// ``Membership/Instance`` holds one node's view of the cluster. Its shell feeds it
/// packets that arrived (``Membership/Instance/onPacket(_:now:)``) and a periodic tick
/// (``Membership/Instance/onTick(now:)``), and carries out the ``Membership/Directive``s
/// it returns (send a packet, report a member change). It never reads a clock, never
/// draws global randomness and never touches a socket.
///
/// Glossary: a *member* is a node process as seen by membership (``Member``); its
/// *incarnation* is a counter only the member itself increments, to refute suspicion;
/// *gossip* is member state piggybacked on every packet.
public enum Membership {}

extension Membership {
    /// What a node believes about a member.
    public enum Status: UInt8, Hashable, Sendable, CustomStringConvertible {
        /// Answering probes.
        case alive = 0
        /// Missed a probe; declared dead unless it refutes within the suspicion timeout.
        case suspect = 1
        /// Declared dead (crashed or unreachable); no longer probed, kept as a tombstone.
        case dead = 2
        /// Left gracefully; removed at once, kept as a tombstone.
        case left = 3

        public var description: String {
            switch self {
            case .alive: "alive"
            case .suspect: "suspect"
            case .dead: "dead"
            case .left: "left"
            }
        }

        /// Whether the member still counts as part of the cluster (alive or suspect).
        public var isLive: Bool { self == .alive || self == .suspect }
    }

    /// What a member does in the cluster.
    public enum Role: UInt8, Hashable, Sendable {
        /// Serves HTTP and holds sessions.
        case node = 0
        /// Watches membership (a balancer); holds no sessions.
        case observer = 1
    }

    /// One member as a node sees it; also the unit of gossip.
    public struct Member: Hashable, Sendable, CustomStringConvertible {
        public var id: NodeID
        public var incarnation: UInt64
        public var status: Status
        public var role: Role
        /// Where the member serves HTTP, if it does (the balancer routes there).
        public var httpAddress: Address?

        public init(id: NodeID, incarnation: UInt64, status: Status, role: Role = .node, httpAddress: Address? = nil) {
            self.id = id
            self.incarnation = incarnation
            self.status = status
            self.role = role
            self.httpAddress = httpAddress
        }

        public var description: String { "\(id)#\(id.uid)/\(incarnation) \(status)" }
    }

    /// The membership protocol's messages.
    public enum Message: Hashable, Sendable {
        /// "Are you alive?" The receiver answers with an ``ack(sequence:target:)`` naming itself.
        case ping(sequence: UInt64)
        /// "Please ping `target` for me" (SWIM's indirect probe). The receiver pings the
        /// target and, if it answers, forwards an ack with the original `sequence`.
        case pingRequest(sequence: UInt64, target: NodeID)
        /// "`target` is alive", in answer to the ping or ping request with `sequence`.
        case ack(sequence: UInt64, target: Member)
        /// The sender leaves the cluster gracefully; remove it at once.
        case leave
    }

    /// One datagram: who sends it (its current state), the message, and piggybacked gossip.
    ///
    /// The sender's identity is trusted only because the whole packet is sealed with the
    /// cluster key by the wire layer.
    public struct Packet: Hashable, Sendable {
        public var from: Member
        public var message: Message
        public var gossip: [Member]

        public init(from: Member, message: Message, gossip: [Member] = []) {
            self.from = from
            self.message = message
            self.gossip = gossip
        }
    }

    /// What the shell must do after an input.
    public enum Directive: Hashable, Sendable {
        /// Send `packet` as one datagram to `address`.
        case send(Packet, to: Address)
        /// A member was added or changed status (`previous == nil`: first seen).
        /// Emitted for other members only, in the order the changes happened.
        case memberChanged(Member, previous: Status?)
        /// Check that the node `id` claims to be is the one at `id.address` (with mutual
        /// TLS: dial it and verify its certificate names `id.name` and that process `id.uid`
        /// answers), then call ``Instance/admit(_:now:)`` or
        /// ``Instance/rejectAdmission(_:now:)``. Emitted only with
        /// ``Configuration/requiresAdmission``, for a node not admitted yet, at most once per
        /// probe interval per node (backing off after failures); a request the shell drops
        /// is asked again later, so the shell may ignore one while it checks that node.
        case verify(NodeID)
    }
}

public import CohortCore
public import CohortMembership

/// A deterministic simulation of a cluster of ``Membership/Instance``s on a simulated network,
/// in the spirit of etcd raft's test `network`.
///
/// Nodes are numbered `0..<count`, named `node<i>` and listen on `node<i>.sim:7946`. Time is
/// a simulated ``Instant`` that only ``advance(by:)`` moves: each step delivers, in time order,
/// every packet due up to the next tick (a packet sent at `t` arrives at `t + latency` of its
/// link), then ticks every running node. Packet loss uses a generator seeded from `seed`, so a
/// run replays exactly from its seed; nothing iterates a dictionary where order matters.
///
/// Faults: ``crash(_:)`` (the node stops ticking and receiving), ``restart(_:)`` (a new process,
/// new uid, same name and address), ``partition(_:)`` / ``isolate(_:)`` / ``heal()``, and
/// per-link loss (``setLoss(from:to:probability:)``). Every ``Membership/Directive/memberChanged(_:previous:)``
/// is recorded in ``changes``.
///
/// With ``Membership/Configuration/requiresAdmission``, each ``Membership/Directive/verify(_:)``
/// is answered after ``verificationLatency`` as a shell's certificate check would be (see
/// `MembershipSimulation+Admission`), and recorded in ``verifications``.
public struct MembershipSimulation {
    /// One recorded ``Membership/Directive/memberChanged(_:previous:)``.
    public struct Change: Hashable, Sendable, CustomStringConvertible {
        public var time: Instant
        /// The node that reported the change.
        public var observer: Int
        public var member: Membership.Member
        public var previous: Membership.Status?

        public var description: String {
            "\(time) node\(observer): \(member) (was \(previous.map(\.description) ?? "unknown"))"
        }
    }

    struct Node {
        var id: NodeID
        var role: Membership.Role
        var seeds: [Address]
        var instance: Membership.Instance
        var isUp: Bool
    }

    struct Link: Hashable {
        var from: Int
        var to: Int
    }

    /// One packet put on the network (see ``recordsPackets``).
    public struct SentPacket: Hashable, Sendable, CustomStringConvertible {
        public var time: Instant
        public var sender: Int
        /// The node at the destination address when it was sent (`nil`: nobody).
        public var receiver: Int?
        public var packet: Membership.Packet
        public var dropped: Bool

        public var description: String {
            let gossip = packet.gossip.map { "\($0.id.name)/\($0.incarnation) \($0.status)" }
            return "\(time) node\(sender)/\(packet.from.incarnation) -> \(receiver.map { "node\($0)" } ?? "?"): "
                + "\(packet.message)\(dropped ? " (lost)" : "") gossip \(gossip)"
        }
    }

    public let configuration: Membership.Configuration
    /// Whether to keep every packet sent in ``packets`` (for debugging; off by default).
    public var recordsPackets = false
    /// The packets sent while ``recordsPackets`` was on.
    public private(set) var packets: [SentPacket] = []
    /// The current simulated time.
    public private(set) var now: Instant = .zero
    /// Latency of every link without its own (see ``setLatency(from:to:_:)``).
    public var latency: Duration
    /// Every member change reported by any node, in order.
    public private(set) var changes: [Change] = []
    /// Packets handed to the network, delivered, and lost (to loss, partitions or down nodes).
    public private(set) var packetsSent = 0
    public private(set) var packetsDelivered = 0
    public private(set) var packetsDropped = 0

    var nodes: [Node] = []
    var nodeByAddress: [Address: Int] = [:]
    var inFlight = PacketQueue()
    /// Draws uids and per-process generator seeds.
    var seeder: SplitMix64
    /// Draws packet loss.
    var network: SplitMix64
    var loss: [Link: Double] = [:]
    var linkLatency: [Link: Duration] = [:]
    /// Partition group of each node; `nil` when the network is whole.
    var groups: [Int]?

    /// Whether node `target`'s certificate passes when `verifier` checks it for the
    /// `attempt`-th time (counted from 0 per verifier and target). By default every
    /// certificate is good; a node whose certificate comes from another CA always fails.
    public var verification: (_ verifier: Int, _ target: Int, _ attempt: Int) -> Bool = { _, _, _ in true }
    /// How long a verification takes (a TLS dial and handshake).
    public var verificationLatency: Duration = .milliseconds(2)
    /// Every verification answered so far, in order.
    public internal(set) var verifications: [Verification] = []
    var pendingChecks: [PendingCheck] = []
    var verificationAttempts: [Link: Int] = [:]

    /// Creates `count` nodes (not yet started; see ``startAll()``).
    ///
    /// - Parameters:
    ///   - seeds: the seed nodes of each node; by default every node has just `node0`.
    ///   - roles: the role of each node; `.node` by default.
    public init(
        nodes count: Int,
        seed: UInt64,
        configuration: Membership.Configuration = .init(),
        latency: Duration = .milliseconds(1),
        seeds: (Int) -> [Int] = { _ in [0] },
        roles: (Int) -> Membership.Role = { _ in .node }
    ) {
        self.configuration = configuration
        self.latency = latency
        self.seeder = SplitMix64(seed: seed)
        self.network = SplitMix64(seed: seeder.next())
        for index in 0..<count {
            let address = Self.address(of: index)
            let id = NodeID(name: "node\(index)", address: address, uid: seeder.next())
            let seedAddresses = seeds(index).map(Self.address(of:))
            let instance = Membership.Instance(
                myself: id,
                role: roles(index),
                httpAddress: Address(host: address.host, port: 8080),
                seeds: seedAddresses,
                configuration: configuration,
                random: SplitMix64(seed: seeder.next())
            )
            nodes.append(Node(id: id, role: roles(index), seeds: seedAddresses, instance: instance, isUp: false))
            nodeByAddress[address] = index
        }
    }

    /// The membership address of node `index`.
    public static func address(of index: Int) -> Address {
        Address(host: "node\(index).sim", port: 7946)
    }

    // MARK: - Inspecting

    /// The number of nodes (running or not).
    public var count: Int { nodes.count }

    /// The indices of the running nodes.
    public var upNodes: [Int] { nodes.indices.filter { nodes[$0].isUp } }

    public func isUp(_ node: Int) -> Bool { nodes[node].isUp }

    /// The identity of the current process of `node`.
    public func nodeID(_ node: Int) -> NodeID { nodes[node].id }

    /// The state machine of the current process of `node`.
    public func instance(_ node: Int) -> Membership.Instance { nodes[node].instance }

    /// What `observer` believes about the current process of `target` (`nil`: unknown).
    public func status(of target: Int, seenBy observer: Int) -> Membership.Status? {
        nodes[observer].instance.member(nodes[target].id)?.status
    }

    /// Whether every running node sees every other running node's current process alive.
    public func allRunningSeeEachOtherAlive() -> Bool {
        let up = upNodes
        for observer in up {
            for target in up where target != observer && status(of: target, seenBy: observer) != .alive {
                return false
            }
        }
        return true
    }

    /// The recorded changes that made some member `.dead`.
    public var deaths: [Change] { changes.filter { $0.member.status == .dead } }

    // MARK: - Running

    /// Starts every node that is not running yet (it pings its seeds).
    public mutating func startAll() {
        for index in nodes.indices where !nodes[index].isUp {
            start(index)
        }
    }

    /// Starts `node`'s current process if it is not running.
    public mutating func start(_ node: Int) {
        guard !nodes[node].isUp else { return }
        nodes[node].isUp = true
        let directives = nodes[node].instance.start(now: now)
        perform(directives, from: node)
    }

    /// Advances time by `duration`, rounded up to whole ticks (see the type's documentation).
    public mutating func advance(by duration: Duration) {
        let end = now + duration
        while now < end {
            step()
        }
    }

    /// Advances tick by tick until `condition` holds (checked before the first step and after
    /// each) or `timeout` has passed. Returns the time it took, or `nil` on timeout.
    @discardableResult
    public mutating func advance(
        until condition: (MembershipSimulation) -> Bool,
        timeout: Duration
    ) -> Duration? {
        let start = now
        while true {
            if condition(self) { return now - start }
            if now - start >= timeout { return nil }
            step()
        }
    }

    /// One tick: deliver the packets and verification answers due by the next tick (in time
    /// order, packets first at equal times), then tick every running node.
    mutating func step() {
        let tickAt = now + configuration.tickInterval
        while true {
            let packetAt = inFlight.first.map(\.deliverAt)
            let checkAt = pendingChecks.first.map(\.doneAt)
            if let packetAt, packetAt <= tickAt, checkAt.map({ packetAt <= $0 }) ?? true, let next = inFlight.first {
                inFlight.removeFirst()
                now = next.deliverAt
                deliver(next)
            } else if let checkAt, checkAt <= tickAt {
                let check = pendingChecks.removeFirst()
                now = checkAt
                complete(check)
            } else {
                break
            }
        }
        now = tickAt
        for index in nodes.indices where nodes[index].isUp {
            let directives = nodes[index].instance.onTick(now: now)
            perform(directives, from: index)
        }
    }

    mutating func deliver(_ flight: PacketQueue.Flight) {
        guard let target = nodeByAddress[flight.address], nodes[target].isUp,
              groups.map({ $0[flight.sender] == $0[target] }) ?? true
        else {
            packetsDropped += 1
            return
        }
        packetsDelivered += 1
        let directives = nodes[target].instance.onPacket(flight.packet, now: now)
        perform(directives, from: target)
    }

    /// Carries out `node`'s directives: records changes, puts packets on the network.
    mutating func perform(_ directives: [Membership.Directive], from node: Int) {
        for directive in directives {
            switch directive {
            case .memberChanged(let member, let previous):
                changes.append(Change(time: now, observer: node, member: member, previous: previous))
            case .verify(let id):
                startCheck(of: id, by: node)
            case .send(let packet, let address):
                packetsSent += 1
                let target = nodeByAddress[address]
                let link = target.map { Link(from: node, to: $0) }
                let probability = link.flatMap { loss[$0] } ?? 0
                let lost = target == nil || (probability > 0 && Double.random(in: 0..<1, using: &network) < probability)
                if recordsPackets {
                    packets.append(SentPacket(time: now, sender: node, receiver: target, packet: packet, dropped: lost))
                }
                if lost {
                    packetsDropped += 1
                    continue
                }
                let delay = link.flatMap { linkLatency[$0] } ?? latency
                inFlight.insert(PacketQueue.Flight(deliverAt: now + delay, sender: node, address: address, packet: packet))
            }
        }
    }
}

import CohortCore
import CohortMembership

extension MembershipSimulation {
    /// Stops `node` abruptly: it no longer ticks, and packets to its address are lost.
    /// Packets it already sent are still delivered.
    public mutating func crash(_ node: Int) {
        nodes[node].isUp = false
    }

    /// Replaces `node` with a new process (a new uid and generator, same name, address,
    /// role and seeds) and starts it. A running node is crashed first.
    public mutating func restart(_ node: Int) {
        let old = nodes[node]
        let id = NodeID(name: old.id.name, address: old.id.address, uid: seeder.next())
        let instance = Membership.Instance(
            myself: id,
            role: old.role,
            httpAddress: old.instance.myself.httpAddress,
            seeds: old.seeds,
            configuration: configuration,
            random: SplitMix64(seed: seeder.next())
        )
        nodes[node] = Node(id: id, role: old.role, seeds: old.seeds, instance: instance, isUp: false)
        start(node)
    }

    /// `node` leaves gracefully: its ``Membership/Instance/leave(now:)`` packets are sent,
    /// then the node stops (like a shell that shuts down after leaving).
    public mutating func leave(_ node: Int) {
        guard nodes[node].isUp else { return }
        let directives = nodes[node].instance.leave(now: now)
        perform(directives, from: node)
        nodes[node].isUp = false
    }

    /// Splits the network: nodes in different groups cannot reach each other (packets in
    /// flight between them are lost too). Nodes in no group form one more group together.
    public mutating func partition(_ partition: [[Int]]) {
        var assignment = Array(repeating: partition.count, count: nodes.count)
        for (group, members) in partition.enumerated() {
            for node in members { assignment[node] = group }
        }
        groups = assignment
    }

    /// Cuts `node` off from every other node.
    public mutating func isolate(_ node: Int) {
        partition([[node]])
    }

    /// Ends any partition (loss and latency settings stay).
    public mutating func heal() {
        groups = nil
    }

    /// Makes packets from `from` to `to` be lost with `probability` (0 restores the link).
    public mutating func setLoss(from: Int, to: Int, probability: Double) {
        loss[Link(from: from, to: to)] = probability > 0 ? probability : nil
    }

    /// Sets the loss of the link between `a` and `b`, both directions.
    public mutating func setLoss(between a: Int, and b: Int, probability: Double) {
        setLoss(from: a, to: b, probability: probability)
        setLoss(from: b, to: a, probability: probability)
    }

    /// Sets the loss of every link into `node`.
    public mutating func setLoss(to node: Int, probability: Double) {
        for other in nodes.indices where other != node {
            setLoss(from: other, to: node, probability: probability)
        }
    }

    /// Sets the latency of the link from `from` to `to` (`nil`: back to ``latency``).
    public mutating func setLatency(from: Int, to: Int, _ latency: Duration?) {
        linkLatency[Link(from: from, to: to)] = latency
    }
}

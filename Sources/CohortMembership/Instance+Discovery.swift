public import CohortCore

extension Membership.Instance {
    /// Joins the cluster: pings every seed (the acks introduce this node and the seeds to
    /// each other, and gossip does the rest). Later seeds are pinged again every
    /// ``Membership/Configuration/reconnectInterval`` while no live member has their address.
    /// Calling it again does nothing.
    public mutating func start(now: Instant) -> [Membership.Directive] {
        var directives: [Membership.Directive] = []
        guard !started, me.status == .alive else { return directives }
        started = true
        probe.nextProbeAt = now + configuration.probeInterval
        nextReconnectAt = now + configuration.reconnectInterval
        reconnect(into: &directives)
        return directives
    }

    /// Pings every seed that no live member (nor this node) has as its address, and the
    /// address of every dead member that no live member has taken over, at most once per
    /// address. A ping to a dead member carries its dead record, so that if it is in fact
    /// running (a healed partition) it refutes and both sides readmit each other.
    mutating func reconnect(into directives: inout [Membership.Directive]) {
        var covered: Set<Address> = [me.id.address]
        var dead: [NodeID] = []
        for record in records.values {
            if record.member.status.isLive {
                covered.insert(record.member.id.address)
            } else if record.member.status == .dead {
                dead.append(record.member.id)
            }
        }
        for seed in seeds where !covered.contains(seed) {
            covered.insert(seed)
            directives.append(.send(makePacket(.ping(sequence: makeSequence()), to: nil), to: seed))
        }
        // Newest-first per address would need first-seen order; any dead uid at the address
        // will do, since its refutation (or the restarted process's ack) settles it.
        for id in dead.sorted(by: Self.precedes) where !covered.contains(id.address) {
            covered.insert(id.address)
            send(.ping(sequence: makeSequence()), to: id, into: &directives)
        }
    }

    /// Leaves the cluster gracefully: sends ``Membership/Message/leave`` to every live member,
    /// which marks this node left at once and spreads the news. Afterwards ``myself`` is
    /// `.left` and every input is ignored; the shell should stop the node once the packets
    /// are sent. Calling it again does nothing.
    public mutating func leave(now: Instant) -> [Membership.Directive] {
        var directives: [Membership.Directive] = []
        guard me.status == .alive else { return directives }
        me.status = .left
        for id in sortedLiveIDs {
            send(.leave, to: id, into: &directives)
        }
        return directives
    }
}

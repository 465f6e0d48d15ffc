public import CohortCore

extension Membership.Instance {
    /// Handles one packet that arrived from another node.
    ///
    /// - The sender (`packet.from`) is proof that it runs at that incarnation: it is learned
    ///   or updated as `alive` (`.leave` marks it `.left` instead). The first packet from a
    ///   new uid with the name and address of a live member marks that older uid dead (the
    ///   process restarted).
    /// - A sender this node holds dead at the same or a higher incarnation is not revived:
    ///   it is answered (at most once per probe interval) with a ping that carries its dead
    ///   record, so that it refutes with a higher incarnation; its pings are still acked,
    ///   and of its gossip only the news about this node is read (its view is stale). A
    ///   sender held suspect is pinged with its suspect record the same way.
    /// - Packets from a left member, from this node or from another uid with this node's
    ///   name or address are ignored, as is everything once this node has left or before
    ///   ``start(now:)``.
    /// - With ``Membership/Configuration/requiresAdmission``, a packet from a sender that is
    ///   not admitted is dropped whole (no ack, no gossip read); a verification of the sender
    ///   is requested instead (rate-limited, see ``admit(_:now:)``).
    /// - Then the gossip is applied and the message handled: a ping is acked, a ping request
    ///   relayed, an ack ends a probe or is forwarded.
    public mutating func onPacket(_ packet: Membership.Packet, now: Instant) -> [Membership.Directive] {
        var directives: [Membership.Directive] = []
        let sender = packet.from.id
        guard started, me.status == .alive, sender != me.id, !conflictsWithMyself(sender) else {
            return directives
        }
        guard isAdmitted(sender) else {
            requestAdmission(sender, now: now, into: &directives)
            return directives
        }
        let known = records[sender]?.member
        if known?.status == .left { return directives }

        if case .leave = packet.message {
            if known != nil {
                var left = packet.from
                left.status = .left
                apply(left, now: now, into: &directives)
            }
            receive(gossip: packet.gossip, onlyAboutMyself: false, now: now, into: &directives)
            return directives
        }

        if let known, known.status == .dead, packet.from.incarnation <= known.incarnation {
            receive(gossip: packet.gossip, onlyAboutMyself: true, now: now, into: &directives)
            askToRefute(sender, now: now, into: &directives)
            if case .ping(let sequence) = packet.message {
                send(.ack(sequence: sequence, target: me), to: sender, into: &directives)
            }
            return directives
        }

        var alive = packet.from
        alive.status = .alive
        apply(alive, now: now, into: &directives)
        retireEarlierLives(of: sender, now: now, into: &directives)
        receive(gossip: packet.gossip, onlyAboutMyself: false, now: now, into: &directives)
        if records[sender]?.member.status == .suspect {
            askToRefute(sender, now: now, into: &directives)
        }

        switch packet.message {
        case .ping(let sequence):
            send(.ack(sequence: sequence, target: me), to: sender, into: &directives)
        case .pingRequest(let sequence, let target):
            onPingRequest(sequence: sequence, target: target, from: sender, now: now, into: &directives)
        case .ack(let sequence, let target):
            onAck(sequence: sequence, target: target, now: now, into: &directives)
        case .leave:
            break  // handled above
        }
        return directives
    }

    /// Marks dead every other live uid with the name and address of `id`, which just sent a
    /// packet: the process at that address restarted, so the earlier one is gone.
    mutating func retireEarlierLives(of id: NodeID, now: Instant, into directives: inout [Membership.Directive]) {
        guard let ids = idsByName[id.name], ids.count > 1, records[id]?.member.status.isLive == true else { return }
        for other in ids where other != id && other.address == id.address {
            declareDead(other, now: now, into: &directives)
        }
    }

    /// Pings a sender held suspect or dead (at least at the incarnation it sent), at most
    /// once per probe interval. The ping carries its record first in the gossip, so that it
    /// refutes at once and its ack, at the new incarnation, clears the record here (Lifeguard's
    /// "buddy system", applied to any contact rather than only to probes).
    mutating func askToRefute(_ id: NodeID, now: Instant, into directives: inout [Membership.Directive]) {
        guard var record = records[id] else { return }
        if let last = record.lastRefutationRequest, now - last < configuration.probeInterval { return }
        record.lastRefutationRequest = now
        records[id] = record
        send(.ping(sequence: makeSequence()), to: id, into: &directives)
    }
}

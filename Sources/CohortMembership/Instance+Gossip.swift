import CohortCore

extension Membership {
    /// Pending gossip updates, at most one per member, each sent a bounded number of times.
    ///
    /// Least-sent updates go first; among equally sent ones, the newest goes first (as in
    /// memberlist's transmit-limited queue), so a fresh refutation overtakes old news.
    struct GossipQueue: Sendable {
        struct Entry: Sendable {
            var member: Member
            var transmissions: Int
            var serial: UInt64
        }

        private(set) var entries: [NodeID: Entry] = [:]
        private var nextSerial: UInt64 = 0

        /// Queues `member`, replacing any older update about the same uid.
        mutating func enqueue(_ member: Member) {
            entries[member.id] = Entry(member: member, transmissions: 0, serial: nextSerial)
            nextSerial &+= 1
        }

        mutating func remove(_ id: NodeID) {
            entries[id] = nil
        }

        /// Drops every queued update for which `shouldRemove` is true.
        mutating func removeAll(where shouldRemove: (Member) -> Bool) {
            entries = entries.filter { !shouldRemove($0.value.member) }
        }

        /// Takes the update about `id`, if one is queued, counting one transmission.
        mutating func take(_ id: NodeID, limit: Int) -> Member? {
            guard var entry = entries[id] else { return nil }
            entry.transmissions += 1
            entries[id] = entry.transmissions >= limit ? nil : entry
            return entry.member
        }

        /// Appends up to `count` updates (not about `excluded`) to `updates`, least-sent
        /// first, counting one transmission each and dropping those sent `limit` times.
        mutating func takeLeastSent(_ count: Int, limit: Int, excluding excluded: NodeID?, into updates: inout [Member]) {
            guard count > 0, !entries.isEmpty else { return }
            var candidates = entries.values.filter { $0.member.id != excluded }
            // A total order (serials are unique), so the choice is deterministic.
            candidates.sort {
                $0.transmissions != $1.transmissions ? $0.transmissions < $1.transmissions : $0.serial > $1.serial
            }
            for var entry in candidates.prefix(count) {
                updates.append(entry.member)
                entry.transmissions += 1
                entries[entry.member.id] = entry.transmissions >= limit ? nil : entry
            }
        }
    }
}

extension Membership.Instance {
    /// Whether `new` replaces `old`, two statements about the same uid, per SWIM's rules
    /// with memberlist's treatment of dead members:
    ///
    /// | new \ old     | alive(j)  | suspect(j) | dead(j)   | left |
    /// |---------------|-----------|------------|-----------|------|
    /// | alive(i)      | i > j     | i > j      | i > j     | no   |
    /// | suspect(i)    | i ≥ j     | i > j      | no        | no   |
    /// | dead(i)       | i ≥ j     | i ≥ j      | no        | no   |
    /// | left(i)       | yes       | yes        | yes       | no   |
    ///
    /// A dead member is revived only by `alive` with a strictly higher incarnation (it
    /// refuted), so a healed partition readmits it; `left` is final for that uid. (A `dead`
    /// with a higher incarnation than a dead record only raises the record's incarnation;
    /// see ``Membership/Instance``.)
    public static func supersedes(_ new: Membership.Member, _ old: Membership.Member) -> Bool {
        switch (new.status, old.status) {
        case (_, .left): false
        case (.left, _): true
        case (.alive, _): new.incarnation > old.incarnation
        case (.suspect, .alive): new.incarnation >= old.incarnation
        case (.suspect, .suspect): new.incarnation > old.incarnation
        case (.suspect, .dead): false
        case (.dead, .alive), (.dead, .suspect): new.incarnation >= old.incarnation
        case (.dead, .dead): false
        }
    }

    /// How many times one update is piggybacked:
    /// `gossipRetransmitMultiplier × max(1, ⌈log2(N+1)⌉)`.
    var retransmitLimit: Int {
        max(1, configuration.gossipRetransmitMultiplier) * max(1, Membership.Configuration.ceilLog2(clusterSize + 1))
    }

    /// A packet from this node carrying `message` and piggybacked gossip.
    ///
    /// When the destination is a known member, news about it goes first: the queued update
    /// if there is one, else its record when it is suspect or dead, so that it can refute.
    mutating func makePacket(_ message: Membership.Message, to destination: NodeID?) -> Membership.Packet {
        let capacity = max(0, configuration.maxGossipPerPacket)
        var updates: [Membership.Member] = []
        updates.reserveCapacity(capacity)
        let limit = retransmitLimit
        if capacity > 0, let destination {
            if let queued = gossip.take(destination, limit: limit) {
                updates.append(queued)
            } else if let record = records[destination],
                      record.member.status == .suspect || record.member.status == .dead {
                updates.append(record.member)
            }
        }
        gossip.takeLeastSent(capacity - updates.count, limit: limit, excluding: destination, into: &updates)
        return Membership.Packet(from: me, message: message, gossip: updates)
    }

    /// Appends a directive sending `message` to the member `destination`.
    mutating func send(_ message: Membership.Message, to destination: NodeID, into directives: inout [Membership.Directive]) {
        directives.append(.send(makePacket(message, to: destination), to: destination.address))
    }

    /// Most gossip updates read from one packet; the rest are ignored (a peer with a larger
    /// ``Membership/Configuration/maxGossipPerPacket`` still fits).
    static let maxGossipRead = 64

    /// Applies piggybacked gossip. With `onlyAboutMyself`, every update about another member
    /// is ignored (used for packets from a member this node considers dead, whose view of
    /// the cluster is stale). An update about a node that is not admitted is not applied;
    /// if it says the node is alive, its verification is requested.
    mutating func receive(
        gossip updates: [Membership.Member],
        onlyAboutMyself: Bool,
        now: Instant,
        into directives: inout [Membership.Directive]
    ) {
        var wasDeclaredDead = false
        for update in updates.prefix(Self.maxGossipRead) {
            if update.id == me.id {
                wasDeclaredDead = refute(update) || wasDeclaredDead
            } else if !onlyAboutMyself && !conflictsWithMyself(update.id) {
                if isAdmitted(update.id) {
                    apply(update, now: now, into: &directives)
                } else if update.status == .alive {
                    requestAdmission(update.id, now: now, into: &directives)
                }
            }
        }
        if wasDeclaredDead {
            rejoin(now: now, into: &directives)
        }
    }

    /// Whether `id` is another uid with this node's name or address: an earlier life of this
    /// process or a misconfigured peer. Such members are never recorded (this node must never
    /// ping its own address).
    func conflictsWithMyself(_ id: NodeID) -> Bool {
        id != me.id && (id.name == me.id.name || id.address == me.id.address)
    }

    /// Answers gossip about this node: a suspect or dead claim at this node's incarnation or
    /// later is refuted by taking the next incarnation and gossiping alive (the update goes
    /// first in the next packets: it is the newest of the least sent). Returns whether the
    /// claim was a death, which ``rejoin(now:into:)`` must follow.
    mutating func refute(_ claim: Membership.Member) -> Bool {
        guard me.status == .alive, claim.status == .suspect || claim.status == .dead,
              claim.incarnation >= me.incarnation
        else { return false }
        me.incarnation = min(claim.incarnation, UInt64.max - 1) + 1
        gossip.enqueue(me)
        return claim.status == .dead
    }

    /// Recovers after learning that the cluster declared this node dead, which proves this
    /// node was cut off from (part of) it, so its own verdicts since are not evidence:
    ///
    /// - pending suspect and dead updates about others are dropped from the gossip queue
    ///   rather than spread into the healed cluster, where they would make live members flap
    ///   (the records stay);
    /// - the probe in progress is abandoned (its ping was probably lost on the cut);
    /// - every suspicion restarts its clock, and every suspect is pinged with its record at
    ///   once, so that it refutes before its new timeout;
    /// - seeds and dead members are pinged at once (as on a reconnect), so that dead members
    ///   that are in fact running refute and are readmitted.
    ///
    /// The pings go out at most once per probe interval, however many peers say so.
    mutating func rejoin(now: Instant, into directives: inout [Membership.Directive]) {
        gossip.removeAll { $0.id != me.id && ($0.status == .suspect || $0.status == .dead) }
        probe.current = nil
        if let last = lastRejoinAt, now - last < configuration.probeInterval { return }
        lastRejoinAt = now
        for id in suspects.sorted(by: Self.precedes) {
            guard var record = records[id] else { continue }
            record.changedAt = now
            record.lastRefutationRequest = nil
            records[id] = record
            askToRefute(id, now: now, into: &directives)
        }
        reconnect(into: &directives)
    }

    /// Applies one statement about another member (never this node), by the rules of
    /// ``supersedes(_:_:)``. Only `alive` introduces an unknown member. An accepted update is
    /// queued for gossip, and a status change emits ``Membership/Directive/memberChanged(_:previous:)``.
    mutating func apply(_ update: Membership.Member, now: Instant, into directives: inout [Membership.Directive]) {
        guard var record = records[update.id] else {
            guard update.status == .alive else { return }
            records[update.id] = Record(member: update, changedAt: now)
            idsByName[update.id.name, default: []].append(update.id)
            liveCount += 1
            probe.insert(update.id, using: &random)
            gossip.enqueue(update)
            directives.append(.memberChanged(update, previous: nil))
            return
        }
        let old = record.member
        guard Self.supersedes(update, old) else {
            if update.status == .dead, old.status == .dead, update.incarnation > old.incarnation {
                // Remember the higher incarnation so that older `alive` news cannot revive it.
                record.member.incarnation = update.incarnation
                records[update.id] = record
            }
            return
        }
        record.member = update
        if update.status != old.status {
            record.changedAt = now
            record.lastRefutationRequest = nil
        }
        records[update.id] = record
        gossip.enqueue(update)
        guard update.status != old.status else { return }

        if update.status == .suspect { suspects.insert(update.id) } else { suspects.remove(update.id) }
        if old.status.isLive && !update.status.isLive {
            liveCount -= 1
            if probe.current?.target == update.id { probe.current = nil }
        } else if !old.status.isLive && update.status.isLive {
            liveCount += 1
            probe.insert(update.id, using: &random)
        }
        directives.append(.memberChanged(update, previous: old.status))
    }

    /// Declares `id` dead at its current incarnation, if it is live.
    mutating func declareDead(_ id: NodeID, now: Instant, into directives: inout [Membership.Directive]) {
        guard let record = records[id], record.member.status.isLive else { return }
        var dead = record.member
        dead.status = .dead
        apply(dead, now: now, into: &directives)
    }

    /// Forgets dead and left members whose status changed `tombstoneRetention` ago or more.
    mutating func dropTombstones(now: Instant) {
        let retention = configuration.tombstoneRetention
        let expired = records.values.filter { !$0.member.status.isLive && now - $0.changedAt >= retention }
        for record in expired {
            let id = record.member.id
            records[id] = nil
            gossip.remove(id)
            if var ids = idsByName[id.name] {
                ids.removeAll { $0 == id }
                idsByName[id.name] = ids.isEmpty ? nil : ids
            }
        }
    }
}

public import CohortCore

extension Membership {
    /// The round-robin probe order and the probe in progress.
    ///
    /// Each round visits every live member once, in an order shuffled anew for each round;
    /// a member that joins (or is revived) mid-round is inserted at a random position among
    /// those not yet probed in this round. So a live member is probed at least once in every
    /// `2 × (N − 1)` consecutive probe intervals.
    struct ProbeSchedule: Sendable {
        var order: [NodeID] = []
        var index = 0
        var nextProbeAt = Instant.zero
        var current: Probe?

        mutating func insert(_ id: NodeID, using random: inout SplitMix64) {
            guard !order[index...].contains(id) else { return }
            order.insert(id, at: Int.random(in: index...order.count, using: &random))
        }
    }

    /// One probe in progress: a direct ping, then ping requests after the ping timeout.
    struct Probe: Sendable {
        var sequence: UInt64
        var target: NodeID
        /// The target's incarnation when the probe started: if it has refuted since, a
        /// missing ack proves nothing.
        var incarnation: UInt64
        var startedAt: Instant
        var askedOthers = false
    }

    /// A ping this node sent on behalf of another member's ping request.
    struct Relay: Sendable {
        var requester: NodeID
        var originalSequence: UInt64
        var target: NodeID
        var expiresAt: Instant
    }
}

extension Membership.Instance {
    /// Most ping requests served at once; further ones are ignored until some expire.
    static let maxRelays = 256

    /// Advances the failure detector. Call every ``Membership/Configuration/tickInterval``.
    ///
    /// In order: the probe in progress escalates to ping requests after
    /// ``Membership/Configuration/pingTimeout`` and suspects its target after
    /// ``Membership/Configuration/probeTimeout``; suspects not refuted within
    /// ``Membership/Configuration/suspicionTimeout(clusterSize:)`` are declared dead; every
    /// ``Membership/Configuration/probeInterval`` the next member is probed (and due
    /// verification requests are repeated, see ``rejectAdmission(_:now:)``); every
    /// ``Membership/Configuration/reconnectInterval`` seeds and dead members are pinged and
    /// old tombstones are dropped (so a tombstone lives between `tombstoneRetention` and
    /// `tombstoneRetention + reconnectInterval`). Before ``start(now:)`` and after
    /// ``leave(now:)`` a tick does nothing.
    public mutating func onTick(now: Instant) -> [Membership.Directive] {
        var directives: [Membership.Directive] = []
        guard started, me.status == .alive else { return directives }
        advanceProbe(now: now, into: &directives)
        expireSuspicions(now: now, into: &directives)
        if !relays.isEmpty {
            relays = relays.filter { $0.value.expiresAt > now }
        }
        if now >= probe.nextProbeAt {
            startProbe(now: now, into: &directives)
            retryAdmissions(now: now, into: &directives)
            probe.nextProbeAt = probe.nextProbeAt + configuration.probeInterval
            if probe.nextProbeAt <= now {  // the shell fell behind: do not burst
                probe.nextProbeAt = now + configuration.probeInterval
            }
        }
        if now >= nextReconnectAt {
            dropTombstones(now: now)
            dropStaleAdmissions(now: now)
            reconnect(into: &directives)
            nextReconnectAt = nextReconnectAt + configuration.reconnectInterval
            if nextReconnectAt <= now {
                nextReconnectAt = now + configuration.reconnectInterval
            }
        }
        return directives
    }

    /// Escalates or concludes the probe in progress. A probe is never concluded before
    /// others were asked: a tick that comes late (a busy process) sends the ping requests
    /// and gives them the rest of the probe's time from now, so one lost packet does not
    /// become a suspicion because the shell's timer slipped.
    mutating func advanceProbe(now: Instant, into directives: inout [Membership.Directive]) {
        guard var current = probe.current else { return }
        if current.askedOthers && now - current.startedAt >= configuration.probeTimeout {
            probe.current = nil
            probeFailed(current, now: now, into: &directives)
            return
        }
        if !current.askedOthers && now - current.startedAt >= configuration.pingTimeout {
            current.askedOthers = true
            if now - current.startedAt > configuration.pingTimeout {  // late: the indirect answers get their full time
                current.startedAt = now - configuration.pingTimeout
                let concludeAt = current.startedAt + configuration.probeTimeout
                if probe.nextProbeAt < concludeAt { probe.nextProbeAt = concludeAt }
            }
            probe.current = current
            for helper in indirectProbeHelpers(excluding: current.target) {
                send(.pingRequest(sequence: current.sequence, target: current.target), to: helper, into: &directives)
            }
        }
    }

    /// Up to ``Membership/Configuration/indirectProbeCount`` live members other than
    /// `target`, chosen at random.
    mutating func indirectProbeHelpers(excluding target: NodeID) -> [NodeID] {
        var candidates = sortedLiveIDs
        candidates.removeAll { $0 == target }
        let count = min(max(0, configuration.indirectProbeCount), candidates.count)
        for index in 0..<count {  // partial Fisher–Yates
            candidates.swapAt(index, Int.random(in: index..<candidates.count, using: &random))
        }
        return Array(candidates.prefix(count))
    }

    /// Concludes a probe that got no ack: its target, if still alive at the incarnation it
    /// was probed at, becomes suspect, and is told so at once (one more ping carrying the
    /// suspect record) in case only the probe's packets were lost, so it can refute early.
    mutating func probeFailed(_ failed: Membership.Probe, now: Instant, into directives: inout [Membership.Directive]) {
        guard let record = records[failed.target], record.member.status == .alive,
              record.member.incarnation == failed.incarnation
        else { return }
        var suspect = record.member
        suspect.status = .suspect
        apply(suspect, now: now, into: &directives)
        askToRefute(failed.target, now: now, into: &directives)
    }

    /// Declares dead every suspect whose suspicion timeout (for the current cluster size) ran out.
    mutating func expireSuspicions(now: Instant, into directives: inout [Membership.Directive]) {
        guard !suspects.isEmpty else { return }
        let timeout = configuration.suspicionTimeout(clusterSize: clusterSize)
        let expired = suspects.filter { id in
            guard let record = records[id] else { return true }
            return now - record.changedAt >= timeout
        }
        for id in expired.sorted(by: Self.precedes) {
            suspects.remove(id)
            declareDead(id, now: now, into: &directives)
        }
    }

    /// Starts probing the next member in the round (concluding an unfinished probe first,
    /// which only happens when `probeTimeout` exceeds `probeInterval`).
    mutating func startProbe(now: Instant, into directives: inout [Membership.Directive]) {
        if let unfinished = probe.current {
            probe.current = nil
            probeFailed(unfinished, now: now, into: &directives)
        }
        guard let target = nextProbeTarget(), let incarnation = records[target]?.member.incarnation else { return }
        let sequence = makeSequence()
        probe.current = Membership.Probe(sequence: sequence, target: target, incarnation: incarnation, startedAt: now)
        send(.ping(sequence: sequence), to: target, into: &directives)
    }

    /// The next live member in the round, reshuffling for a new round when needed.
    mutating func nextProbeTarget() -> NodeID? {
        for _ in 0..<2 {
            while probe.index < probe.order.count {
                let id = probe.order[probe.index]
                probe.index += 1
                if records[id]?.member.status.isLive == true { return id }
            }
            probe.order = sortedLiveIDs
            probe.order.shuffle(using: &random)
            probe.index = 0
            if probe.order.isEmpty { return nil }
        }
        return nil
    }

    /// Handles a ping request: pings the target with a fresh sequence number and remembers
    /// to forward its ack. A request about this node is answered at once; requests about
    /// unknown or non-live members are ignored.
    mutating func onPingRequest(
        sequence: UInt64,
        target: NodeID,
        from requester: NodeID,
        now: Instant,
        into directives: inout [Membership.Directive]
    ) {
        if target == me.id {
            send(.ack(sequence: sequence, target: me), to: requester, into: &directives)
            return
        }
        guard target != requester, let record = records[target], record.member.status.isLive,
              relays.count < Self.maxRelays
        else { return }
        let relaySequence = makeSequence()
        relays[relaySequence] = Membership.Relay(
            requester: requester,
            originalSequence: sequence,
            target: target,
            expiresAt: now + configuration.probeTimeout
        )
        send(.ping(sequence: relaySequence), to: target, into: &directives)
    }

    /// Handles an ack: it may end the probe in progress, or be forwarded to the member
    /// whose ping request it answers. Acks that match neither are ignored.
    mutating func onAck(
        sequence: UInt64,
        target: Membership.Member,
        now: Instant,
        into directives: inout [Membership.Directive]
    ) {
        if target.status == .alive, target.id != me.id, !conflictsWithMyself(target.id) {
            if isAdmitted(target.id) {
                apply(target, now: now, into: &directives)
            } else {
                requestAdmission(target.id, now: now, into: &directives)
            }
        }
        if let current = probe.current, current.sequence == sequence, current.target == target.id {
            probe.current = nil
        } else if let relay = relays[sequence], relay.target == target.id {
            relays[sequence] = nil
            send(.ack(sequence: relay.originalSequence, target: target), to: relay.requester, into: &directives)
        }
    }
}

public import CohortCore

extension Membership {
    /// The nodes a node has verified, and the verifications it asked for but has not been
    /// granted (see ``Configuration/requiresAdmission``).
    ///
    /// Keyed by ``NodeID``: a process that restarts (new uid) or moves (new address) is
    /// verified anew. Both tables are bounded: an admitted node is forgotten with its
    /// tombstone (or after ``Configuration/tombstoneRetention`` if it never became a
    /// member), and at most ``maxAttempts`` verifications are tracked.
    struct AdmissionGate: Sendable {
        struct Attempt: Sendable {
            /// Checks that failed so far.
            var failures = 0
            /// No new request for this node before this time.
            var retryAt: Instant
            /// When a packet from this node or gossip about it last arrived: requests are
            /// repeated on ticks while that is less than `tombstoneRetention` ago.
            var lastHeardAt: Instant
        }

        /// Verified nodes, with the time each was admitted.
        var admitted: [NodeID: Instant] = [:]
        /// Nodes asked about and not admitted yet.
        var attempts: [NodeID: Attempt] = [:]

        /// Most verifications tracked at once; requests beyond it are not made until some
        /// retry time passes (only holders of the cluster key can cause requests at all).
        static let maxAttempts = 1024
    }
}

extension Membership.Instance {
    /// Whether `id` may take part in membership: always without
    /// ``Membership/Configuration/requiresAdmission``, else once ``admit(_:now:)`` was called.
    public func isAdmitted(_ id: NodeID) -> Bool {
        !configuration.requiresAdmission || admission.admitted[id] != nil
    }

    /// The shell verified `id`: from now on its packets are handled and gossip about it is
    /// applied. It becomes a member as usual, with its next packet or gossip about it; this
    /// node pings it at once so that this happens within a round trip (the ping also
    /// introduces this node, which the other side may verify in turn).
    ///
    /// Does nothing without ``Membership/Configuration/requiresAdmission``, for this node
    /// itself, and for an id that conflicts with this node (same name or address).
    public mutating func admit(_ id: NodeID, now: Instant) -> [Membership.Directive] {
        var directives: [Membership.Directive] = []
        guard configuration.requiresAdmission, id != me.id, !conflictsWithMyself(id) else { return directives }
        admission.attempts[id] = nil
        guard admission.admitted[id] == nil else { return directives }
        admission.admitted[id] = now
        guard started, me.status == .alive, records[id]?.member.status != .left else { return directives }
        send(.ping(sequence: makeSequence()), to: id, into: &directives)
        return directives
    }

    /// The shell could not verify `id` (wrong certificate, or nothing answered at its
    /// address). It stays out; the next request for it waits `probeInterval × 2^failures`,
    /// at most ``Membership/Configuration/maxAdmissionBackoff``. Requests are repeated on
    /// ticks (not only when the node sends again: it may be waiting for this node) until
    /// nothing was heard from or about it for `tombstoneRetention`. Does nothing for an
    /// admitted node (a verification that raced with another one which succeeded).
    public mutating func rejectAdmission(_ id: NodeID, now: Instant) {
        guard configuration.requiresAdmission, admission.admitted[id] == nil else { return }
        guard var attempt = admission.attempts[id] ?? makeAttempt(now: now) else { return }
        attempt.failures += 1
        attempt.retryAt = now + admissionRetryDelay(failures: attempt.failures)
        admission.attempts[id] = attempt
    }

    /// Something arrived from or about `id`: asks the shell to verify it (a
    /// ``Membership/Directive/verify(_:)``), unless it is admitted, or was asked about less
    /// than its retry delay ago.
    mutating func requestAdmission(_ id: NodeID, now: Instant, into directives: inout [Membership.Directive]) {
        guard configuration.requiresAdmission, admission.admitted[id] == nil, id != me.id, !conflictsWithMyself(id),
              var attempt = admission.attempts[id] ?? makeAttempt(now: now)
        else { return }
        attempt.lastHeardAt = now
        if now >= attempt.retryAt {
            attempt.retryAt = now + admissionRetryDelay(failures: attempt.failures)
            directives.append(.verify(id))
        }
        admission.attempts[id] = attempt
    }

    /// Repeats the requests whose retry time has come, for nodes heard from or about less
    /// than `tombstoneRetention` ago. Called once per probe interval.
    mutating func retryAdmissions(now: Instant, into directives: inout [Membership.Directive]) {
        guard configuration.requiresAdmission, !admission.attempts.isEmpty else { return }
        let retention = configuration.tombstoneRetention
        let due = admission.attempts.filter { now >= $0.value.retryAt && now - $0.value.lastHeardAt < retention }
        for id in due.keys.sorted(by: Self.precedes) {
            guard var attempt = admission.attempts[id] else { continue }
            attempt.retryAt = now + admissionRetryDelay(failures: attempt.failures)
            admission.attempts[id] = attempt
            directives.append(.verify(id))
        }
    }

    /// A fresh attempt, or `nil` if ``Membership/AdmissionGate/maxAttempts`` are tracked and
    /// none can be dropped (none is past its retry time).
    mutating func makeAttempt(now: Instant) -> Membership.AdmissionGate.Attempt? {
        if admission.attempts.count >= Membership.AdmissionGate.maxAttempts {
            admission.attempts = admission.attempts.filter { $0.value.retryAt > now }
            if admission.attempts.count >= Membership.AdmissionGate.maxAttempts { return nil }
        }
        return Membership.AdmissionGate.Attempt(retryAt: now, lastHeardAt: now)
    }

    /// `probeInterval × 2^failures`, at most `maxAdmissionBackoff` (and at least one probe
    /// interval).
    func admissionRetryDelay(failures: Int) -> Duration {
        let base = configuration.probeInterval
        let limit = max(base, configuration.maxAdmissionBackoff)
        var delay = base
        for _ in 0..<min(failures, 32) {
            delay = delay * 2
            if delay >= limit { return limit }
        }
        return delay
    }

    /// Forgets admissions of nodes that are no longer known (their tombstone was dropped)
    /// and were admitted at least `tombstoneRetention` ago, and verification attempts for
    /// nodes not heard from or about for that long. Called with the tombstone sweep.
    mutating func dropStaleAdmissions(now: Instant) {
        guard configuration.requiresAdmission else { return }
        let retention = configuration.tombstoneRetention
        admission.admitted = admission.admitted.filter { records[$0.key] != nil || now - $0.value < retention }
        admission.attempts = admission.attempts.filter { now - $0.value.lastHeardAt < retention }
    }
}

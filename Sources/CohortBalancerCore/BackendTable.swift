import CohortCore

/// The balancer's view of its backends and every routing and health decision, as a pure
/// value type: no clock, no randomness, no IO. The shell owns one table (behind a lock),
/// asks it where to send a request, and reports what happened.
///
/// Contract for callers:
/// - Call `onRequestStarted(_:)` when a request is sent to a chosen backend and
///   `onRequestFinished(_:)` exactly once when it ends (success or failure), so that
///   `outstandingRequests` stays exact.
/// - Report each attempt's outcome with `onSuccess(_:)` / `onFailure(_:)` (passive health)
///   and each active check with `onHealthCheck(_:healthy:)`.
/// - Unknown names are ignored everywhere (they return `.unknownBackend` or `false`), since
///   names may come from an admin request or a stale membership view.
public struct BackendTable: Sendable {
    /// Tunables.
    public struct Configuration: Hashable, Sendable {
        /// Consecutive failures (passive or active) that mark a backend down.
        public var failureThreshold: Int
        /// The nodes' placement. With ``Placement/owners(_:)``, a session whose route node
        /// is down goes to the node that holds a copy and becomes its primary (the same
        /// rendezvous order the nodes compute), so it is served without a fetch.
        public var placement: Placement

        public init(failureThreshold: Int = 3, placement: Placement = .everyNode) {
            self.failureThreshold = max(1, failureThreshold)
            self.placement = placement
        }
    }

    /// What a health-related input did.
    public enum HealthOutcome: Hashable, Sendable {
        case unchanged
        case markedDown
        case markedUp
        case unknownBackend
    }

    public private(set) var backends: [Backend]
    public var configuration: Configuration
    /// Where the next round-robin tie-break scan starts.
    private var cursor: Int = 0

    /// - Precondition: names are unique (the command validates this; duplicates after the
    ///   first are dropped here rather than trapping).
    public init(backends: [Backend], configuration: Configuration = .init()) {
        var seen: Set<String> = []
        self.backends = backends.filter { seen.insert($0.name).inserted }
        self.configuration = configuration
    }

    public func backend(named name: String) -> Backend? {
        backends.first { $0.name == name }
    }

    private func index(of name: String) -> Int? {
        backends.firstIndex { $0.name == name }
    }

    /// Names of backends that could take a request now (healthy, drained or not).
    public var liveBackendNames: [String] {
        backends.filter(\.isHealthy).map(\.name)
    }
}

// MARK: - Routing

extension BackendTable {
    /// Why a backend was chosen.
    public enum ChoiceReason: Hashable, Sendable {
        /// The request's route names this backend and it is healthy.
        case sticky
        /// The route's backend is down; this one holds a copy of the session (owners placement).
        case holder
        /// Least outstanding requests among healthy, non-draining backends (round-robin on ties).
        case balanced
        /// Only draining backends are left: better a draining node than an error.
        case drainingFallback
    }

    /// A routing decision for one attempt.
    public struct Choice: Hashable, Sendable {
        public var name: String
        public var address: Address
        public var reason: ChoiceReason
    }

    /// Chooses a backend for one attempt of a request.
    ///
    /// - Parameters:
    ///   - route: the route parsed from the session cookie, if any (see `SessionCookie`).
    ///   - excluding: backends already tried for this request (failover).
    /// - Returns: `nil` only when no healthy backend outside `excluding` exists.
    ///
    /// The sticky backend is used while it is healthy, even when draining (existing sessions
    /// keep their route). Otherwise the healthy, non-draining backend with the fewest
    /// outstanding requests wins; ties go round-robin from an internal cursor, which this
    /// call advances past the winner. If every remaining healthy backend is draining, one
    /// of those is chosen the same way.
    ///
    /// With `owners(n)` placement and the session's `key`, a session whose route backend
    /// cannot take it goes to the first healthy backend among its owners (in the nodes'
    /// rendezvous order), which holds a copy.
    public mutating func choose(route: String?, key: String? = nil, excluding: Set<String> = []) -> Choice? {
        if let route, let index = index(of: route), !excluding.contains(route), backends[index].acceptsRoutedRequests {
            return Choice(name: route, address: backends[index].address, reason: .sticky)
        }
        if let route, let key, case .owners(let count) = configuration.placement {
            let live = backends.filter(\.acceptsRoutedRequests).map(\.name)
            for owner in Rendezvous.owners(key: key, route: route, live: live, count: count) where !excluding.contains(owner) {
                if let index = index(of: owner) {
                    return Choice(name: owner, address: backends[index].address, reason: .holder)
                }
            }
        }
        if let index = leastOutstanding(where: { $0.acceptsNewSessions && !excluding.contains($0.name) }) {
            return Choice(name: backends[index].name, address: backends[index].address, reason: .balanced)
        }
        if let index = leastOutstanding(where: { $0.acceptsRoutedRequests && !excluding.contains($0.name) }) {
            return Choice(name: backends[index].name, address: backends[index].address, reason: .drainingFallback)
        }
        return nil
    }

    private mutating func leastOutstanding(where isCandidate: (Backend) -> Bool) -> Int? {
        let count = backends.count
        guard count > 0 else { return nil }
        var best: Int?
        for step in 0..<count {
            let index = (cursor + step) % count
            let candidate = backends[index]
            guard isCandidate(candidate) else { continue }
            if let current = best, backends[current].outstandingRequests <= candidate.outstandingRequests { continue }
            best = index
        }
        if let best { cursor = (best + 1) % count }
        return best
    }

    /// A request was sent to `name`.
    public mutating func onRequestStarted(_ name: String) {
        guard let index = index(of: name) else { return }
        backends[index].outstandingRequests += 1
    }

    /// A request sent to `name` ended (in any way). Never goes below zero.
    public mutating func onRequestFinished(_ name: String) {
        guard let index = index(of: name) else { return }
        backends[index].outstandingRequests = max(0, backends[index].outstandingRequests - 1)
    }
}

// MARK: - Health

extension BackendTable {
    /// An attempt on `name` got a response: resets its failure count. Does not mark a down
    /// backend up (only an active check or membership does).
    @discardableResult
    public mutating func onSuccess(_ name: String) -> HealthOutcome {
        guard let index = index(of: name) else { return .unknownBackend }
        backends[index].consecutiveFailures = 0
        return .unchanged
    }

    /// An attempt on `name` failed (connect error, reset or timeout before a response).
    /// The `failureThreshold`-th consecutive failure marks it down.
    @discardableResult
    public mutating func onFailure(_ name: String) -> HealthOutcome {
        guard let index = index(of: name) else { return .unknownBackend }
        backends[index].consecutiveFailures += 1
        if backends[index].isHealthy && backends[index].consecutiveFailures >= configuration.failureThreshold {
            backends[index].isHealthy = false
            return .markedDown
        }
        return .unchanged
    }

    /// An active check of `name` finished. Success marks it up and resets failures, unless
    /// membership reported it down (membership's view comes first); a failure counts like a
    /// passive one.
    @discardableResult
    public mutating func onHealthCheck(_ name: String, healthy: Bool) -> HealthOutcome {
        guard let index = index(of: name) else { return .unknownBackend }
        guard healthy else { return onFailure(name) }
        backends[index].consecutiveFailures = 0
        backends[index].isStopping = false
        if backends[index].isHealthy || backends[index].isMembershipDown { return .unchanged }
        backends[index].isHealthy = true
        return .markedUp
    }

    /// A backend's health check answered that it is draining (it stops soon, and said so):
    /// it is marked down at once, without waiting for `failureThreshold` failures, so its
    /// sessions move to the others while it still answers the requests it has. A later
    /// passing check (the restarted process) marks it up again; membership's "alive" does
    /// not (a refuted suspicion would otherwise send it traffic again).
    @discardableResult
    public mutating func onDrainingAnswer(_ name: String) -> HealthOutcome {
        guard let index = index(of: name) else { return .unknownBackend }
        backends[index].consecutiveFailures = max(backends[index].consecutiveFailures, configuration.failureThreshold)
        backends[index].isStopping = true
        guard backends[index].isHealthy else { return .unchanged }
        backends[index].isHealthy = false
        return .markedDown
    }

    /// The seam for cluster membership: a member's liveness as membership sees it.
    /// `up: false` marks the backend down at once; `up: true` marks it up and resets failures,
    /// or, with `awaitingHealthCheck` (a process membership has just seen start, whose HTTP
    /// may not serve yet), lifts membership's veto and leaves it down until a health check
    /// passes.
    @discardableResult
    public mutating func setMembershipState(name: String, up: Bool, awaitingHealthCheck: Bool = false) -> HealthOutcome {
        guard let index = index(of: name) else { return .unknownBackend }
        let wasHealthy = backends[index].isHealthy
        // A stopping node is still alive to membership (it serves its last requests).
        let healthy = up && !awaitingHealthCheck && !backends[index].isStopping
        backends[index].isHealthy = healthy
        backends[index].isMembershipDown = !up
        if up { backends[index].consecutiveFailures = 0 }
        switch (wasHealthy, healthy) {
        case (false, true): return .markedUp
        case (true, false): return .markedDown
        default: return .unchanged
        }
    }
}

// MARK: - Administration

extension BackendTable {
    /// Stops new sessions going to `name`; its routed sessions still reach it.
    /// Returns `false` for an unknown name.
    @discardableResult
    public mutating func drain(_ name: String) -> Bool {
        guard let index = index(of: name) else { return false }
        backends[index].isDraining = true
        return true
    }

    /// Undoes `drain`. Returns `false` for an unknown name.
    @discardableResult
    public mutating func undrain(_ name: String) -> Bool {
        guard let index = index(of: name) else { return false }
        backends[index].isDraining = false
        return true
    }

    /// Replaces the backend set (e.g. from membership): known names keep their state
    /// (health, drain, counters) but take the new address; new names start up; names not
    /// in `backends` are removed (requests in flight to them finish normally).
    public mutating func updateBackends(_ newBackends: [(name: String, address: Address)]) {
        var seen: Set<String> = []
        var updated: [Backend] = []
        for entry in newBackends where seen.insert(entry.name).inserted {
            if var existing = backend(named: entry.name) {
                existing.address = entry.address
                updated.append(existing)
            } else {
                updated.append(Backend(name: entry.name, address: entry.address))
            }
        }
        backends = updated
        cursor = updated.isEmpty ? 0 : cursor % updated.count
    }
}

import CohortCore

/// One upstream node the balancer can send requests to.
///
/// `name` is the node's route (the suffix of `<key>.<route>` session ids), so a session
/// cookie names its backend directly. Health (`isHealthy`) and drain (`isDraining`) are
/// independent: a draining backend still serves the sessions routed to it while it is
/// healthy, and a backend can go down while draining.
public struct Backend: Hashable, Sendable {
    /// The externally visible state, as reported by the admin API.
    public enum State: String, Hashable, Sendable {
        /// Healthy and accepting new sessions.
        case up
        /// Not healthy: receives no requests until an active check (or membership) says it is up.
        case down
        /// Healthy, but only requests routed to it by their session cookie reach it.
        case draining
    }

    /// The node's route; validated with `NodeID.isValidName` by whoever builds the table.
    public var name: String
    /// Where the node serves HTTP.
    public var address: Address
    /// `false` after `failureThreshold` consecutive failures or a membership "down".
    public var isHealthy: Bool
    /// Membership (when joined to the cluster) says this node is gone. Takes precedence over
    /// active checks: only membership marks such a backend up again.
    public var isMembershipDown: Bool
    /// Set by the admin drain call; cleared by undrain.
    public var isDraining: Bool
    /// The node's health check answered that it is stopping (`Cohort-Draining`): down
    /// until a check passes again (its restarted process), whatever membership says.
    public var isStopping: Bool
    /// Requests currently in flight to this backend (started and not yet finished).
    public var outstandingRequests: Int
    /// Failures (connect errors, resets, timeouts, failed checks) since the last success.
    public var consecutiveFailures: Int

    public init(name: String, address: Address) {
        self.name = name
        self.address = address
        self.isHealthy = true
        self.isMembershipDown = false
        self.isDraining = false
        self.isStopping = false
        self.outstandingRequests = 0
        self.consecutiveFailures = 0
    }

    public var state: State {
        if !isHealthy { return .down }
        return isDraining ? .draining : .up
    }

    /// May take requests that carry its route (sticky): healthy, drained or not.
    public var acceptsRoutedRequests: Bool { isHealthy }

    /// May take requests that carry no (usable) route: healthy and not draining.
    public var acceptsNewSessions: Bool { isHealthy && !isDraining }
}

import CohortCore

/// When a draining node may stop serving HTTP (pure: time is an input).
///
/// A drain lasts until no request has arrived for `quietPeriod` (the balancers have taken
/// the node out of rotation and its last requests are answered), and at most `timeout`
/// (a balancer without health checks, such as nginx's open-source edition, never stops
/// sending). The quiet period counts from the latest of the drain's start, the latest
/// request, and the first health check answered "draining": a check that comes within
/// the quiet period extends it, so a balancer that checks health has heard by the time
/// the server closes its kept-alive connections. A node nothing checks or sends to ends
/// its drain one quiet period after it began; behind a balancer that checks less often
/// (a Kubernetes readiness probe every 10 s), raise `quietPeriod` to its interval.
public struct DrainPlan: Sendable, Equatable {
    public var timeout: Duration
    public var quietPeriod: Duration

    public init(timeout: Duration = .seconds(5), quietPeriod: Duration = .seconds(1)) {
        self.timeout = timeout
        self.quietPeriod = quietPeriod
    }

    /// How a drain ended.
    public enum Ending: String, Sendable, Equatable {
        /// No request for the quiet period.
        case quiet
        /// The timeout passed while requests still arrived.
        case timedOut
        /// A signal asked to stop at once (a second Ctrl-C); see ``NodeDrain``.
        case interrupted
    }

    public enum Step: Sendable, Equatable {
        /// Look again at this instant (or when woken earlier).
        case wait(until: Instant)
        case finished(Ending)
    }

    /// What to do at `now`, for a drain that started at `start`, whose latest request
    /// arrived at `lastRequest`, and whose first "draining" health answer went out at
    /// `healthAnswered` (`nil`: none since the start).
    public func step(start: Instant, now: Instant, lastRequest: Instant?, healthAnswered: Instant? = nil) -> Step {
        let deadline = start + timeout
        let quietSince = max(start, lastRequest ?? start, healthAnswered ?? start)
        let quietEnd = quietSince + quietPeriod
        if now >= quietEnd { return .finished(.quiet) }
        if now >= deadline { return .finished(.timedOut) }
        return .wait(until: min(quietEnd, deadline))
    }
}

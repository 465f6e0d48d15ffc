import CohortCore

/// When a draining node may stop serving HTTP (pure: time is an input).
///
/// A drain lasts until no request has arrived for `quietPeriod` (the balancers have taken
/// the node out of rotation and its last requests are answered), and at most `timeout`
/// (a balancer without health checks, such as nginx's open-source edition, never stops
/// sending). The quiet period counts from the drain's start when no request came since.
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
    }

    public enum Step: Sendable, Equatable {
        /// Look again at this instant (or when woken earlier).
        case wait(until: Instant)
        case finished(Ending)
    }

    /// What to do at `now`, for a drain that started at `start` and whose latest request
    /// arrived at `lastRequest` (`nil`: none since the start).
    public func step(start: Instant, now: Instant, lastRequest: Instant?) -> Step {
        let deadline = start + timeout
        let quietSince = max(start, lastRequest ?? start)
        let quietEnd = quietSince + quietPeriod
        if now >= quietEnd { return .finished(.quiet) }
        if now >= deadline { return .finished(.timedOut) }
        return .wait(until: min(quietEnd, deadline))
    }
}

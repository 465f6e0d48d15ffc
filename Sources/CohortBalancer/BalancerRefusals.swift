import CohortCore
import Logging
import Metrics
import NIOConcurrencyHelpers

/// Requests the balancer refused at its own limits (header size and count: 431; body
/// size: 413; a request that already passed through this balancer: 508): counted per
/// reason (`cohort_balancer_refusals_total{reason=…}`, the case name: `headersTooLarge`,
/// `bodyTooLarge`, `loop`) and logged at most once per client address and reason per 10 s.
public final class BalancerRefusals: Sendable {
    public enum Reason: String, Sendable, CaseIterable {
        case headersTooLarge = "headers too large"
        case bodyTooLarge = "body too large"
        case loop = "request loop"
    }

    private let counts = NIOLockedValueBox<[Reason: Int]>([:])
    private let throttle = NIOLockedValueBox(LogThrottle<ContinuousClock.Instant>())
    private let counters: [Reason: Counter]

    init() {
        var counters: [Reason: Counter] = [:]
        for reason in Reason.allCases {
            counters[reason] = Counter(label: "cohort_balancer_refusals_total", dimensions: [("reason", "\(reason)")])
        }
        self.counters = counters
    }

    /// How many requests were refused for `reason` so far.
    public func count(_ reason: Reason) -> Int {
        counts.withLockedValue { $0[reason, default: 0] }
    }

    func record(_ reason: Reason, client: String?, logger: Logger) {
        counts.withLockedValue { $0[reason, default: 0] += 1 }
        counters[reason]?.increment()
        let now = ContinuousClock.now
        let key = "\(client ?? "?") \(reason.rawValue)"
        guard let suppressed = throttle.withLockedValue({ $0.admit(key, now: now, quietUntil: now + .seconds(10)) }) else { return }
        logger.warning("request refused", metadata: [
            "http.client": "\(client ?? "?")", "balancer.refusal": "\(reason.rawValue)", "balancer.refusals.unlogged": "\(suppressed)",
        ])
    }
}

import CohortCore
import Logging

extension ClusterNode {
    /// What the HTTP integration refused because a bound was reached.
    public enum Refusal: String, Sendable {
        /// A new session while the node held its maximum number (503).
        case nodeFull = "node full"
        /// A session write over a per-session bound (attributes, sizes: 413).
        case sessionLimit = "session limit"
    }

    /// Counts a refusal (``NodeCounters/sessionsRefused`` or
    /// ``NodeCounters/sessionWritesRefused``, and their metrics) and logs it at most once
    /// per remote address and kind per 10 s. `detail` says which bound;
    /// it must not contain a session id or attribute value.
    public func recordRefusal(_ refusal: Refusal, detail: String, from remote: String?) {
        state.withLockedValue { state in
            switch refusal {
            case .nodeFull: state.counters.sessionsRefused += 1
            case .sessionLimit: state.counters.sessionWritesRefused += 1
            }
        }
        switch refusal {
        case .nodeFull: metrics.sessionsRefused.increment()
        case .sessionLimit: metrics.sessionWritesRefused.increment()
        }
        let now = self.now
        let key = "\(remote ?? "?") \(refusal.rawValue)"
        guard let suppressed = rejectionLog.withLockedValue({ $0.admit(key, now: now, quietUntil: now + .seconds(10)) }) else { return }
        logger.warning("session refused", metadata: [
            "http.remote": "\(remote ?? "?")", "session.refusal": "\(refusal.rawValue): \(detail)",
            "session.refusals.unlogged": "\(suppressed)",
        ])
    }
}

import Metrics
import NIOConcurrencyHelpers

/// What the proxied requests came to, per backend, as swift-metrics counters, when
/// ``BalancerServer/Configuration/countsTraffic`` is on (`cohort balancer --metrics`):
/// - `cohort_balancer_responses_total{backend, class}`: responses relayed from the backend
///   by status class (`1xx`…`5xx`, `other` for a status outside them);
/// - `cohort_balancer_attempt_failures_total{backend, outcome}`: attempts that failed
///   (`connect`: nothing was sent; `reset`: closed before the response completed;
///   `timeout`), each followed by a retry or an error response, and responses cut off
///   after they began to reach the client (`aborted`: the client's connection is closed);
/// - `cohort_balancer_errors_total{status}`: the balancer's own error responses (`502`,
///   `503` when no backend is live, `504`).
///
/// A backend's counters are made on its first request and then found by name under a
/// lock, once per response. They stay when the backend leaves the table (counters keep
/// their totals; the state gauges of `cohort balancer --metrics` go).
final class BalancerTraffic: Sendable {
    private struct BackendCounters {
        /// Indexed by the status' first digit, 1...5 (index 0: anything else).
        var responses: [Counter]
        var connect: Counter
        var reset: Counter
        var timeout: Counter
        var aborted: Counter

        init(_ backend: String, factory: any MetricsFactory) {
            responses = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"].map {
                Counter(label: "cohort_balancer_responses_total", dimensions: [("backend", backend), ("class", $0)], factory: factory)
            }
            let failure = { (outcome: String) in
                Counter(label: "cohort_balancer_attempt_failures_total", dimensions: [("backend", backend), ("outcome", outcome)],
                        factory: factory)
            }
            connect = failure("connect")
            reset = failure("reset")
            timeout = failure("timeout")
            aborted = failure("aborted")
        }
    }

    private let backends = NIOLockedValueBox<[String: BackendCounters]>([:])
    private let errors: [Int: Counter]
    private let factory: any MetricsFactory

    init(factory: any MetricsFactory = MetricsSystem.factory) {
        var errors: [Int: Counter] = [:]
        for status in [502, 503, 504] {
            errors[status] = Counter(label: "cohort_balancer_errors_total", dimensions: [("status", "\(status)")], factory: factory)
        }
        self.errors = errors
        self.factory = factory
    }

    private func counters(_ backend: String) -> BackendCounters {
        backends.withLockedValue { backends in
            if let known = backends[backend] { return known }
            let made = BackendCounters(backend, factory: factory)
            backends[backend] = made
            return made
        }
    }

    func response(from backend: String, status: Int) {
        let digit = status / 100
        counters(backend).responses[(1...5).contains(digit) ? digit : 0].increment()
    }

    func attemptFailed(on backend: String, _ outcome: AttemptOutcome) {
        let counters = counters(backend)
        switch outcome {
        case .failedBeforeSending: counters.connect.increment()
        case .failedBeforeResponse: counters.reset.increment()
        case .timedOut: counters.timeout.increment()
        }
    }

    func responseAborted(by backend: String) {
        counters(backend).aborted.increment()
    }

    func errorResponse(_ status: Int) {
        errors[status]?.increment()
    }
}

import CohortBalancer
import CohortBalancerCore
import NIOConcurrencyHelpers
import Prometheus

/// The balancer's backend table in Prometheus' text format, for `cohort balancer
/// --metrics`. Its refusal counters (`cohort_balancer_refusals_total{reason}`) arrive
/// through `MetricsSystem` (``MetricsServer/bootstrap()``); each backend's state is read
/// at each scrape. A backend no longer in the table (a node that left a joined cluster)
/// is reported down, with nothing outstanding.
final class BalancerMetricsExporter: Sendable {
    let registry: PrometheusCollectorRegistry
    let backends: @Sendable () -> [Backend]
    /// Every backend name reported so far.
    private let reported = NIOLockedValueBox<Set<String>>([])

    init(registry: PrometheusCollectorRegistry, backends: @escaping @Sendable () -> [Backend]) {
        self.registry = registry
        self.backends = backends
    }

    func render() -> [UInt8] {
        let current = backends()
        reported.withLockedValue { reported in
            for backend in current {
                report(backend.name, up: backend.acceptsRoutedRequests, draining: backend.isDraining,
                       outstanding: backend.outstandingRequests, failures: backend.consecutiveFailures)
                reported.insert(backend.name)
            }
            for gone in reported.subtracting(current.map(\.name)) {
                report(gone, up: false, draining: false, outstanding: 0, failures: 0)
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4096)
        registry.emit(into: &bytes)
        return bytes
    }

    private func report(_ name: String, up: Bool, draining: Bool, outstanding: Int, failures: Int) {
        let labels = [("backend", name)]
        registry.makeGauge(name: "cohort_balancer_backend_up", labels: labels,
                           help: "1 while the backend takes requests (healthy; a draining backend still serves its sessions)").set(Int64(up ? 1 : 0))
        registry.makeGauge(name: "cohort_balancer_backend_draining", labels: labels,
                           help: "1 while the admin API drains the backend (no new sessions)").set(Int64(draining ? 1 : 0))
        registry.makeGauge(name: "cohort_balancer_backend_outstanding_requests", labels: labels,
                           help: "Requests sent to the backend and not answered yet").set(Int64(outstanding))
        registry.makeGauge(name: "cohort_balancer_backend_consecutive_failures", labels: labels,
                           help: "Failed health checks or requests in a row").set(Int64(failures))
    }
}

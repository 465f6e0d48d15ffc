import CohortBalancer
import CohortBalancerCore
import NIOConcurrencyHelpers
import Prometheus

/// The balancer's backend table in Prometheus' text format, for `cohort balancer
/// --metrics`. Its counters (refusals, and with `countsTraffic` responses and failures:
/// `BalancerTraffic`) arrive through `MetricsSystem` (``MetricsServer/bootstrap()``); each
/// backend's state is read at each scrape. A backend no longer in the table (a node that
/// left a joined cluster) loses its gauges, so series do not pile up as nodes come and go.
final class BalancerMetricsExporter: Sendable {
    let registry: PrometheusCollectorRegistry
    let backends: @Sendable () -> [Backend]
    /// The gauges of every backend reported at the previous scrape.
    private let reported = NIOLockedValueBox<[String: [Gauge]]>([:])

    /// (Computed: swift-prometheus' descriptor is not `Sendable`.)
    private static var descriptors: [MetricNameDescriptor] { [
        .init(metricName: "cohort_balancer_backend_up", unitName: "",
              helpText: "1 while the backend takes requests (healthy; a draining backend still serves its sessions)"),
        .init(metricName: "cohort_balancer_backend_draining", unitName: "", helpText: "1 while the admin API drains the backend (no new sessions)"),
        .init(metricName: "cohort_balancer_backend_outstanding_requests", unitName: "", helpText: "Requests sent to the backend and not answered yet"),
        .init(metricName: "cohort_balancer_backend_consecutive_failures", unitName: "", helpText: "Failed health checks or requests in a row"),
    ] }

    init(registry: PrometheusCollectorRegistry, backends: @escaping @Sendable () -> [Backend]) {
        self.registry = registry
        self.backends = backends
    }

    func render() -> [UInt8] {
        reported.withLockedValue { reported in
            let current = backends()  // under the lock: a slower scrape cannot bring back a backend that left
            var now: [String: [Gauge]] = [:]
            for backend in current {
                let gauges = reported[backend.name] ?? Self.descriptors.map {
                    registry.makeGauge(descriptor: $0, labels: [("backend", backend.name)])
                }
                let values = [backend.acceptsRoutedRequests ? 1 : 0, backend.isDraining ? 1 : 0,
                              backend.outstandingRequests, backend.consecutiveFailures]
                for (gauge, value) in zip(gauges, values) { gauge.set(Int64(value)) }
                now[backend.name] = gauges
            }
            for (name, gauges) in reported where now[name] == nil {
                for gauge in gauges { registry.unregisterGauge(gauge) }
            }
            reported = now
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4096)
        registry.emit(into: &bytes)
        return bytes
    }
}

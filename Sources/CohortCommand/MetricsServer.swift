import CohortCore
import CohortNode
import Hummingbird
import Logging
import Metrics
import Prometheus

/// The HTTP server of `--metrics HOST:PORT`: `GET /metrics` answers Prometheus' text
/// format (version 0.0.4), rendered by `render` at each request. Its own listener, apart
/// from the application's port: a balancer in front of the nodes does not expose it, and
/// it can be bound to an address only the monitoring network reaches.
enum MetricsServer {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// A registry that also receives every swift-metrics metric of this process. Call it
    /// once, before the node or balancer is bound (their counters are created then).
    static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // The default buckets start at 5 ms, above most requests here.
        factory.defaultDurationHistogramBuckets = ClusterNode.ackWaitBuckets + [.seconds(10)]
        factory.durationHistogramBuckets[ClusterNode.ackWaitMetric] = ClusterNode.ackWaitBuckets
        MetricsSystem.bootstrap(factory)
        return registry
    }

    static func make(address: Address, logger: Logger, render: @escaping @Sendable () -> [UInt8]) -> some ApplicationProtocol {
        let router = Router()
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: contentType],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: render()))
            )
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "cohort"),
            logger: logger
        )
    }
}

import CohortCore
import Logging
import ServiceLifecycle

/// Drains a node when graceful shutdown begins, before its HTTP server stops, so that a
/// rolling restart costs no request an error.
///
/// Put it last in the `ServiceGroup`, after the node and the application:
/// `[node, app, NodeDrain(node: node)]` (not among Hummingbird's
/// `Application(services:)`, which stops its own HTTP server first). A service group stops
/// its services in reverse order, each after the one behind it returned, so on SIGTERM:
/// 1. this service calls ``ClusterNode/startDraining()``: health checks get 503 and
///    responses close their connections, while the node keeps serving and replicating;
///    it returns once no request came for ``DrainPlan/quietPeriod`` since a health check
///    was answered "draining" (the balancers took the node out), or after
///    ``DrainPlan/timeout``;
/// 2. the application stops: it closes its listening socket and its idle connections,
///    and answers the requests it is still handling;
/// 3. the node writes what its links hold and leaves the cluster.
///
/// Without it, a balancer may send a request on a kept-alive connection at the moment
/// the stopping server closes it; the request then fails, and only an idempotent or
/// exactly-once request can be retried safely.
public struct NodeDrain: Service {
    let node: ClusterNode
    let plan: DrainPlan

    public init(node: ClusterNode, plan: DrainPlan = DrainPlan()) {
        self.node = node
        self.plan = plan
    }

    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: the group is not stopping gracefully
        }
        let start = node.now
        node.startDraining()
        while true {
            let now = node.now
            switch plan.step(start: start, now: now, lastRequest: node.lastRequestWhileDraining, healthAnswered: node.firstDrainingHealthAnswer) {
            case .finished(let ending):
                node.logger.notice("drain finished", metadata: [
                    "cluster.drain.ending": "\(ending.rawValue)", "cluster.drain.duration": "\(now - start)",
                ])
                return
            case .wait(let until):
                do {
                    try await ContinuousClock().sleep(for: until - now, tolerance: .milliseconds(10))
                } catch {
                    return  // cancelled (the group's shutdown deadline): stop draining
                }
            }
        }
    }
}

import CohortNode
public import HTTPTypes
public import Hummingbird

extension ClusterNode {
    /// The header field a draining node's health answer carries (`Cohort-Draining: true`).
    /// `cohort balancer` takes a node out of rotation at its first such answer, instead of
    /// after `failureThreshold` failed checks.
    public static let drainingField = HTTPField.Name("Cohort-Draining")!

    /// The answer to a balancer's or orchestrator's health check: `200 OK` once the node
    /// holds what it should (``ClusterNode/isReady``), `503 Service Unavailable` before
    /// then, and `503` with `Cohort-Draining: true` while it drains
    /// (``ClusterNode/startDraining()``). Serve it outside `ClusterSessionMiddleware`, so
    /// that health checks are not counted as the traffic a drain waits out:
    /// `router.get("/health") { _, _ in node.healthResponse() }`.
    public func healthResponse() -> Response {
        if isDraining {
            noteDrainingHealthAnswer()
            return Response(status: .serviceUnavailable, headers: [Self.drainingField: "true"])
        }
        return Response(status: isReady ? .ok : .serviceUnavailable)
    }
}

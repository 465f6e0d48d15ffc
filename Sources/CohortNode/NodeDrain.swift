import CohortCore
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import UnixSignals

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
    let interruptingSignals: [UnixSignal]
    let interruptGrace: Duration
    /// Interrupting signals ignored so far (within the grace), for tests.
    let ignoredSignals = NIOLockedValueBox(0)

    /// - Parameters:
    ///   - interruptingSignals: signals that end a drain under way at once; the
    ///     application then stops and the node leaves, as after any drain. `cohort node`
    ///     passes SIGINT and SIGTERM, so a second Ctrl-C does not wait the drain out. The
    ///     signal that began the graceful shutdown is the service group's, not one of these;
    ///     one that arrives before the drain begins is lost.
    ///   - interruptGrace: an interrupting signal this soon after the drain began is
    ///     ignored (and logged): a terminal's Ctrl-C reaches a whole process group, so a
    ///     launcher that also forwards it as SIGTERM sends two at once.
    public init(
        node: ClusterNode, plan: DrainPlan = DrainPlan(), interruptingSignals: [UnixSignal] = [],
        interruptGrace: Duration = .milliseconds(500)
    ) {
        self.node = node
        self.plan = plan
        self.interruptingSignals = interruptingSignals
        self.interruptGrace = interruptGrace
    }

    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: the group is not stopping gracefully
        }
        let start = node.now
        // Trapped before the drain begins, so a signal sent once the node reports
        // "draining" is always seen.
        let signals = interruptingSignals.isEmpty ? nil : await UnixSignalsSequence(trapping: interruptingSignals)
        node.startDraining()
        let ending = await withTaskGroup(of: DrainPlan.Ending?.self) { group in
            group.addTask { await self.waitOut(start: start) }
            if let signals {
                group.addTask {
                    for await signal in signals {
                        if node.now - start >= interruptGrace { return .interrupted }
                        ignoredSignals.withLockedValue { $0 += 1 }
                        node.logger.notice("signal ignored: the drain began less than \(interruptGrace) ago; send it again to stop at once",
                                           metadata: ["signal": "\(signal)"])
                    }
                    return nil  // cancelled: the drain ended otherwise
                }
            }
            var ending: DrainPlan.Ending?
            for await result in group where result != nil {
                ending = result
                group.cancelAll()
                break
            }
            return ending
        }
        node.logger.notice("drain finished", metadata: [
            "cluster.drain.ending": "\(ending?.rawValue ?? "cancelled")", "cluster.drain.duration": "\(node.now - start)",
        ])
    }

    /// Waits until the plan says the drain is over; `nil` if cancelled first (the
    /// group's shutdown deadline, or an interrupting signal).
    private func waitOut(start: Instant) async -> DrainPlan.Ending? {
        while true {
            let now = node.now
            switch plan.step(start: start, now: now, lastRequest: node.lastRequestWhileDraining, healthAnswered: node.firstDrainingHealthAnswer) {
            case .finished(let ending):
                return ending
            case .wait(let until):
                do {
                    try await ContinuousClock().sleep(for: until - now, tolerance: .milliseconds(10))
                } catch {
                    return nil
                }
            }
        }
    }
}

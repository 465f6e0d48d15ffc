import CohortMembership
import CohortNode
import NIOConcurrencyHelpers
import Prometheus

/// A node's state in Prometheus' text format, for `cohort node --metrics`.
///
/// Two sources meet in one registry. The counters the library keeps as swift-metrics
/// `Counter`s (`cohort_commits_total`, `cohort_frames_rejected_total`, the refusals…)
/// arrive through `MetricsSystem`, bootstrapped with this registry by
/// ``MetricsServer/bootstrap()``.
/// Everything else is read from the node at each scrape (``render()``): its state as
/// gauges, and the replication engine's statistics as counters, advanced by what they
/// grew since the previous scrape. Nothing runs on the request path.
final class NodeMetricsExporter: Sendable {
    let registry: PrometheusCollectorRegistry
    let node: ClusterNode
    /// The statistics' values at the previous scrape, by metric name.
    private let exported = NIOLockedValueBox<[String: Int]>([:])

    init(node: ClusterNode, registry: PrometheusCollectorRegistry) {
        self.node = node
        self.registry = registry
    }

    /// The exposition, with the node's state as of now.
    func render() -> [UInt8] {
        exported.withLockedValue { exported in
            update(&exported)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8192)
        registry.emit(into: &bytes)
        return bytes
    }

    private var labels: [(String, String)] { [("node", node.configuration.name)] }

    private func update(_ exported: inout [String: Int]) {
        gauge("cohort_ready", "1 once the node holds what it should (state transfer done), as /health says", node.isReady ? 1 : 0)
        gauge("cohort_draining", "1 while the node drains before it stops", node.isDraining ? 1 : 0)

        gauge("cohort_sessions", "Session copies this node holds", node.sessionCount)
        let report = node.placementReport()
        let roles = [("primary", report.primary), ("backup", report.backup), ("stray", report.stray)]
        for (role, count) in roles {
            gauge("cohort_sessions_by_role", "Session copies this node holds, by its role for them (counted at most once a second)", count,
                  extra: [("role", role)])
        }
        gauge("cohort_replication_queue_bytes", "Bytes queued for the peers' replication connections", report.queueBytes.values.reduce(0, +))
        gauge("cohort_transfer_pending_pulls", "State transfer: sessions offered to this node and not pulled yet", report.pendingPulls)
        gauge("cohort_transfer_pending_handoffs", "State transfer: copies waiting for their owners to confirm them", report.pendingHandoffs)

        let members = DemoApp.currentMembers(node).filter { $0.id != node.id }
        for status in [Membership.Status.alive, .suspect, .dead, .left] {
            gauge("cohort_peers", "Other members, by status", members.filter { $0.status == status }.count, extra: [("status", "\(status)")])
        }

        let statistics = node.replicationStatistics
        let counters = node.counters
        let grown: [(String, String, Int)] = [
            ("cohort_deltas_applied_total", "Replicated changes applied from peers", statistics.deltasApplied),
            ("cohort_duplicates_ignored_total", "Replicated changes received again and ignored", statistics.duplicatesIgnored),
            ("cohort_gaps_detected_total", "Missed replicated changes, repaired by fetching the session", statistics.gapsDetected),
            ("cohort_sessions_received_total", "Whole sessions received from peers", statistics.sessionsReceived),
            ("cohort_ack_timeouts_total", "Acknowledged writes whose acks did not all arrive in time", statistics.ackTimeouts),
            ("cohort_writes_on_ended_sessions_total", "Writes refused because their session ended while the request ran", statistics.writesOnEndedSessions),
            ("cohort_writes_over_bounds_total", "Writes refused because, merged, they would have taken a session past its limits", statistics.writesOverBounds),
            ("cohort_sessions_expired_total", "Sessions ended by their idle timeout or lifetime", statistics.expired),
            ("cohort_transfer_offered_total", "State transfer: offer entries sent", statistics.offered),
            ("cohort_transfer_pulled_total", "State transfer: sessions pulled from peers", statistics.pulled),
            ("cohort_transfer_handed_over_total", "State transfer: copies dropped once their owners held them", statistics.handedOver),
            ("cohort_peer_connects_total", "Replication connections to peers established", counters.peerConnects),
            ("cohort_key_reloads_total", "Cluster key reloads (key roll steps)", counters.keyReloads),
            ("cohort_pauses_total", "Times the node had stood still long enough for peers to take its sessions over", counters.pauses),
        ]
        for (name, help, value) in grown {
            let counter = registry.makeCounter(descriptor: .init(metricName: name, unitName: "", helpText: help), labels: labels)
            let growth = value - exported[name, default: 0]
            if growth > 0 { counter.increment(by: Int64(growth)) }
            exported[name] = value
        }
    }

    private func gauge(_ name: String, _ help: String, _ value: Int, extra: [(String, String)] = []) {
        registry.makeGauge(descriptor: .init(metricName: name, unitName: "", helpText: help), labels: labels + extra).set(Int64(value))
    }
}

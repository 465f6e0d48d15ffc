import CohortBalancer
import CohortBalancerCore
import CohortCore
import CohortMembership
import CohortNode
import NIOConcurrencyHelpers

/// Keeps a balancer's backend table in step with cluster membership, for a balancer that
/// joined the cluster as an observer: nodes (with an HTTP address) become backends as
/// they are seen, and are marked down the moment membership suspects them, declares them
/// dead, or sees them leave, with no timeouts of the balancer's own; a process seen for the
/// first time waits for a passing health check (its `/health` is 503 until it holds what
/// it should).
///
/// Membership events arrive on more than one thread. Each sync reads the view and applies
/// it under one lock, so an older view is never applied after a newer one. A backend's
/// health changes only when its current process or that process's status changes: an
/// unrelated event does not undo what the balancer's own health checks found.
final class BalancerMembership: Sendable {
    private let node: ClusterNode
    private let balancer: BalancerServer<ContinuousClock>
    /// Per name, the process and status last applied.
    private let applied = NIOLockedValueBox<[String: Membership.Member]>([:])

    private init(node: ClusterNode, balancer: BalancerServer<ContinuousClock>) {
        self.node = node
        self.balancer = balancer
    }

    static func connect(_ node: ClusterNode, to balancer: BalancerServer<ContinuousClock>) {
        let sync = BalancerMembership(node: node, balancer: balancer)
        node.onMemberChange { _, _ in sync.sync() }
        sync.sync()
    }

    /// Makes the table hold the current process of every node name, and applies each
    /// one's status if it changed since the last sync.
    func sync() {
        applied.withLockedValue { applied in
            let current = node.currentMembers.filter { $0.role == .node && $0.httpAddress != nil }
            Self.apply(current, since: applied, to: balancer)
            applied = Dictionary(current.map { ($0.id.name, $0) }, uniquingKeysWith: { _, last in last })
        }
    }

    /// Updates `balancer` to `current` (one member per name): the backend set always, a
    /// backend's membership state only where its process or status differs from `applied`.
    static func apply(_ current: [Membership.Member], since applied: [String: Membership.Member],
                      to balancer: BalancerServer<ContinuousClock>) {
        let backends = current.compactMap { member in
            member.httpAddress.map { (name: member.id.name, address: $0) }
        }.sorted { $0.name < $1.name }
        balancer.updateBackends(backends)
        for member in current {
            let last = applied[member.id.name]
            guard last?.id != member.id || last?.status != member.status else { continue }
            // A process not seen before (a node that just started or restarted) may not serve
            // HTTP yet, or hold its sessions (its /health says when): it gets requests once
            // a health check passes. A known process that refuted a suspicion is up at once.
            balancer.setMembershipState(name: member.id.name, up: member.status == .alive, awaitingHealthCheck: last?.id != member.id)
        }
    }
}

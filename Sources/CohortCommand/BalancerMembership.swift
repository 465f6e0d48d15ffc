import CohortBalancer
import CohortBalancerCore
import CohortCore
import CohortMembership
import CohortNode

/// Keeps a balancer's backend table in step with cluster membership, for a balancer that
/// joined the cluster as an observer: nodes (with an HTTP address) become backends as
/// they are seen, are up while membership says alive, and are marked down the moment
/// membership suspects them, declares them dead, or sees them leave, with no timeouts of
/// the balancer's own.
enum BalancerMembership {
    static func connect(_ node: ClusterNode, to balancer: BalancerServer<ContinuousClock>) {
        node.onMemberChange { _, _ in
            sync(node.members, balancer)
        }
        sync(node.members, balancer)
    }

    /// Makes the table hold the current process of every node name, and its state.
    static func sync(_ members: [Membership.Member], _ balancer: BalancerServer<ContinuousClock>) {
        var current: [String: Membership.Member] = [:]
        for member in members where member.role == .node && member.httpAddress != nil {
            // Per name, prefer a live process (a restarted node) over tombstones.
            if let existing = current[member.id.name], existing.status.isLive, !member.status.isLive { continue }
            current[member.id.name] = member
        }
        let backends = current.values.compactMap { member in
            member.httpAddress.map { (name: member.id.name, address: $0) }
        }.sorted { $0.name < $1.name }
        balancer.updateBackends(backends)
        for member in current.values {
            balancer.setMembershipState(name: member.id.name, up: member.status == .alive)
        }
    }
}

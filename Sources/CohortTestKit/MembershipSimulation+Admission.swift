public import CohortCore
public import CohortMembership

extension MembershipSimulation {
    /// One answered ``Membership/Directive/verify(_:)``.
    public struct Verification: Hashable, Sendable, CustomStringConvertible {
        /// When the answer was given.
        public var time: Instant
        public var verifier: Int
        /// The node asked about.
        public var target: NodeID
        public var admitted: Bool

        public var description: String {
            "\(time) node\(verifier) verified \(target)#\(target.uid): \(admitted ? "admitted" : "rejected")"
        }
    }

    /// A verification in progress.
    struct PendingCheck {
        var doneAt: Instant
        var verifier: Int
        /// The verifier's process, so that an answer for a crashed one is dropped.
        var verifierUID: UInt64
        var target: NodeID
    }

    /// The verifications of `target` by `verifier` so far.
    public func verifications(of target: NodeID, by verifier: Int) -> [Verification] {
        verifications.filter { $0.verifier == verifier && $0.target == target }
    }

    /// Starts answering `node`'s request to verify `id`: done after ``verificationLatency``
    /// (a request for a node already being checked by `node` is ignored, as a shell does).
    mutating func startCheck(of id: NodeID, by node: Int) {
        guard !pendingChecks.contains(where: { $0.verifier == node && $0.target == id }) else { return }
        // Appended in time order: every check takes the same latency.
        pendingChecks.append(PendingCheck(doneAt: now + verificationLatency, verifier: node, verifierUID: nodes[node].id.uid, target: id))
    }

    /// Answers a check as a TLS dial would: it passes if the current process at the
    /// target's address is that very process (same uid and name), is running, is reachable
    /// from the verifier, and its certificate passes ``verification``.
    mutating func complete(_ check: PendingCheck) {
        let verifier = check.verifier
        guard nodes[verifier].isUp, nodes[verifier].id.uid == check.verifierUID else { return }
        var passed = false
        if let target = nodeByAddress[check.target.address] {
            let link = Link(from: verifier, to: target)
            let attempt = verificationAttempts[link, default: 0]
            verificationAttempts[link] = attempt + 1
            let reachable = groups.map { $0[verifier] == $0[target] } ?? true
            passed = nodes[target].isUp && nodes[target].id == check.target && reachable
                && verification(verifier, target, attempt)
        }
        verifications.append(Verification(time: now, verifier: verifier, target: check.target, admitted: passed))
        if passed {
            perform(nodes[verifier].instance.admit(check.target, now: now), from: verifier)
        } else {
            nodes[verifier].instance.rejectAdmission(check.target, now: now)
        }
    }

    /// Puts `packet` on the network from `node` to `target`'s address, as if `node` sent
    /// it (a misbehaving node's forged gossip, for instance).
    public mutating func inject(_ packet: Membership.Packet, from node: Int, to target: Int) {
        perform([.send(packet, to: Self.address(of: target))], from: node)
    }
}

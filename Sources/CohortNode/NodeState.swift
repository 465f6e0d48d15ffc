import CohortCore
import CohortMembership
import CohortReplication
import Logging

/// Everything mutable in a node, guarded by one lock in ``ClusterNode``.
///
/// Inputs mutate the two state machines under the lock and turn their directives into
/// ``NodeEffect``s, which the node carries out after releasing the lock (IO never happens
/// while it is held).
struct NodeState: Sendable {
    var membership: Membership.Instance
    var engine: ReplicationEngine
    /// Outbound links to the live peers, by name.
    var links: [String: PeerLink] = [:]
    var commitWaiters: [ReplicationEngine.CommitID: CheckedContinuation<ReplicationEngine.CommitOutcome?, Never>] = [:]
    var fetchWaiters: [String: [CheckedContinuation<Session?, Never>]] = [:]
    /// Loads waiting for discovery to end before they conclude a session does not exist.
    var discoveryWaiters: [CheckedContinuation<Void, Never>] = []
    var counters = NodeCounters()
    var stopping = false
    var nextBeacon: Instant = .zero
    /// When the node started ticking, and when it first saw a live peer (discovery).
    var startedAt: Instant?
    var firstPeerSeenAt: Instant?
    /// Nodes being verified before membership admits them (mutual TLS); bounded by
    /// membership's own bound on pending verifications.
    var verifying: Set<NodeID> = []
    /// How the node became ready, when it did without holding what its peers hold (see
    /// `ClusterNode.readinessNote`).
    var readinessNote: String?
    /// The last role counts `/cluster` computed, and when (see `ClusterNode.placementReport`).
    var roleCounts: (at: Instant, counts: ReplicationEngine.RoleCounts)?
    /// When the last tick ran, and until when loads check every session with its owners
    /// after the node found it had been paused (see ``isResyncing(now:pause:)``).
    var lastTickAt: Instant?
    var resyncUntil: Instant?

    /// Records a tick at `now`. A gap since the previous tick over `pause` starts (or
    /// extends) a period of `resync` in which ``isResyncing(now:pause:)`` holds. Returns
    /// the gap when it started a period, which is counted once (``NodeCounters/pauses``)
    /// however many gaps fall in it.
    mutating func noteTick(now: Instant, pause: Duration, resync: Duration) -> Duration? {
        defer { lastTickAt = now }
        guard let lastTickAt, now - lastTickAt > pause else { return nil }
        let started = !(resyncUntil.map { now < $0 } ?? false)
        resyncUntil = now + resync
        guard started else { return nil }
        counters.pauses += 1
        return now - lastTickAt
    }

    /// Whether this node may have stood still (a VM stall, SIGSTOP, a starved process)
    /// long enough for a probe of it to fail, so that peers may have suspected it and taken
    /// its sessions over, and has not run long enough since to have heard of it: its own
    /// copies are then not trusted alone. True from the first moment after such a pause
    /// (before the next tick ran) until `resyncUntil`. Never once the node stops (its
    /// ticks have ended).
    func isResyncing(now: Instant, pause: Duration) -> Bool {
        if stopping { return false }
        if let resyncUntil, now < resyncUntil { return true }
        if let lastTickAt, now - lastTickAt > pause { return true }
        return false
    }
}

/// IO and wake-ups decided under the lock, carried out after it is released.
enum NodeEffect: Sendable {
    case beacon(Membership.Packet)
    case datagram(Membership.Packet, to: Address)
    case frame(ReplicationMessage, PeerLink)
    case startLink(PeerLink)
    case closeLink(PeerLink)
    case verifyMember(NodeID)
    case resumeCommit(CheckedContinuation<ReplicationEngine.CommitOutcome?, Never>, ReplicationEngine.CommitOutcome)
    case resumeFetch([CheckedContinuation<Session?, Never>], Session?)
    case resumeDiscovery([CheckedContinuation<Void, Never>])
    case memberChanged(Membership.Member, previous: Membership.Status?)
    case commitDegraded(missing: [String])
    case event(SessionEvent)
    case conflicts([ConflictRecord])
    case readinessTimedOut(awaiting: [String], pulls: Int)
    case paused(Duration, resync: Duration)
}

extension NodeState {
    /// Applies membership directives: sends become datagrams, verification requests become
    /// checks (one per node at a time), member changes update the replication group and the
    /// peer links.
    mutating func absorb(
        _ directives: [Membership.Directive],
        now: Instant,
        makeLink: (NodeID) -> PeerLink,
        into effects: inout [NodeEffect]
    ) {
        for directive in directives {
            switch directive {
            case .send(let packet, let address):
                effects.append(.datagram(packet, to: address))
            case .verify(let id):
                // One check per node at a time; membership asks again if needed.
                if !stopping, verifying.insert(id).inserted { effects.append(.verifyMember(id)) }
            case .memberChanged(let member, let previous):
                effects.append(.memberChanged(member, previous: previous))
                // Observers (balancers) hold no sessions: they neither replicate nor are
                // replicated to.
                guard membership.myself.role == .node, member.role == .node, member.id.name != engine.nodeName else { continue }
                if member.status.isLive, firstPeerSeenAt == nil { firstPeerSeenAt = now }
                reconcileLink(named: member.id.name, now: now, makeLink: makeLink, into: &effects)
            }
        }
    }

    /// Makes the link and the replication group for `name` follow the process membership
    /// holds current for that name (``Membership/Instance/member(named:)``), whichever of
    /// its uids the event was about. Two processes of one name can be live at once for a
    /// while (a node restarted at another address, before its earlier life is found dead),
    /// and an event about the earlier one (suspected, refuting, declared dead) must not
    /// move the link away from the current one.
    private mutating func reconcileLink(named name: String, now: Instant, makeLink: (NodeID) -> PeerLink,
                                        into effects: inout [NodeEffect]) {
        guard let current = membership.member(named: name), current.status.isLive, current.role == .node else {
            // No live process of that name. A link membership does not know of stays: it
            // was opened to answer a process not admitted yet (`ensureReplyLink`).
            guard let link = links[name], membership.member(link.peer) != nil else { return }
            links[name] = nil
            effects.append(.closeLink(link))
            if engine.isPeer(name) { absorb(engine.onPeerDown(name, now: now), into: &effects) }
            return
        }
        if let link = links[name] {
            if link.peer.uid == current.id.uid {
                // The link may have been opened early, to answer the peer.
                if !engine.isPeer(name) { absorb(engine.onPeerUp(name, now: now), into: &effects) }
                return
            }
            // The same name with another uid: a restarted process. Its copies are gone.
            links[name] = nil
            effects.append(.closeLink(link))
            if engine.isPeer(name) { absorb(engine.onPeerDown(name, now: now), into: &effects) }
        }
        let link = makeLink(current.id)
        links[name] = link
        effects.append(.startLink(link))
        absorb(engine.onPeerUp(name, now: now), into: &effects)
    }

    /// A peer whose messages arrive before membership reports it (it just started or
    /// restarted) still gets answers: a link to it is opened from its authenticated hello.
    /// It joins the replication group only when membership says it is alive.
    mutating func ensureReplyLink(to peer: NodeID, makeLink: (NodeID) -> PeerLink, into effects: inout [NodeEffect]) {
        // With a link to an older process of that name, answers already go to the right
        // address; membership replaces that link when it sees the restart.
        guard peer.name != engine.nodeName, membership.myself.role == .node, links[peer.name] == nil else { return }
        let link = makeLink(peer)
        links[peer.name] = link
        effects.append(.startLink(link))
    }

    /// Applies replication directives: sends go to the peer's link, completions wake the
    /// requests waiting for them.
    mutating func absorb(_ directives: [ReplicationDirective], into effects: inout [NodeEffect]) {
        for directive in directives {
            switch directive {
            case .send(let message, let peer):
                if let link = links[peer] {
                    effects.append(.frame(message, link))
                }
            case .commitCompleted(let id, let outcome):
                if case .degraded(let missing) = outcome {
                    counters.degradedCommits += 1
                    effects.append(.commitDegraded(missing: missing))
                }
                if let waiter = commitWaiters.removeValue(forKey: id) {
                    effects.append(.resumeCommit(waiter, outcome))
                }
            case .fetchCompleted(let key, let session):
                if let waiters = fetchWaiters.removeValue(forKey: key) {
                    effects.append(.resumeFetch(waiters, session))
                }
            case .event(let event):
                effects.append(.event(event))
            }
        }
    }
}

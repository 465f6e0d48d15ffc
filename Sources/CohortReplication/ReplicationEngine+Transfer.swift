import CohortCore

// State transfer, with one mechanism for every membership change (a join, a crash, a
// graceful leave, a partition healing):
//
// 1. The *placement scan* walks this node's copies, a bounded batch per tick. For each
//    copy it computes the owners under the current membership and *offers* the copy
//    (id and version, a few dozen bytes) to every owner that is not known to hold it
//    already. "Known" means: it was a co-owner with this node at the previous completed
//    scan and stayed live throughout. When in doubt the copy is offered: offers are
//    cheap, and a receiver that already holds the version just acks.
// 2. The receiver *pulls* what it lacks with ordinary fetches, at most `pullWindow` at a
//    time (its back-pressure), from the first reachable node that offered it, and from
//    the next one if that node goes away. No message ever holds more than one session.
// 3. A node that holds a copy it no longer owns *hands it over*: it keeps the copy until
//    every owner acked that version, then drops it, so no single crash during a
//    transfer loses a session. Copies a node picked up by serving a request for a
//    session it does not own ("strays") are handed over the same way once idle.
// 4. After its scan, a node sends `offerEnd` to each live peer. A starting node is ready
//    (`/health` answers 200) once discovery is done, every live peer sent `offerEnd`, and
//    every offered copy was pulled. Until then it serves requests with fetch on miss.

extension ReplicationEngine {
    /// Most keys in one ``ReplicationMessage/fetchMany(_:)``.
    static let maxPullBatch = 256
}

struct TransferState: Sendable {
    var scanRequested = false
    var scan: PlacementScan?
    /// Membership at the start of the last completed scan.
    var baseView: Set<String> = []
    /// Peers that came up, restarted or went down since `baseView`.
    var fresh: Set<String> = []
    /// Offer entries waiting to be sent, by peer.
    var outgoing: [String: [SessionOffer]] = [:]
    var handoffs: [String: Handoff] = [:]
    var wanted: [String: Wanted] = [:]
    var wantQueue: [String] = []
    var wantQueueHead = 0
    var pullsInFlight = 0
    var awaitingOfferEnd: Set<String> = []
    var offerEndsReceived: Set<String> = []
    var discovered = false
    var ready = false
    var recentConflicts: [ConflictRecord] = []
}

struct PlacementScan: Sendable {
    var keys: [String]
    var position = 0
    /// Owners were known to hold their copies under this membership…
    var baseView: [(name: String, hash: UInt64)]
    /// …if they are among these peers (live then and since).
    var stable: Set<String>
}

struct Handoff: Hashable, Sendable {
    var version: SessionVersion
    var waiting: Set<String>
    var acked: Set<String> = []
    var deadline: Instant
}

struct Wanted: Hashable, Sendable {
    var version: SessionVersion
    var sources: [String]
    var askedFrom: String?
    var deadline: Instant
}

extension ReplicationEngine {
    /// Whether this node holds what it should: discovery is done, every live peer has
    /// offered its copies, and every offered copy has arrived. Stays true once reached.
    public var isReady: Bool { transfer.ready }

    /// Copies still to pull from peers (state transfer in progress).
    public var pendingPulls: Int { transfer.wanted.count }

    /// Copies this node is handing over to their owners.
    public var pendingHandoffs: Int { transfer.handoffs.count }

    /// Whether a placement scan is running or about to start.
    public var isScanning: Bool { transfer.scan != nil || transfer.scanRequested }

    /// Whether the shell's discovery phase ended (see ``markDiscovered()``).
    public var isDiscovered: Bool { transfer.discovered }

    /// The shell's discovery phase ended (the seeds answered, or none was configured, or
    /// the startup grace passed): readiness now depends only on the peers it knows.
    public mutating func markDiscovered() {
        transfer.discovered = true
    }

    /// Declares this node ready although its state transfer did not finish (a peer never
    /// sent `offerEnd`, e.g. its connection is broken while membership says alive).
    /// Returns what was still missing; fetch on miss covers it. The shell calls this
    /// after its readiness timeout, like Tomcat's `stateTransferTimeout`.
    public mutating func forceReady() -> (awaitingPeers: [String], pendingPulls: Int) {
        defer {
            transfer.ready = true
            // Copies parked for a source that never became a member are given up; those of
            // a member that is unreachable for now wait for it (or for its departure).
            transfer.wanted = transfer.wanted.filter { $0.value.askedFrom != nil || $0.value.sources.contains { peers.contains($0) } }
        }
        return (transfer.awaitingOfferEnd.sorted(), transfer.wanted.count)
    }

    /// Conflicts seen since the last call (for logging), oldest first.
    public mutating func drainConflicts() -> [ConflictRecord] {
        defer { transfer.recentConflicts = [] }
        return transfer.recentConflicts
    }

    // MARK: - Sender side: the placement scan

    mutating func startScan() {
        transfer.scanRequested = false
        let names = Set(view.map(\.name))
        let stable = transfer.baseView.intersection(names).subtracting(transfer.fresh).subtracting([nodeName])
        transfer.scan = PlacementScan(
            keys: Array(store.sessions.keys),
            baseView: transfer.baseView.sorted().map { ($0, Rendezvous.nodeHash($0)) },
            stable: stable)
    }

    mutating func stepScan(now: Instant, into directives: inout [ReplicationDirective]) {
        guard var scan = transfer.scan else { return }
        let end = min(scan.keys.count, scan.position + configuration.scanBatch)
        for index in scan.position..<end {
            let key = scan.keys[index]
            guard let session = store.sessions[key] else { continue }
            let owners = self.owners(key: key, route: session.id.route, in: view)
            let oldOwners = self.owners(key: key, route: session.id.route, in: scan.baseView)
            let known = oldOwners.contains(nodeName) ? Set(oldOwners).intersection(scan.stable) : []
            let targets = owners.filter { $0 != nodeName && !known.contains($0) }
            for target in targets {
                queueOffer(SessionOffer(id: session.id, version: session.version), to: target, into: &directives)
            }
            if owners.contains(nodeName) {
                transfer.handoffs[key] = nil
                expiry.schedule(key, at: deadline(of: session), in: &store.sessions)
            } else if targets.isEmpty {
                store.sessions[key] = nil
                statistics.handedOver += 1
            } else {
                transfer.handoffs[key] = Handoff(version: session.version, waiting: Set(targets), deadline: now + configuration.handoffRetry)
            }
        }
        scan.position = end
        if scan.position >= scan.keys.count {
            transfer.scan = nil
            flushOffers(into: &directives)
            for peer in peers.sorted() {
                directives.append(.send(.offerEnd, to: peer))
            }
            transfer.baseView = Set(view.map(\.name))
            transfer.fresh = []
        } else {
            transfer.scan = scan
        }
    }

    mutating func queueOffer(_ offer: SessionOffer, to peer: String, into directives: inout [ReplicationDirective]) {
        transfer.outgoing[peer, default: []].append(offer)
        statistics.offered += 1
        if let entries = transfer.outgoing[peer], entries.count >= configuration.offerBatch {
            transfer.outgoing[peer] = nil
            directives.append(.send(.offer(entries), to: peer))
        }
    }

    mutating func flushOffers(into directives: inout [ReplicationDirective]) {
        guard !transfer.outgoing.isEmpty else { return }
        for (peer, entries) in transfer.outgoing.sorted(by: { $0.key < $1.key }) where !entries.isEmpty {
            directives.append(.send(.offer(entries), to: peer))
        }
        transfer.outgoing = [:]
    }

    /// Starts handing over a copy this node does not own: offer it to every owner and
    /// drop it once all of them acked.
    mutating func startHandoff(_ session: Session, now: Instant, into directives: inout [ReplicationDirective]) {
        let key = session.id.key
        let targets = owners(of: session.id).filter { $0 != nodeName }
        guard !targets.isEmpty else { return }
        transfer.handoffs[key] = Handoff(version: session.version, waiting: Set(targets), deadline: now + configuration.handoffRetry)
        for target in targets {
            queueOffer(SessionOffer(id: session.id, version: session.version), to: target, into: &directives)
        }
    }

    mutating func handoffAcked(key: String, version: SessionVersion, from peer: String) {
        guard var handoff = transfer.handoffs[key], version >= handoff.version else { return }
        handoff.waiting.remove(peer)
        handoff.acked.insert(peer)
        guard handoff.waiting.isEmpty else {
            transfer.handoffs[key] = handoff
            return
        }
        transfer.handoffs[key] = nil
        if let session = store.sessions[key], session.version <= version, !owners(of: session.id).contains(nodeName) {
            store.sessions[key] = nil
            pendingTouches.remove(key)
            statistics.handedOver += 1
        }
    }

    /// Offers again what owners did not ack in time (they may not have known they own it
    /// yet, or a node changed in between).
    mutating func retryHandoffs(now: Instant, into directives: inout [ReplicationDirective]) {
        guard !transfer.handoffs.isEmpty else { return }
        for (key, handoff) in transfer.handoffs where handoff.deadline <= now {
            guard let session = store.sessions[key] else {
                transfer.handoffs[key] = nil
                continue
            }
            let owners = self.owners(of: session.id)
            if owners.contains(nodeName) {
                transfer.handoffs[key] = nil
                continue
            }
            let waiting = Set(owners).subtracting(handoff.acked)
            if waiting.isEmpty {
                transfer.handoffs[key] = nil
                store.sessions[key] = nil
                statistics.handedOver += 1
                continue
            }
            transfer.handoffs[key] = Handoff(
                version: session.version, waiting: waiting, acked: handoff.acked, deadline: now + configuration.handoffRetry)
            for target in waiting.sorted() {
                queueOffer(SessionOffer(id: session.id, version: session.version), to: target, into: &directives)
            }
        }
    }

    // MARK: - Receiver side: offers and pulls

    mutating func onOffer(_ entries: [SessionOffer], from peer: String, now: Instant, into directives: inout [ReplicationDirective]) {
        for entry in entries {
            let key = entry.id.key
            if let tombstone = store.tombstones[key], entry.version <= tombstone.version {
                directives.append(.send(.removed(key: key, version: tombstone.version, reason: tombstone.reason), to: peer))
                continue
            }
            if let held = store.sessions[key], held.version >= entry.version {
                if isHandingOver(held.id, peer) { directives.append(.send(.ack(key: key, version: held.version), to: peer)) }
                if held.version > entry.version {
                    // The offering node's copy is older (it lagged, or lost a conflict).
                    directives.append(.send(.session(held.snapshot(now: now)), to: peer))
                }
                continue
            }
            // Pulled even if this node does not (yet) count itself an owner: membership
            // views converge at slightly different times, and an offer ignored now would
            // not come again. If this node really is not an owner, the copy is a stray
            // and goes back to the owners once idle.
            want(key, version: entry.version, from: peer)
        }
        pumpPulls(now: now, into: &directives)
    }

    mutating func onOfferEnd(from peer: String, now: Instant) {
        transfer.offerEndsReceived.insert(peer)
        transfer.awaitingOfferEnd.remove(peer)
    }

    /// Whether `peer`, which offered session `id`, waits for an ack to drop its copy: it
    /// is not one of the owners (co-owners keep their copies, so acks to them would be
    /// wasted frames, two per session during a join). If views disagree, the peer offers
    /// again after `handoffRetry`, and the ack comes once they agree.
    func isHandingOver(_ id: SessionID, _ peer: String) -> Bool {
        !isOwner(peer, of: id)
    }

    private mutating func want(_ key: String, version: SessionVersion, from peer: String) {
        if var wanted = transfer.wanted[key] {
            if !wanted.sources.contains(peer) { wanted.sources.append(peer) }
            wanted.version = max(wanted.version, version)
            transfer.wanted[key] = wanted
            return
        }
        transfer.wanted[key] = Wanted(version: version, sources: [peer], askedFrom: nil, deadline: .zero)
        transfer.wantQueue.append(key)
    }

    /// Asks for queued copies while fewer than `pullWindow` are outstanding.
    mutating func pumpPulls(now: Instant, into directives: inout [ReplicationDirective]) {
        // Pulls go out batched per source, a few hundred keys per message.
        var batches: [String: [String]] = [:]
        defer {
            for (source, keys) in batches.sorted(by: { $0.key < $1.key }) {
                var start = 0
                while start < keys.count {
                    let end = min(keys.count, start + Self.maxPullBatch)
                    directives.append(.send(end - start == 1 ? .fetch(key: keys[start]) : .fetchMany(Array(keys[start..<end])), to: source))
                    start = end
                }
            }
        }
        while transfer.pullsInFlight < configuration.pullWindow, transfer.wantQueueHead < transfer.wantQueue.count {
            let key = transfer.wantQueue[transfer.wantQueueHead]
            transfer.wantQueueHead += 1
            guard var wanted = transfer.wanted[key], wanted.askedFrom == nil else { continue }
            if let held = store.sessions[key], held.version >= wanted.version {
                transfer.wanted[key] = nil
                for source in wanted.sources where isHandingOver(held.id, source) {
                    directives.append(.send(.ack(key: key, version: held.version), to: source))
                }
                continue
            }
            guard let source = wanted.sources.first(where: { peers.contains($0) && !unreachable.contains($0) }) else {
                // No source can be asked now (not a member yet, or its connection broke):
                // the copy stays wanted, parked until one can (``requeuePulls(from:)``),
                // so this node does not report ready without it.
                if wanted.sources.isEmpty { transfer.wanted[key] = nil }
                continue
            }
            wanted.askedFrom = source
            wanted.deadline = now + configuration.fetchTimeout
            transfer.wanted[key] = wanted
            transfer.pullsInFlight += 1
            batches[source, default: []].append(key)
        }
        if transfer.wantQueueHead > 4096, transfer.wantQueueHead * 2 > transfer.wantQueue.count {
            transfer.wantQueue.removeFirst(transfer.wantQueueHead)
            transfer.wantQueueHead = 0
        }
    }

    /// A session arrived: if it was pulled, the pull is done and every node that offered
    /// it learns this node now holds it.
    mutating func completePull(key: String, from peer: String, now: Instant, into directives: inout [ReplicationDirective]) {
        guard let wanted = transfer.wanted[key], wanted.askedFrom == peer else { return }
        transfer.wanted[key] = nil
        transfer.pullsInFlight -= 1
        statistics.pulled += 1
        if let held = store.sessions[key] {
            for source in wanted.sources where isHandingOver(held.id, source) {
                directives.append(.send(.ack(key: key, version: held.version), to: source))
            }
        }
        pumpPulls(now: now, into: &directives)
    }

    /// `peer` did not have what it offered (it ended or moved on): ask the next source.
    mutating func pullMissed(key: String, from peer: String, now: Instant, into directives: inout [ReplicationDirective]) {
        guard var wanted = transfer.wanted[key], wanted.askedFrom == peer else { return }
        transfer.pullsInFlight -= 1
        wanted.sources.removeAll { $0 == peer }
        wanted.askedFrom = nil
        requeue(key, wanted)
        pumpPulls(now: now, into: &directives)
    }

    /// `peer` went away: pulls asked from it go to the next source. A peer that `left`
    /// (membership says it is down) is no source any more; one whose connection broke
    /// stays one, last, to be asked again once reachable.
    mutating func reroutePulls(awayFrom peer: String, left: Bool, now: Instant, into directives: inout [ReplicationDirective]) {
        guard !transfer.wanted.isEmpty else { return }
        for (key, var wanted) in transfer.wanted where wanted.sources.contains(peer) {
            let asked = wanted.askedFrom == peer
            guard left || asked else { continue }
            wanted.sources.removeAll { $0 == peer }
            if !left { wanted.sources.append(peer) }
            if asked {
                transfer.pullsInFlight -= 1
                wanted.askedFrom = nil
                requeue(key, wanted)
            } else {
                transfer.wanted[key] = wanted.sources.isEmpty ? nil : wanted
            }
        }
        pumpPulls(now: now, into: &directives)
    }

    /// `peer` became a member or reachable again: the copies parked for want of a source
    /// it offered are asked for at the next pump.
    mutating func requeuePulls(from peer: String) {
        for (key, wanted) in transfer.wanted where wanted.askedFrom == nil && wanted.sources.contains(peer) {
            transfer.wantQueue.append(key)
        }
    }

    /// Pulls that got no answer in time are asked again (from the next source first).
    mutating func retryPulls(now: Instant) {
        guard transfer.pullsInFlight > 0 else { return }
        for (key, var wanted) in transfer.wanted where wanted.askedFrom != nil && wanted.deadline <= now {
            transfer.pullsInFlight -= 1
            if let asked = wanted.askedFrom, wanted.sources.count > 1 {
                wanted.sources.removeAll { $0 == asked }
                wanted.sources.append(asked)
            }
            wanted.askedFrom = nil
            requeue(key, wanted)
        }
    }

    private mutating func requeue(_ key: String, _ wanted: Wanted) {
        if wanted.sources.isEmpty {
            transfer.wanted[key] = nil
        } else {
            transfer.wanted[key] = wanted
            transfer.wantQueue.append(key)
        }
    }

    mutating func updateReadiness() {
        guard !transfer.ready, transfer.discovered, transfer.awaitingOfferEnd.isEmpty, transfer.wanted.isEmpty,
              transfer.scan == nil, !transfer.scanRequested
        else { return }
        transfer.ready = true
    }
}

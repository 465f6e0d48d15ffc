import CohortCore
import CohortMembership
import CohortReplication
import CohortWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

extension ClusterNode {
    /// Contacts the seeds, then ticks membership and replication every
    /// `membership.tickInterval` until graceful shutdown or cancellation. On graceful
    /// shutdown the node tells every member it leaves (so they remove it at once instead
    /// of waiting for the failure detector), then closes its sockets. Before leaving, it
    /// writes what its links still hold (bounded by the ack timeout): with async
    /// durability those are writes already answered.
    public func run() async throws {
        logger.info("node starting", metadata: [
            "cluster.address": "\(id.address)", "cluster.uid": "\(id.uid)",
            "cluster.seeds": "\(configuration.seeds.map(\.description).joined(separator: ","))",
            "cluster.protection": "\(configuration.protection.isSealed ? "sealed" : "INSECURE")",
        ])
        input { state, now, effects in
            state.startedAt = now  // loads from now on wait for discovery (see `load`)
            state.absorb(state.membership.start(now: now), now: now, makeLink: makeLink, into: &effects)
        }
        do {
            try await cancelWhenGracefulShutdown {
                try await self.tickLoop()
            }
        } catch is CancellationError {
            // Graceful shutdown or task cancellation: leave below.
        }
        await drainLinks()
        leave()
        await closeSockets()
        // Requests still waiting for acks or answers (the node was cancelled rather than
        // stopped after the application) complete now; later ones do not wait.
        input { state, _, effects in state.absorb(state.engine.onStop(), into: &effects) }
        eventListeners.finishAll()
        logger.info("node stopped")
    }

    /// A gap between ticks longer than this means the node stood still long enough for a
    /// probe of it to fail (see ``NodeState/isResyncing(now:pause:)``): the probe timeout
    /// less one tick (160 ms by default), and never under four ticks, which a busy
    /// machine's scheduler alone can take (with a probe interval under ~100 ms).
    var pauseThreshold: Duration {
        let membership = configuration.membership
        return max(membership.probeTimeout - membership.tickInterval, membership.tickInterval * 4)
    }

    private func tickLoop() async throws {
        let interval = configuration.membership.tickInterval
        var next = ContinuousClock.now
        while !Task.isCancelled {
            next = next.advanced(by: interval)
            try await ContinuousClock().sleep(until: next, tolerance: interval / 4)
            tick()
        }
    }

    func tick() {
        let beaconInterval = configuration.multicast?.interval
        let hasSeeds = !configuration.seeds.isEmpty || configuration.multicast != nil
        let grace = configuration.discoveryGrace
        let readinessTimeout = configuration.readinessTimeout
        input { state, now, effects in
            // After a pause, peers may have taken sessions over: check each with its owners
            // until they have certainly told this node (declared dead, it rejoins first).
            let resync = configuration.membership.detectionBound(clusterSize: state.membership.clusterSize)
            if let pause = state.noteTick(now: now, pause: pauseThreshold, resync: resync) {
                effects.append(.paused(pause, resync: resync))
            }
            state.absorb(state.membership.onTick(now: now), now: now, makeLink: makeLink, into: &effects)
            if !state.engine.isReady {
                let started = state.startedAt ?? now
                state.startedAt = started
                // Discovery is done when there is nobody to ask, shortly after the first
                // peer answered (gossip brings the rest with it), or after the grace.
                let settled = state.firstPeerSeenAt.map { now - $0 >= configuration.membership.probeInterval * 3 } ?? false
                if !hasSeeds || settled || now - started >= grace {
                    if hasSeeds, state.firstPeerSeenAt == nil, !state.engine.isDiscovered {
                        state.readinessNote = "no seed answered within \(grace); ready without a state transfer"
                    }
                    state.engine.markDiscovered()
                    if !state.discoveryWaiters.isEmpty {
                        effects.append(.resumeDiscovery(state.discoveryWaiters))
                        state.discoveryWaiters = []
                    }
                }
                if now - started >= readinessTimeout {
                    let missing = state.engine.forceReady()
                    state.readinessNote = "state transfer timed out after \(readinessTimeout) with \(missing.pendingPulls) copies not pulled"
                        + (missing.awaitingPeers.isEmpty ? "" : " (no offer end from \(missing.awaitingPeers.joined(separator: ",")))")
                    effects.append(.readinessTimedOut(awaiting: missing.awaitingPeers, pulls: missing.pendingPulls))
                }
            }
            state.absorb(state.engine.onTick(now: now), into: &effects)
            if state.engine.statistics.conflicts != state.counters.conflictsLogged {
                state.counters.conflictsLogged = state.engine.statistics.conflicts
                effects.append(.conflicts(state.engine.drainConflicts()))
            }
            if let beaconInterval, now >= state.nextBeacon, !state.stopping {
                state.nextBeacon = now + beaconInterval
                effects.append(.beacon(Membership.Packet(from: state.membership.myself, message: .ping(sequence: 0))))
            }
        }
    }

    private func leave() {
        input { state, now, effects in
            guard !state.stopping else { return }
            state.stopping = true
            if !state.discoveryWaiters.isEmpty {
                effects.append(.resumeDiscovery(state.discoveryWaiters))
                state.discoveryWaiters = []
            }
            for directive in state.membership.leave(now: now) {
                if case .send(let packet, let address) = directive {
                    effects.append(.datagram(packet, to: address))
                }
            }
        }
    }

    /// Writes every link's queued frames, waiting at most the ack timeout for them all.
    private func drainLinks() async {
        let links = state.withLockedValue { Array($0.links.values) }
        guard !links.isEmpty else { return }
        let loop = tcpChannel.eventLoop
        let done = loop.makePromise(of: Void.self)
        // Whichever comes first, all written or the timeout, completes `done` (once).
        let finished = NIOLockedValueBox(false)
        let finish: @Sendable () -> Void = {
            if finished.withLockedValue({ finished in defer { finished = true }; return !finished }) { done.succeed() }
        }
        let timeout = loop.scheduleTask(in: .nanoseconds(configuration.replication.ackTimeout.nanosecondsClamped), finish)
        EventLoopFuture.andAllComplete(links.map { $0.drained() }, on: loop).whenComplete { _ in
            timeout.cancel()
            finish()
        }
        try? await done.futureResult.get()
    }

    private func closeSockets() async {
        let links = state.withLockedValue { state in
            defer { state.links = [:] }
            return Array(state.links.values)
        }
        for link in links { link.close() }
        handle.set(nil)
        // Let the leave datagrams go out before the socket closes.
        try? await udpChannel.eventLoop.submit {}.get()
        await close(udpChannel)
        await close(tcpChannel)
        if let beacon { await close(beacon.channel) }
    }

    private func close(_ channel: any Channel) async {
        do {
            try await channel.close()
        } catch ChannelError.alreadyClosed {
        } catch {
            logger.warning("closing a socket failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Inputs from the network

    func onMembershipPacket(_ packet: Membership.Packet) {
        input { state, now, effects in
            guard !state.stopping else { return }
            state.absorb(state.membership.onPacket(packet, now: now), now: now, makeLink: makeLink, into: &effects)
        }
    }

    /// Handles the replication messages of one frame from `peer`, in order, under one
    /// acquisition of the state lock.
    func onReplicationMessages(_ messages: some Sequence<ReplicationMessage>, from peer: NodeID) {
        if logger.logLevel <= .trace {
            for message in messages {
                logger.trace("replication message in", metadata: ["cluster.peer": "\(peer)", "cluster.message": "\(message.logSummary)"])
            }
        }
        input { state, now, effects in
            state.ensureReplyLink(to: peer, makeLink: makeLink, into: &effects)
            for message in messages {
                state.absorb(state.engine.onPeerMessage(message, from: peer.name, now: now), into: &effects)
            }
        }
    }

    private func peerReachability(_ peer: NodeID, reachable: Bool) {
        input { state, now, effects in
            guard let link = state.links[peer.name], link.peer.uid == peer.uid else { return }
            if reachable {
                state.counters.peerConnects += 1
                state.engine.onPeerReachable(peer.name)
            } else {
                state.absorb(state.engine.onPeerUnreachable(peer.name, now: now), into: &effects)
            }
        }
    }

    // MARK: - Carrying out effects

    /// Runs `body` on the state under the lock, then performs the effects it produced.
    func input(_ body: (inout NodeState, Instant, inout [NodeEffect]) -> Void) {
        let now = self.now
        var effects: [NodeEffect] = []
        state.withLockedValue { state in
            body(&state, now, &effects)
            enqueueFrames(&effects, counters: &state.counters)
        }
        perform(effects)
    }

    /// Moves the frames among `effects` into their peers' links, in order. Called with
    /// the state lock held: the engine's order of messages to one peer (a whole session
    /// before the deltas made on top of it) must be the order on the wire, and two
    /// threads performing effects after the lock could otherwise swap them. Enqueueing
    /// only appends to a buffer; the write happens on the link's event loop.
    func enqueueFrames(_ effects: inout [NodeEffect], counters: inout NodeCounters) {
        guard effects.contains(where: { if case .frame = $0 { true } else { false } }) else { return }
        let trace = logger.logLevel <= .trace
        effects.removeAll { effect in
            guard case .frame(let message, let link) = effect else { return false }
            if trace {
                logger.trace("replication message out", metadata: ["cluster.peer": "\(link.peer)", "cluster.message": "\(message.logSummary)"])
            }
            if !link.send(message) {
                counters.sendQueueDrops += 1
                metrics.sendQueueDrops.increment()
            }
            return true
        }
    }

    func makeLink(_ peer: NodeID) -> PeerLink {
        var logger = self.logger
        logger[metadataKey: "cluster.peer"] = "\(peer)"
        return PeerLink(
            peer: peer,
            eventLoop: eventLoopGroup.next(),
            hello: { [weak self] in self?.helloFrame(for: peer) ?? ByteBuffer() },
            seal: { [weak self] batch, buffer in self?.sealStreamFrame(batch, for: peer, into: &buffer) },
            maxPendingBytes: configuration.maxPendingBytesPerPeer,
            maxBackoff: configuration.maxReconnectBackoff,
            logger: logger,
            tls: configuration.tls,
            onReachability: { [weak self] reachable in self?.peerReachability(peer, reachable: reachable) }
        )
    }

    func perform(_ effects: [NodeEffect]) {
        for effect in effects {
            switch effect {
            case .datagram(let packet, let address):
                sendDatagram(packet, to: address)
            case .beacon(let packet):
                if let beacon {
                    let frame = datagramFrame(packet)
                    beacon.channel.writeAndFlush(AddressedEnvelope(remoteAddress: beacon.target, data: frame), promise: nil)
                }
            case .frame:
                preconditionFailure("frames are enqueued under the state lock (enqueueFrames)")
            case .startLink(let link):
                link.start()
            case .closeLink(let link):
                link.close()
            case .verifyMember(let id):
                verifyMember(id)
            case .resumeCommit(let continuation, let outcome):
                continuation.resume(returning: outcome)
            case .resumeFetch(let continuations, let session):
                for continuation in continuations { continuation.resume(returning: session) }
            case .resumeDiscovery(let continuations):
                for continuation in continuations { continuation.resume() }
            case .memberChanged(let member, let previous):
                // A process first seen at a name: the name may point somewhere new.
                if previous == nil { datagramTargets.forget(member.id.address) }
                logMemberChange(member, previous: previous)
                for observer in memberObservers.withLockedValue({ $0 }) { observer(member, previous) }
            case .event(let event):
                eventListeners.publish(event)
            case .readinessTimedOut(let awaiting, let pulls):
                logger.warning("state transfer did not finish in time; reporting ready, missing sessions are fetched on a miss", metadata: [
                    "cluster.peers.silent": "\(awaiting.joined(separator: ","))", "cluster.pulls.pending": "\(pulls)",
                ])
            case .paused(let pause, let resync):
                logger.warning("this node did not run for a while; peers may have taken its sessions over: it checks each with their owners for a while", metadata: [
                    "cluster.paused": "\(pause)", "cluster.resync": "\(resync)",
                ])
            case .conflicts(let records):
                metrics.conflicts.increment(by: records.count)
                for record in records {
                    logger.warning("conflicting writes during a partition; the higher version wins", metadata: [
                        "cluster.session": "\(SessionID(key: record.key, route: "").logTag)",
                        "cluster.version.kept": "\(record.kept)", "cluster.version.lost": "\(record.lost)",
                    ])
                }
            case .commitDegraded(let missing):
                metrics.degradedCommits.increment()
                logger.warning("write completed without every ack (a timeout, or a peer's connection broke)", metadata: ["cluster.peers.missing": "\(missing.joined(separator: ","))"])
            }
        }
    }

    private func logMemberChange(_ member: Membership.Member, previous: Membership.Status?) {
        let metadata: Logger.Metadata = [
            "cluster.member": "\(member.id)", "cluster.member.uid": "\(member.id.uid)",
            "cluster.member.status": "\(member.status)", "cluster.member.previous": "\(previous.map(\.description) ?? "new")",
        ]
        switch member.status {
        case .alive, .left: logger.info("member changed", metadata: metadata)
        case .suspect, .dead: logger.warning("member changed", metadata: metadata)
        }
    }

    private func sendDatagram(_ packet: Membership.Packet, to address: Address) {
        datagramTargets.send(datagramFrame(packet), to: address)
    }
}

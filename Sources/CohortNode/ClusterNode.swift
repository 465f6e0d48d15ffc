import CohortCore
import CohortMembership
import CohortReplication
import CohortWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// One Cohort node: membership over UDP, replication over TCP, and the session API the
/// HTTP integration uses. Tomcat calls this a `SimpleTcpCluster`.
///
/// Create it with ``bind(configuration:eventLoopGroup:logger:)`` (which opens the cluster
/// port), then run it as a `Service` (it ticks the state machines until graceful
/// shutdown, then leaves the cluster and closes its sockets).
///
/// Thread safety: all mutable state sits behind one lock; inputs from channels and
/// requests mutate the state machines under it and carry out the resulting IO after
/// releasing it.
public final class ClusterNode: Service, Sendable {
    public let configuration: Configuration
    /// This process's identity (name, advertised cluster address, uid).
    public let id: NodeID
    /// The current codec; replaced by ``reloadKeys(_:)`` (a key roll).
    let codecBox: NIOLockedValueBox<FrameCodec>
    let logger: Logger
    let metrics: NodeMetrics
    let eventLoopGroup: any EventLoopGroup
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant
    let state: NIOLockedValueBox<NodeState>
    let tcpChannel: any Channel
    let udpChannel: any Channel
    /// The multicast discovery socket and group, when enabled.
    let beacon: (channel: any Channel, target: SocketAddress)?
    let handle: NodeHandle
    /// Members' addresses as socket addresses, for membership datagrams.
    let datagramTargets: DatagramTargets
    let memberObservers = NIOLockedValueBox<[@Sendable (Membership.Member, Membership.Status?) -> Void]>([])
    let eventListeners = SessionEventListeners()
    /// Replay protection: the numbers stamped on frames sent, the windows of frames received.
    let sequencer = FrameSequencer()
    let replay = NIOLockedValueBox(ReplayState())
    /// Which rejections and refusals get a log line (one per remote and kind per 10 s).
    let rejectionLog = NIOLockedValueBox(LogThrottle<Instant>())
    /// Set by ``startDraining()``; read on every request.
    let drainSignal = DrainSignal()

    /// Opens the cluster port and creates the node. It does not contact anyone until
    /// ``run()``.
    public static func bind(
        configuration: Configuration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "cohort.node")
    ) async throws -> ClusterNode {
        try configuration.validate()
        guard NodeID.isValidName(configuration.name) else {
            throw ConfigurationError("node name must be 1-64 characters from A-Z a-z 0-9 - _: \(configuration.name)")
        }
        // Members dial what a node announces: "any address" would send them to themselves.
        if (configuration.advertisedAddress ?? configuration.clusterAddress).isUnspecified {
            throw ConfigurationError(
                "the cluster address \(configuration.clusterAddress) says where to listen, not where other nodes can reach "
                    + "this one: set advertisedAddress (cohort node --advertise) to an address they can")
        }
        if let http = configuration.httpAddress, http.isUnspecified {
            throw ConfigurationError(
                "httpAddress \(http) is announced to balancers, which cannot connect to it: "
                    + "give the address they reach this node's HTTP on (cohort node --advertise-http)")
        }
        let handle = NodeHandle()
        let (tcp, udp) = try await ClusterTransport.bind(
            host: configuration.clusterAddress.host,
            port: configuration.clusterAddress.port,
            group: eventLoopGroup,
            handle: handle,
            limits: configuration.limits,
            tls: configuration.tls
        )
        var beacon: (channel: any Channel, target: SocketAddress)?
        if let multicast = configuration.multicast {
            do {
                beacon = try await MulticastBeacon.bind(
                    multicast, group: eventLoopGroup, handle: handle,
                    limits: WireLimitsView(maxDatagramLength: configuration.limits.maxDatagramLength))
            } catch {
                try? await tcp.close()
                try? await udp.close()
                throw error
            }
        }
        let boundPort = tcp.localAddress?.port ?? configuration.clusterAddress.port
        var advertised = configuration.advertisedAddress ?? configuration.clusterAddress
        if advertised.port == 0 { advertised.port = boundPort }
        var system = SystemRandomNumberGenerator()
        let id = NodeID(name: configuration.name, address: advertised, uid: system.next())
        let node = ClusterNode(
            configuration: configuration, id: id, tcp: tcp, udp: udp, beacon: beacon, handle: handle,
            group: eventLoopGroup, logger: logger, seed: system.next()
        )
        handle.set(node)
        return node
    }

    private init(
        configuration: Configuration, id: NodeID, tcp: any Channel, udp: any Channel,
        beacon: (channel: any Channel, target: SocketAddress)?, handle: NodeHandle,
        group: any EventLoopGroup, logger: Logger, seed: UInt64
    ) {
        self.configuration = configuration
        self.id = id
        self.codecBox = NIOLockedValueBox(FrameCodec(protection: configuration.protection, limits: configuration.limits))
        var logger = logger
        logger[metadataKey: "cluster.node"] = "\(configuration.name)"
        self.logger = logger
        self.metrics = NodeMetrics(node: configuration.name)
        self.eventLoopGroup = group
        self.origin = clock.now
        self.tcpChannel = tcp
        self.udpChannel = udp
        self.datagramTargets = DatagramTargets(channel: udp)
        self.beacon = beacon
        self.handle = handle
        // With mutual TLS, a node takes part in membership only once its certificate was
        // verified (ClusterNode+Admission); without, the key alone admits it.
        var membershipConfiguration = configuration.membership
        membershipConfiguration.requiresAdmission = configuration.tls != nil
        let membership = Membership.Instance(
            myself: id,
            role: configuration.role,
            httpAddress: configuration.httpAddress,
            seeds: configuration.seeds.filter { $0 != id.address },
            configuration: membershipConfiguration,
            random: SplitMix64(seed: seed)
        )
        let engine = ReplicationEngine(nodeName: configuration.name, configuration: configuration.replication)
        self.state = NIOLockedValueBox(NodeState(membership: membership, engine: engine))
    }

    /// This node's clock, as the state machines see it.
    var now: Instant {
        Instant(nanoseconds: (clock.now - origin).nanosecondsClamped)
    }

    // MARK: - Session API (used by the HTTP integration)

    /// A new session id issued by this node: 160 random bits from the system CSPRNG.
    public func makeSessionID() -> SessionID {
        var generator = SystemRandomNumberGenerator()
        return SessionID.generate(route: configuration.name, using: &generator)
    }

    /// The session `id`: this node's copy, or, if it holds none, the copy an owner sends
    /// when asked (fetch on miss). `nil` if no live node holds it, or if it is past its
    /// idle timeout or lifetime.
    ///
    /// With `verify` (the caller serves the session off its route: its route node failed,
    /// or holds an async write not here yet), while this node is not ready (state transfer
    /// still running), or when it is not one of the session's owners (`--placement
    /// owners:N`: its copy gets no deltas), the held copy is not trusted alone: every
    /// reachable owner is asked and the newest copy wins, so a write made while this node
    /// lagged is never served stale. So it is too for a while after this node stood still
    /// long enough for peers to take its sessions over (``NodeCounters/pauses``).
    public func load(id: SessionID, verify: Bool = false) async -> Session? {
        let key = id.key
        let now = self.now
        let pause = pauseThreshold
        let held: Session?? = state.withLockedValue { state in
            guard !verify, state.engine.isReady, state.engine.ownsCopy(of: id), state.engine.session(forKey: key) != nil,
                  !state.isResyncing(now: now, pause: pause)
            else { return .none }
            return .some(state.engine.usableSession(forKey: key, now: now))
        }
        if let held { return held }
        await awaitDiscovery()
        let fetched = await withCheckedContinuation { (continuation: CheckedContinuation<Session?, Never>) in
            var effects: [NodeEffect] = []
            let immediate: Session?? = state.withLockedValue { state in
                let holds = state.engine.session(forKey: key) != nil
                let checkPeers = verify || !state.engine.isReady || !state.engine.ownsCopy(of: id)
                    || state.isResyncing(now: now, pause: pause)
                if holds && !checkPeers { return .some(state.engine.usableSession(forKey: key, now: now)) }
                let (start, directives) = checkPeers
                    ? state.engine.onLocalVerify(id: id, now: now) : state.engine.onLocalMiss(id: id, now: now)
                switch start {
                case .notFound:
                    return .some(holds ? state.engine.usableSession(forKey: key, now: now) : nil)
                case .pending:
                    state.fetchWaiters[key, default: []].append(continuation)
                    state.absorb(directives, into: &effects)
                    enqueueFrames(&effects, counters: &state.counters)
                    return .none
                }
            }
            if let immediate { continuation.resume(returning: immediate) }
            perform(effects)
        }
        guard let fetched, !fetched.isExpired(now: self.now) else { return nil }
        return fetched
    }

    /// Set when this node became ready without a complete state transfer: no seed answered
    /// within the discovery grace (it may be the first node, or its seeds were unreachable),
    /// or the readiness timeout passed with copies not pulled. `nil` otherwise. Before
    /// stopping another node in a rolling restart, check it (`cohort status` does).
    public var readinessNote: String? {
        state.withLockedValue { $0.readinessNote }
    }

    /// Whether ``run()`` began and the discovery phase has not ended yet: the node may not
    /// know the peers holding a session, so a load that finds nothing here waits for it.
    public var isDiscovering: Bool {
        state.withLockedValue { state in !state.engine.isDiscovered && state.startedAt != nil && !state.stopping }
    }

    /// Returns once this node's discovery ended (its seeds answered, or the grace passed),
    /// at once if it has or is not running. Until then it may not know the peers holding
    /// a session yet, and "nobody has it" would start a new one: the user logged out by
    /// a node that just started.
    private func awaitDiscovery() async {
        guard isDiscovering else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waits = state.withLockedValue { state -> Bool in
                guard !state.engine.isDiscovered, !state.stopping else { return false }
                state.discoveryWaiters.append(continuation)
                return true
            }
            if !waits { continuation.resume() }
        }
    }

    /// What a commit did.
    public struct CommitReport: Sendable {
        /// The session after the commit; `nil` if it was invalidated.
        public var session: Session?
        /// `nil` for async durability or when there was no peer to wait for.
        public var outcome: ReplicationEngine.CommitOutcome?
        /// Why the write was refused: the session it was based on ended while the request
        /// ran (logged out, rotated or expired by then). `nil` for a write that was made.
        public var refusedBecause: EndReason?
        /// The write was refused: merged into the session as held, it would have broken
        /// ``LocalChange/bounds`` (concurrent writes that together grow it too much).
        public var exceededBounds = false
    }

    /// Commits one request's changes and replicates them. With acknowledged durability it
    /// returns once every reachable live peer applied the change, or after the ack timeout
    /// (logged and counted as degraded; it never hangs).
    public func commit(_ change: LocalChange) async -> CommitReport {
        let now = self.now
        let durability = configuration.durability
        metrics.commits.increment()
        if durability == .async {
            var effects: [NodeEffect] = []
            let commit = state.withLockedValue { state in
                let (commit, directives) = state.engine.onLocalCommit(change, durability: durability, now: now)
                effects.reserveCapacity(directives.count)
                state.absorb(directives, into: &effects)
                enqueueFrames(&effects, counters: &state.counters)
                return commit
            }
            perform(effects)
            return CommitReport(session: commit.session, outcome: nil, refusedBecause: commit.refusedBecause, exceededBounds: commit.exceededBounds)
        }
        // The waiter is registered under the same lock as the commit, so no completion
        // (an ack, a peer going down, a timeout) can slip in between.
        var session: Session?
        var refusedBecause: EndReason?
        var exceededBounds = false
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<ReplicationEngine.CommitOutcome?, Never>) in
            var effects: [NodeEffect] = []
            let commit = state.withLockedValue { state in
                let (commit, directives) = state.engine.onLocalCommit(change, durability: durability, now: now)
                effects.reserveCapacity(directives.count)
                if let id = commit.awaiting { state.commitWaiters[id] = continuation }
                state.absorb(directives, into: &effects)
                enqueueFrames(&effects, counters: &state.counters)
                return commit
            }
            session = commit.session
            refusedBecause = commit.refusedBecause
            exceededBounds = commit.exceededBounds
            if commit.awaiting == nil { continuation.resume(returning: nil) }
            perform(effects)
        }
        if outcome != nil { metrics.ackWait.recordNanoseconds(self.now.nanoseconds - now.nanoseconds) }
        return CommitReport(session: session, outcome: outcome, refusedBecause: refusedBecause, exceededBounds: exceededBounds)
    }

    /// This node's own copy of session `key`, without asking peers.
    public func localSession(forKey key: String) -> Session? {
        state.withLockedValue { $0.engine.session(forKey: key) }
    }

    /// A request used session `key` without changing it.
    public func recordAccess(key: String) {
        let now = self.now
        state.withLockedValue { $0.engine.onLocalAccess(key: key, now: now) }
    }

    // MARK: - Cluster view

    /// Whether the node named `name` can serve its sessions right now: it is this node, or
    /// an alive member whose replication connection works. A suspect, dead or unknown node,
    /// or one whose connection just broke (its process crashed), cannot.
    public func isServing(route name: String) -> Bool {
        if name == configuration.name { return true }
        return state.withLockedValue { state in
            guard let member = state.membership.member(named: name), member.status == .alive else { return false }
            return !state.engine.unreachable.contains(name)
        }
    }

    /// Every member this node knows, itself included, sorted by name.
    public var members: [Membership.Member] {
        state.withLockedValue { $0.membership.members }
    }

    /// For each name but this node's, the process membership holds current for it (its
    /// newest live one, else its newest): see ``Membership/Instance/member(named:)``.
    /// Sorted by name.
    public var currentMembers: [Membership.Member] {
        state.withLockedValue { state in
            let membership = state.membership
            let names = Set(membership.members.lazy.map(\.id.name)).subtracting([membership.myself.id.name])
            return names.sorted().compactMap { membership.member(named: $0) }
        }
    }

    /// Calls `observer` (on a network thread; keep it short) each time a member is first
    /// seen or changes status, in order. A balancer joined as an observer uses it to keep
    /// its backend table in step with membership.
    public func onMemberChange(_ observer: @escaping @Sendable (Membership.Member, Membership.Status?) -> Void) {
        memberObservers.withLockedValue { $0.append(observer) }
    }

    /// How long ``placementReport()`` reuses its role counts.
    static let roleCountsMaxAge: Duration = .seconds(1)

    /// Sessions this node holds (all copies).
    public var sessionCount: Int {
        state.withLockedValue { $0.engine.store.count }
    }

    /// Whether this node holds what it should (state transfer done); until then it serves
    /// with fetch on miss. `/health` reports it.
    public var isReady: Bool {
        state.withLockedValue { $0.engine.isReady }
    }

    /// What the node holds and is sending, for `/cluster`. Counting roles is O(sessions)
    /// under the node's lock (which every request needs), so the counts are reused for
    /// ``roleCountsMaxAge``: a client that asks in a loop cannot stall the node.
    public func placementReport() -> PlacementReport {
        let now = self.now
        let (roles, links, pulls, handoffs) = state.withLockedValue { state in
            let roles: ReplicationEngine.RoleCounts
            if let cached = state.roleCounts, now - cached.at < Self.roleCountsMaxAge {
                roles = cached.counts
            } else {
                roles = state.engine.roleCounts()
                state.roleCounts = (now, roles)
            }
            return (roles, state.links, state.engine.pendingPulls, state.engine.pendingHandoffs)
        }
        var queues: [String: Int] = [:]
        for (name, link) in links { queues[name] = link.pendingBytes }
        return PlacementReport(
            placement: configuration.replication.placement, primary: roles.primary, backup: roles.backup, stray: roles.stray,
            pendingPulls: pulls, pendingHandoffs: handoffs, queueBytes: queues)
    }

    /// Session events on this node (created, changed, id changed, expired, invalidated),
    /// local and from peers, in the order this node applied them. Each call returns a new
    /// sequence; it buffers up to `bufferSize` events and drops the oldest beyond that
    /// (a slow listener never slows the node). Ends when the task iterating it is
    /// cancelled or the node stops.
    public func sessionEvents(bufferSize: Int = 10_000) -> AsyncStream<SessionEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: SessionEvent.self, bufferingPolicy: .bufferingNewest(bufferSize))
        let token = eventListeners.add(continuation)
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            if self.eventListeners.remove(token) {
                self.state.withLockedValue { $0.engine.eventsEnabled = false }
            }
        }
        state.withLockedValue { $0.engine.eventsEnabled = true }
        return stream
    }

    /// Traffic counters.
    public var counters: NodeCounters {
        state.withLockedValue { $0.counters }
    }

    /// The replication engine's counters.
    public var replicationStatistics: Statistics {
        state.withLockedValue { $0.engine.statistics }
    }
}

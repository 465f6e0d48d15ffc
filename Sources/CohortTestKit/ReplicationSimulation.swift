import CohortCore
import CohortReplication

/// A deterministic cluster of ``ReplicationEngine``s for simulation tests: a manual
/// clock, an in-order network (one FIFO, so each link keeps its order), and membership
/// decided by the test (crash, join, partition, heal) instead of the failure detector,
/// which has its own simulations.
public struct ReplicationSimulation {
    public private(set) var engines: [String: ReplicationEngine] = [:]
    public private(set) var now = Instant(seconds: 1000)
    /// Messages sent, by kind ("delta", "offer", "session", ...).
    public private(set) var sent: [String: Int] = [:]
    let configuration: ReplicationEngine.Configuration
    private var queue: [(from: String, to: String, message: ReplicationMessage)] = []
    private var queueHead = 0
    /// Pairs of nodes that cannot reach each other.
    private var cut: Set<Pair> = []

    struct Pair: Hashable {
        var a: String
        var b: String
        init(_ x: String, _ y: String) { (a, b) = x < y ? (x, y) : (y, x) }
    }

    public init(nodes: [String], configuration: ReplicationEngine.Configuration) {
        self.configuration = configuration
        for name in nodes { engines[name] = ReplicationEngine(nodeName: name, configuration: configuration) }
        for name in nodes {
            for peer in nodes where peer != name { _ = engines[name]?.onPeerUp(peer, now: now) }
            engines[name]?.markDiscovered()
        }
    }

    public var liveNodes: [String] { engines.keys.sorted() }

    // MARK: - Membership

    /// `name` stops at once (`kill -9`): its copies are gone; the others see it down
    /// (`seenBy`: only those for now; the others once ``detect(_:)`` is called, as a
    /// failure detector reports a crash to different nodes at different times).
    public mutating func crash(_ name: String, seenBy: Set<String>? = nil) {
        engines[name] = nil
        for peer in liveNodes where seenBy?.contains(peer) ?? true {
            absorb(engines[peer]?.onPeerDown(name, now: now) ?? [], from: peer)
        }
    }

    /// The nodes that did not see `name` go down yet see it now.
    public mutating func detect(_ name: String) {
        for peer in liveNodes where engines[peer]?.isPeer(name) == true {
            absorb(engines[peer]?.onPeerDown(name, now: now) ?? [], from: peer)
        }
    }

    /// A new (or restarted, empty) node `name` joins and sees every reachable node.
    public mutating func join(_ name: String) {
        var engine = ReplicationEngine(nodeName: name, configuration: configuration)
        for peer in liveNodes where !cut.contains(Pair(name, peer)) { _ = engine.onPeerUp(peer, now: now) }
        engine.markDiscovered()
        engines[name] = engine
        for peer in liveNodes where peer != name && !cut.contains(Pair(name, peer)) {
            absorb(engines[peer]?.onPeerUp(name, now: now) ?? [], from: peer)
        }
    }

    /// Nodes in `side` and the others stop reaching each other; each side sees the
    /// other side down.
    public mutating func partition(_ side: Set<String>) {
        for a in liveNodes where side.contains(a) {
            for b in liveNodes where !side.contains(b) {
                cut.insert(Pair(a, b))
                absorb(engines[a]?.onPeerDown(b, now: now) ?? [], from: a)
                absorb(engines[b]?.onPeerDown(a, now: now) ?? [], from: b)
            }
        }
    }

    /// Every partition heals: the nodes see each other up again.
    public mutating func heal() {
        let pairs = cut
        cut = []
        for pair in pairs.sorted(by: { ($0.a, $0.b) < ($1.a, $1.b) }) where engines[pair.a] != nil && engines[pair.b] != nil {
            absorb(engines[pair.a]?.onPeerUp(pair.b, now: now) ?? [], from: pair.a)
            absorb(engines[pair.b]?.onPeerUp(pair.a, now: now) ?? [], from: pair.b)
        }
    }

    // MARK: - Requests

    /// The node that serves `id` for a balancer that knows the cluster: its primary as
    /// `via` sees it.
    public func primary(of id: SessionID, via node: String) -> String? {
        engines[node]?.owners(of: id).first
    }

    /// A request on `node` commits `changes` to session `id` (created if new), on top of
    /// the copy it holds. Returns the committed session.
    @discardableResult
    public mutating func write(_ id: SessionID, on node: String, _ changes: [AttributeChange], maxIdle: Duration = .seconds(3600)) -> Session? {
        guard engines[node] != nil else { return nil }
        let loaded = engines[node]?.session(forKey: id.key)?.version ?? .zero
        // Mutated in place: a copy of the engine would copy its whole store on write.
        guard let (commit, directives) = engines[node]?.onLocalCommit(
            LocalChange(id: id, loadedVersion: loaded, changes: changes, maxIdle: maxIdle), durability: .async, now: now)
        else { return nil }
        absorb(directives, from: node)
        return commit.session
    }

    /// A request on `node` reads session `id` without changing it.
    public mutating func access(_ id: SessionID, on node: String) {
        engines[node]?.onLocalAccess(key: id.key, now: now)
    }

    // MARK: - Time and delivery

    /// Delivers every queued message (and what they cause), at most `limit` messages.
    public mutating func deliver(limit: Int = 10_000_000) {
        var delivered = 0
        while queueHead < queue.count, delivered < limit {
            let (from, to, message) = queue[queueHead]
            queueHead += 1
            delivered += 1
            guard engines[to] != nil, engines[from] != nil, !cut.contains(Pair(from, to)) else { continue }
            absorb(engines[to]?.onPeerMessage(message, from: from, now: now) ?? [], from: to)
        }
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        }
    }

    /// Advances the clock by `step`, ticks every node, delivers everything.
    public mutating func tick(_ step: Duration = .milliseconds(20)) {
        now = now + step
        for name in liveNodes { absorb(engines[name]?.onTick(now: now) ?? [], from: name) }
        deliver()
    }

    /// Ticks until no node is scanning, pulling or handing over (or `limit` passes).
    /// Returns the simulated time it took.
    @discardableResult
    public mutating func settle(limit: Duration = .seconds(60)) -> Duration {
        let start = now
        let deadline = now + limit
        repeat {
            tick()
        } while now < deadline && !isQuiet
        let took = now - start
        // One more handoff-retry period for late acks.
        for _ in 0..<5 { tick(.seconds(1)) }
        return took
    }

    var isQuiet: Bool {
        queueHead == queue.count && engines.values.allSatisfy { $0.pendingPulls == 0 && $0.pendingHandoffs == 0 && !$0.isScanning }
    }

    private mutating func absorb(_ directives: [ReplicationDirective], from node: String) {
        for directive in directives {
            guard case .send(let message, let to) = directive else { continue }
            sent[Self.kind(of: message), default: 0] += 1
            queue.append((node, to, message))
        }
    }

    public mutating func resetCounts() { sent = [:] }

    static func kind(of message: ReplicationMessage) -> String {
        switch message {
        case .delta: "delta"
        case .ack: "ack"
        case .fetch: "fetch"
        case .session: "session"
        case .missing: "missing"
        case .removed: "removed"
        case .touched: "touched"
        case .offer: "offer"
        case .offerEnd: "offerEnd"
        case .fetchMany: "fetch"
        }
    }

    // MARK: - Checks

    /// For each session key: the live nodes holding a copy, and whether all copies are equal
    /// (same version and attributes).
    public func copies() -> [String: (holders: [String], consistent: Bool)] {
        var byKey: [String: [(String, Session)]] = [:]
        for (name, engine) in engines {
            for (key, session) in engine.store.sessions { byKey[key, default: []].append((name, session)) }
        }
        return byKey.mapValues { list in
            let first = list[0].1
            let consistent = list.allSatisfy { $0.1.version == first.version && $0.1.attributes == first.attributes }
            return (list.map(\.0).sorted(), consistent)
        }
    }
}

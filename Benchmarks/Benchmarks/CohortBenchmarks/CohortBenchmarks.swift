// Micro-benchmarks of Cohort's hot paths: wire codec, replication engine, session ids,
// balancer routing, a node's local commit/load and the session middleware on one request. Each benchmark runs its operation
// `scalingFactor` times per sample; run with `--scale` to see figures per operation.

import Benchmark
import CohortBalancerCore
import CohortCore
import CohortNode
import CohortReplication
import CohortWire
import NIOCore

// MARK: - Fixtures

/// A typical session id: 27-character random key, route `n1`.
let sessionID: SessionID = {
    var generator = SystemRandomNumberGenerator()
    return SessionID.generate(route: "n1", using: &generator)
}()

/// The demo's counter write: one attribute `count` of a few bytes.
let countChange: [AttributeChange] = [.set(name: "count", value: Array("12345".utf8))]

/// A typical delta, as a commit on n1 produces it and a peer receives it.
func typicalDelta(counter: UInt64) -> SessionDelta {
    SessionDelta(
        id: sessionID,
        base: counter == 0 ? .zero : SessionVersion(counter: counter, origin: "n1"),
        version: SessionVersion(counter: counter + 1, origin: "n1"),
        changes: countChange,
        maxIdle: .seconds(1800)
    )
}

let deltaMessage = WireMessage.replication(.delta(typicalDelta(counter: 41)))
let sealedCodec = FrameCodec(protection: .sealed(ClusterKey.generate()))
let insecureCodec = FrameCodec(protection: .insecure)
let sealedFrame = sealedCodec.encode(deltaMessage)
let insecureFrame = insecureCodec.encode(deltaMessage)

let cookieName = "COHORTSESSION"
let cookieHeader = "theme=dark; \(cookieName)=\(sessionID.key).n2; _ga=GA1.2.123456789.1700000000"

/// A replica's copy at v1 (holding a `payload` attribute of `payloadBytes` if not 0); each
/// operation applies the next delta of the chain (vN -> vN+1, one `count` change), as a
/// replica does for consecutive writes. Deltas are built before measuring.
func measureDeltaApply(_ benchmark: Benchmark, payloadBytes: Int) {
    var engine = ReplicationEngine(nodeName: "n2")
    _ = engine.onPeerUp("n1", now: .zero)
    var first = typicalDelta(counter: 0)
    if payloadBytes > 0 { first.changes.append(.set(name: "payload", value: [UInt8](repeating: 65, count: payloadBytes))) }
    _ = engine.onPeerMessage(.delta(first), from: "n1", now: .zero)
    let deltas = (1...UInt64(benchmark.scaledIterations.count)).map { ReplicationMessage.delta(typicalDelta(counter: $0)) }
    let now = Instant(seconds: 1)
    benchmark.startMeasurement()
    for delta in deltas {
        blackHole(engine.onPeerMessage(delta, from: "n1", now: now))
    }
    benchmark.stopMeasurement()
    precondition(engine.statistics.deltasApplied == deltas.count + 1)
}

/// An owner's commit of one `count` change to a session it holds (with a `payload`
/// attribute of `payloadBytes` if not 0), replicated to two peers, async.
func measureLocalCommit(_ benchmark: Benchmark, payloadBytes: Int) {
    var engine = ReplicationEngine(nodeName: "n1")
    _ = engine.onPeerUp("n2", now: .zero)
    _ = engine.onPeerUp("n3", now: .zero)
    var changes = countChange
    if payloadBytes > 0 { changes.append(.set(name: "payload", value: [UInt8](repeating: 65, count: payloadBytes))) }
    _ = engine.onLocalCommit(LocalChange(id: sessionID, loadedVersion: .zero, changes: changes, maxIdle: .seconds(1800)), durability: .async, now: .zero)
    let change = LocalChange(id: sessionID, loadedVersion: .zero, changes: countChange, maxIdle: .seconds(1800))
    let now = Instant(seconds: 1)
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
        blackHole(engine.onLocalCommit(change, durability: .async, now: now))
    }
    benchmark.stopMeasurement()
}

/// An acknowledged commit on n1 and both peers' acks, per operation, while
/// `otherWritesWaiting` writes on other sessions wait for n3's ack throughout.
func measureCommitAndAcks(_ benchmark: Benchmark, otherWritesWaiting: Int) {
    var engine = ReplicationEngine(nodeName: "n1")
    _ = engine.onPeerUp("n2", now: .zero)
    _ = engine.onPeerUp("n3", now: .zero)
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<otherWritesWaiting {
        let other = SessionID.generate(route: "n1", using: &generator)
        let change = LocalChange(id: other, loadedVersion: .zero, changes: countChange, maxIdle: .seconds(1800))
        let (commit, _) = engine.onLocalCommit(change, durability: .acknowledged, now: .zero)
        _ = engine.onPeerMessage(.ack(key: other.key, version: commit.session!.version), from: "n2", now: .zero)
    }
    let change = LocalChange(id: sessionID, loadedVersion: .zero, changes: countChange, maxIdle: .seconds(1800))
    _ = engine.onLocalCommit(change, durability: .async, now: .zero)
    let now = Instant(seconds: 1)
    let key = sessionID.key
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
        let (commit, sends) = engine.onLocalCommit(change, durability: .acknowledged, now: now)
        let version = commit.session!.version
        blackHole(sends)
        blackHole(engine.onPeerMessage(.ack(key: key, version: version), from: "n2", now: now))
        blackHole(engine.onPeerMessage(.ack(key: key, version: version), from: "n3", now: now))
    }
    benchmark.stopMeasurement()
    precondition(engine.pendingCommitCount == otherWritesWaiting)
}

/// Node used by the `ClusterNode` and middleware benchmarks; bound in their setup hook,
/// closed in teardown.
nonisolated(unsafe) var benchNode: ClusterNode?

/// Binds ``benchNode`` (no peers) holding the session ``sessionID`` with `count`.
func nodeSetup() async throws {
    benchNode = try await ClusterNode.bind(configuration: .init(
        name: "n1",
        clusterAddress: Address(host: "127.0.0.1", port: 0),
        protection: .sealed(ClusterKey.generate()),
        durability: .async
    ))
    _ = await benchNode!.commit(LocalChange(id: sessionID, loadedVersion: .zero, changes: countChange, maxIdle: .seconds(1800)))
}
func nodeTeardown() async throws {
    // The node never ran; nothing to stop. Its sockets close with the process.
    benchNode = nil
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    let fast = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 100_000
    )

    // Wire: encode + seal, open + decode.
    Benchmark("Frame encode+seal (delta, sealed)", configuration: fast) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(sealedCodec.encode(deltaMessage))
        }
    }
    Benchmark("Frame open+decode (delta, sealed)", configuration: fast) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! sealedCodec.decode(frame: sealedFrame))
        }
    }
    Benchmark("Frame encode (delta, insecure)", configuration: fast) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(insecureCodec.encode(deltaMessage))
        }
    }
    Benchmark("Frame decode (delta, insecure)", configuration: fast) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! insecureCodec.decode(frame: insecureFrame))
        }
    }

    // Replication engine (pure state machine).
    Benchmark("Engine delta apply (peer .delta at base)", configuration: fast) { benchmark in
        measureDeltaApply(benchmark, payloadBytes: 0)
    }
    for (label, bytes) in [("1 KB", 1024), ("64 KB", 64 * 1024)] {
        Benchmark("Engine delta apply (peer .delta at base, session with a \(label) attribute)", configuration: fast) { benchmark in
            measureDeltaApply(benchmark, payloadBytes: bytes)
        }
    }
    Benchmark("Engine local commit (async, 2 peers)", configuration: fast) { benchmark in
        measureLocalCommit(benchmark, payloadBytes: 0)
    }
    for (label, bytes) in [("1 KB", 1024), ("64 KB", 64 * 1024)] {
        Benchmark("Engine local commit (async, 2 peers, session with a \(label) attribute)", configuration: fast) { benchmark in
            measureLocalCommit(benchmark, payloadBytes: bytes)
        }
    }
    Benchmark("Engine local commit + 2 acks (acknowledged, 2 peers)", configuration: fast) { benchmark in
        measureCommitAndAcks(benchmark, otherWritesWaiting: 0)
    }
    Benchmark("Engine local commit + 2 acks (acknowledged, 2 peers, 1,000 other writes waiting)", configuration: fast) { benchmark in
        measureCommitAndAcks(benchmark, otherWritesWaiting: 1000)
    }

    // Session ids.
    Benchmark("SessionID.generate (SystemRandomNumberGenerator)", configuration: fast) { benchmark in
        var generator = SystemRandomNumberGenerator()
        for _ in benchmark.scaledIterations {
            blackHole(SessionID.generate(route: "n1", using: &generator))
        }
    }

    // Balancer routing decision.
    Benchmark("Balancer SessionCookie.route(fromCookieHeader:)", configuration: fast) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(SessionCookie.route(fromCookieHeader: cookieHeader, cookieName: cookieName))
        }
    }
    Benchmark("Balancer BackendTable.choose (sticky, 3 backends)", configuration: fast) { benchmark in
        var table = BackendTable(backends: (1...3).map { Backend(name: "n\($0)", address: Address(host: "127.0.0.1", port: 8080 + $0)) })
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(table.choose(route: "n2"))
        }
    }
    Benchmark("Balancer BackendTable.choose (failover, excluding route)", configuration: fast) { benchmark in
        var table = BackendTable(backends: (1...3).map { Backend(name: "n\($0)", address: Address(host: "127.0.0.1", port: 8080 + $0)) })
        let excluding: Set<String> = ["n2"]
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(table.choose(route: "n2", excluding: excluding))
        }
    }
    Benchmark("Balancer cookie -> route -> choose (one request)", configuration: fast) { benchmark in
        var table = BackendTable(backends: (1...3).map { Backend(name: "n\($0)", address: Address(host: "127.0.0.1", port: 8080 + $0)) })
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let route = SessionCookie.route(fromCookieHeader: cookieHeader, cookieName: cookieName)
            blackHole(table.choose(route: route))
        }
    }
    Benchmark("Balancer request head: frame, session, upstream head (one POST)", configuration: fast) { benchmark in
        let request = ByteBuffer(string: "POST /api/counter HTTP/1.1\r\nHost: 127.0.0.1:9080\r\nUser-Agent: wrk\r\n"
            + "Accept: */*\r\nCookie: \(cookieHeader)\r\nContent-Length: 0\r\n\r\n")
        let client = ForwardingClient(ip: "127.0.0.1")
        let requestID = RequestID(prefix: "0123456789abcdef-", serial: 0)
        benchmark.startMeasurement()
        for serial in benchmark.scaledIterations {
            var framer = RequestFramer()
            var bytes = request
            guard case .head(let head)? = try? framer.next(from: &bytes) else { fatalError("the request does not frame") }
            blackHole(head.session(cookieName: cookieName))
            blackHole(head.upstreamHead(bodyLength: 0, client: client, via: "1.1 cohort-1", requestID: requestID?.with(serial: UInt64(serial))))
        }
    }

    // ClusterNode: what the middleware calls per request (load, then commit), no peers.
    Benchmark("ClusterNode.commit (async durability, no peers)", configuration: fast, closure: { benchmark in
        let node = benchNode!
        let change = LocalChange(id: sessionID, loadedVersion: .zero, changes: countChange, maxIdle: .seconds(1800))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(await node.commit(change))
        }
    }, setup: nodeSetup, teardown: nodeTeardown)
    Benchmark("ClusterNode.load (held session)", configuration: fast, closure: { benchmark in
        let node = benchNode!
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(await node.load(id: sessionID))
        }
    }, setup: nodeSetup, teardown: nodeTeardown)
    Benchmark("ClusterNode.load + commit (one request's session work)", configuration: fast, closure: { benchmark in
        let node = benchNode!
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let session = await node.load(id: sessionID)!
            blackHole(await node.commit(LocalChange(id: session.id, loadedVersion: session.version, changes: countChange, maxIdle: session.maxIdle)))
        }
    }, setup: nodeSetup, teardown: nodeTeardown)

    middlewareBenchmarks(fast)
}

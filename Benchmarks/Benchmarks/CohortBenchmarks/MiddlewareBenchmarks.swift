// The session middleware on one request: cookie → load → the handler's read and write →
// commit (→ the exactly-once record, with a request id), as `ClusterSessionMiddleware`
// runs it inside Hummingbird's router, without the HTTP server around it.

import Benchmark
import CohortCore
import CohortHummingbird
import CohortNode
import CohortReplication
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// A context made without a channel (what a benchmark can build per request).
struct BenchmarkContext: ClusterSessionRequestContext {
    struct Source: RequestContextSource {
        var logger: Logger
    }

    var coreContext: CoreRequestContextStorage
    var session: ClusterSession

    init(source: Source) {
        self.coreContext = .init(source: source)
        self.session = ClusterSession()
    }
}

let benchmarkContextSource = BenchmarkContext.Source(logger: Logger(label: "benchmark", factory: { _ in SwiftLogNoOpLogHandler() }))

/// The demo's counter write: read `count`, write it plus one, answer with a small JSON body.
@Sendable func counterHandler(_ request: Request, _ context: BenchmarkContext) async throws -> Response {
    let count = try context.session.get(Int.self, forKey: "count") ?? 0
    try context.session.set(count + 1, forKey: "count")
    return Response(
        status: .ok, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"count":\#(count + 1)}"#)))
}

/// POST requests for the session `id`; with `requestIDs`, each carries its own
/// `Cohort-Request-Id` (a write's record holds only the last id, so `count` requests
/// reused in turn never replay).
func counterRequests(id: SessionID, count: Int, requestIDs: Bool) -> [Request] {
    (0..<count).map { index in
        var fields: HTTPFields = [.cookie: "theme=dark; COHORTSESSION=\(id)", .contentLength: "0"]
        if requestIDs { fields[RequestReplay.headerName] = "benchmarkprefix0-\(index)" }
        let head = HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/api/counter", headerFields: fields)
        return Request(head: head, body: RequestBody(buffer: ByteBuffer()))
    }
}

/// The measured part: `middleware` handles `requests` in turn, one per operation.
func measureWrites(
    _ benchmark: Benchmark, _ middleware: ClusterSessionMiddleware<BenchmarkContext>, _ requests: [Request]
) async throws {
    var index = 0
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
        let response = try await middleware.handle(
            requests[index], context: BenchmarkContext(source: benchmarkContextSource), next: counterHandler)
        blackHole(response)
        index = (index + 1) % requests.count
    }
    benchmark.stopMeasurement()
}

func middlewareBenchmarks(_ configuration: Benchmark.Configuration) {
    Benchmark("Middleware session write, session with a 64 KB attribute (load, handler, commit; async, no peers)",
              configuration: configuration, closure: { benchmark in
        let node = benchNode!
        let middleware = ClusterSessionMiddleware<BenchmarkContext>(node: node)
        var generator = SystemRandomNumberGenerator()
        let id = SessionID.generate(route: "n1", using: &generator)
        _ = await node.commit(LocalChange(
            id: id, loadedVersion: .zero,
            changes: [.set(name: "count", value: Array("1".utf8)), .set(name: "payload", value: [UInt8](repeating: 0x41, count: 64 * 1024))],
            maxIdle: .seconds(1800)))
        try await measureWrites(benchmark, middleware, counterRequests(id: id, count: 1_000, requestIDs: false))
    }, setup: nodeSetup, teardown: nodeTeardown)

    for requestIDs in [false, true] {
        let name = requestIDs
            ? "Middleware session write with a request id (load, handler, record, commit; async, no peers)"
            : "Middleware session write (load, handler, commit; async, no peers)"
        Benchmark(name, configuration: configuration, closure: { benchmark in
            let node = benchNode!
            let middleware = ClusterSessionMiddleware<BenchmarkContext>(node: node)
            let session = await node.load(id: sessionID)!
            try await measureWrites(benchmark, middleware, counterRequests(id: session.id, count: 1_000, requestIDs: requestIDs))
        }, setup: nodeSetup, teardown: nodeTeardown)
    }
}

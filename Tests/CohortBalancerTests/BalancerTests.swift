@testable import CohortBalancer
import CohortBalancerCore
import CohortCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Testing

private let sessionKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAA"

/// Three backends `a`, `b`, `c` (plus optional extras) behind a running balancer.
struct Harness: Sendable {
    let group: any EventLoopGroup
    let backends: [TestBackend]
    let balancer: BalancerServer<ContinuousClock>

    var port: Int { balancer.listenAddress.port }

    func get(_ path: String = "/", route: String? = nil, headers: [(String, String)] = []) async throws -> TestResponse {
        var all = headers
        if let route { all.append(("cookie", "theme=dark; COHORTSESSION=\(sessionKey).\(route)")) }
        return try await sendRequest(port: port, path: path, headers: all, group: group)
    }

    func post(_ body: String, route: String? = nil) async throws -> TestResponse {
        let headers = route.map { [("cookie", "COHORTSESSION=\(sessionKey).\($0)")] } ?? []
        return try await sendRequest(port: port, method: .POST, path: "/api/counter", headers: headers, body: body, group: group)
    }

    func admin(_ method: HTTPMethod, _ path: String) async throws -> TestResponse {
        guard let admin = balancer.adminAddress else { throw ChannelError.unknownLocalAddress }
        return try await sendRequest(port: admin.port, method: method, path: path, group: group)
    }

    func state(of name: String) -> Backend.State? {
        balancer.backends().first { $0.name == name }?.state
    }

    /// Polls `condition` until it holds or the deadline passes.
    func waitUntil(_ what: String, within timeout: Duration = .seconds(5), _ condition: () -> Bool) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while !condition() {
            guard clock.now < deadline else {
                Issue.record("timed out waiting for \(what)")
                return
            }
            try await clock.sleep(until: clock.now.advanced(by: .milliseconds(10)), tolerance: nil)
        }
    }
}

func withHarness(
    extraBackends: [Backend] = [],
    configure: (inout BalancerServer<ContinuousClock>.Configuration) -> Void = { _ in },
    _ body: @Sendable (Harness) async throws -> Void
) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    var backends: [TestBackend] = []
    for name in ["a", "b", "c"] {
        backends.append(try await TestBackend.start(name: name, group: group))
    }
    var configuration = BalancerServer<ContinuousClock>.Configuration(
        listen: Address(host: "127.0.0.1", port: 0),
        admin: Address(host: "127.0.0.1", port: 0),
        backends: backends.map { Backend(name: $0.name, address: Address(host: "127.0.0.1", port: $0.port)) } + extraBackends
    )
    configuration.healthCheckInterval = .milliseconds(100)
    // Long enough that a stalled test process does not fail three checks in a row.
    configuration.healthCheckTimeout = .seconds(2)
    configuration.responseTimeout = .seconds(2)
    configure(&configuration)
    var logger = Logger(label: "test.balancer")
    logger.logLevel = .warning
    let balancer = try await BalancerServer.bind(configuration: configuration, clock: ContinuousClock(),
                                                 eventLoopGroup: group, logger: logger)
    let serviceGroup = ServiceGroup(configuration: .init(services: [.init(service: balancer)], logger: logger))
    let harness = Harness(group: group, backends: backends, balancer: balancer)
    do {
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await serviceGroup.run() }
            defer { tasks.cancelAll() }
            try await body(harness)
            await serviceGroup.triggerGracefulShutdown()
            try await tasks.next()
        }
    } catch {
        for backend in backends { await backend.stop() }
        try await group.shutdownGracefully()
        throw error
    }
    for backend in backends { await backend.stop() }
    try await group.shutdownGracefully()
}

/// `withHarness` with one more backend, `hung`, that takes requests and never answers
/// them (it still passes health checks), on its own event loop group.
func withHungBackendHarness(
    configure: (inout BalancerServer<ContinuousClock>.Configuration) -> Void = { _ in },
    _ body: @Sendable (Harness) async throws -> Void
) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let hung = try await TestBackend.start(name: "hung", group: group, silent: true)
    do {
        try await withHarness(
            extraBackends: [Backend(name: "hung", address: Address(host: "127.0.0.1", port: hung.port))],
            configure: configure, body
        )
    } catch {
        await hung.stop()
        try await group.shutdownGracefully()
        throw error
    }
    await hung.stop()
    try await group.shutdownGracefully()
}

@Suite("Balancer proxy", .timeLimit(.minutes(1)))
struct BalancerTests {
    @Test("the cookie's route suffix picks the backend, every time")
    func stickyRouting() async throws {
        try await withHarness { (h: Harness) async throws in
            for route in ["a", "b", "c", "b", "a"] {
                let response = try await h.get(route: route)
                #expect(response.status == 200)
                #expect(response.backend == route)
                #expect(response.body.contains("route=\(route)"))
            }
        }
    }

    @Test("requests without a session spread round-robin over idle backends")
    func roundRobin() async throws {
        try await withHarness { (h: Harness) async throws in
            var served: [String] = []
            for _ in 0..<6 {
                let response = try await h.get()
                #expect(response.status == 200)
                served.append(response.backend ?? "?")
            }
            #expect(served.sorted() == ["a", "a", "b", "b", "c", "c"])
        }
    }

    @Test("X-Forwarded-For, X-Forwarded-Proto and Forwarded reach the backend; hop-by-hop headers do not")
    func forwardedHeaders() async throws {
        try await withHarness { (h: Harness) async throws in
            let response = try await h.get(headers: [("x-forwarded-for", "10.0.0.1")])
            #expect(response.body.contains("xff=10.0.0.1, 127.0.0.1"))
            #expect(response.body.contains("fwd=for=127.0.0.1;proto=http"))
            // Not a trusted proxy: its claim of https is replaced.
            #expect(try await h.get(headers: [("x-forwarded-proto", "https")]).body.contains("fwd=for=127.0.0.1;proto=http"))
        }
    }

    @Test("behind a trusted TLS terminator, its X-Forwarded-Proto: https reaches the nodes (so cookies get Secure)")
    func trustedTerminator() async throws {
        try await withHarness(configure: { $0.trustedProxies = ["127.0.0.1"] }) { (h: Harness) async throws in
            #expect(try await h.get(headers: [("x-forwarded-proto", "https")]).body.contains("fwd=for=127.0.0.1;proto=https"))
            #expect(try await h.get().body.contains("fwd=for=127.0.0.1;proto=http "))
        }
    }

    @Test("a POST gets a Cohort-Request-Id (two POSTs, two ids), a GET none; with request ids off, neither does")
    func requestIDs() async throws {
        @Sendable func requestID(_ response: TestResponse) -> String? {
            response.body.split(separator: " ").first { $0.hasPrefix("rid=") }.map { String($0.dropFirst(4)) }
        }
        try await withHarness { (h: Harness) async throws in
            let first = try #require(requestID(try await h.post("x")))
            let second = try #require(requestID(try await h.post("x")))
            #expect(first != "-" && second != "-" && first != second)
            #expect(requestID(try await h.get()) == "-")
        }
        try await withHarness(configure: { $0.retryWithRequestID = false }) { (h: Harness) async throws in
            #expect(requestID(try await h.post("x")) == "-")
        }
    }

    @Test("pipelined requests on one keep-alive connection are answered in order, each by its route's backend")
    func pipelinedRequests() async throws {
        try await withHarness { (h: Harness) async throws in
            let requests: [(method: HTTPMethod, route: String, body: String)] = [
                (.GET, "a", ""), (.POST, "b", "hello"), (.GET, "c", ""), (.POST, "a", String(repeating: "x", count: 3_000)),
            ]
            let responses = try await sendPipelined(port: h.port, requests: requests, group: h.group)
            #expect(responses.count == requests.count)
            for (request, response) in zip(requests, responses) {
                #expect(response.status == 200)
                #expect(response.backend == request.route)
                #expect(response.body.contains("method=\(request.method.rawValue) body=\(request.body.utf8.count) "))
            }
        }
    }

    @Test("a response larger than the hold buffer is relayed whole, and its keep-alive connection serves the next request")
    func largeResponse() async throws {
        try await withHarness { (h: Harness) async throws in
            let size = 3 << 20  // 48 times responseBufferBytes
            let requests: [(method: HTTPMethod, route: String, body: String)] = [(.GET, "b", ""), (.GET, "c", "")]
            let responses = try await sendPipelined(port: h.port, requests: requests, paths: ["/big/\(size)", "/"], group: h.group)
            #expect(responses.map(\.status) == [200, 200])
            #expect(responses.map { $0.backend ?? "-" } == ["b", "c"])
            #expect(responses.first?.body.utf8.count == size)
            #expect(responses.first?.body.utf8.allSatisfy { $0 == UInt8(ascii: "y") } == true)
        }
    }

    @Test("a chunked response arrives whole: with a length when it fits the hold buffer, re-chunked when relayed; HEAD gets no body")
    func chunkedResponses() async throws {
        try await withHarness { (h: Harness) async throws in
            let requests: [(method: HTTPMethod, route: String, body: String)] = [(.GET, "a", ""), (.GET, "b", ""), (.HEAD, "c", ""), (.GET, "a", "")]
            let responses = try await sendPipelined(port: h.port, requests: requests,
                                                    paths: ["/chunked/3", "/chunked/200", "/chunked/5", "/"], group: h.group)
            #expect(responses.map(\.status) == [200, 200, 200, 200])
            #expect(responses.map { $0.backend ?? "-" } == ["a", "b", "c", "a"])
            #expect(responses[0].body == String(repeating: "z", count: 3000))
            #expect(responses[0].headers.first(name: "content-length") == "3000")
            #expect(responses[1].body == String(repeating: "z", count: 200_000))
            #expect(responses[1].headers.first(name: "transfer-encoding") == "chunked")
            #expect(responses[2].body.isEmpty)
            #expect(responses[3].body.hasPrefix("name=a "))
        }
    }

    @Test("a client that leaves while its backend has not answered frees the request's slot")
    func clientLeavesDuringExchange() async throws {
        try await withHungBackendHarness { (h: Harness) async throws in
            let outstanding = { h.balancer.backends().first { $0.name == "hung" }?.outstandingRequests ?? -1 }
            let client = try await ClientBootstrap(group: h.group).connect(host: "127.0.0.1", port: h.port).get()
            let request = ByteBuffer(string: "GET / HTTP/1.1\r\nhost: x\r\ncookie: COHORTSESSION=\(sessionKey).hung\r\n\r\n")
            try await client.writeAndFlush(request).get()
            try await h.waitUntil("the request reached the hung backend") { outstanding() == 1 }
            try await client.close()
            try await h.waitUntil("the request's slot freed") { outstanding() == 0 }
            #expect(outstanding() == 0)
            #expect(try await h.get(route: "a").status == 200, "the balancer keeps serving")
        }
    }

    @Test("a backend that dies is routed around: GETs, POSTs and its sticky sessions succeed elsewhere")
    func failoverAfterBackendDies() async throws {
        try await withHarness { (h: Harness) async throws in
            // Warm the pool so that stale keep-alive connections exist.
            for route in ["a", "b", "c"] { _ = try await h.get(route: route) }
            await h.backends[2].stop()
            for _ in 0..<6 {
                let response = try await h.get()
                #expect(response.status == 200)
                #expect(response.backend != "c")
            }
            let sticky = try await h.get(route: "c")
            #expect(sticky.status == 200)
            #expect(sticky.backend == "a" || sticky.backend == "b")
            try await h.waitUntil("c marked down") { h.state(of: "c") == .down }
            for _ in 0..<4 {
                let response = try await h.post("hello", route: "c")
                #expect(response.status == 200)
                #expect(response.body.contains("method=POST body=5"))
            }
        }
    }

    @Test("a POST whose backend refuses connections is resent to another backend")
    func postFailoverOnConnectFailure() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let deadPort = try await unusedPort(group: group)
        try await group.shutdownGracefully()
        try await withHarness(
            // 127.0.0.2: the freed port may be handed to a listener on 127.0.0.1 meanwhile
            // (once it was the balancer itself, which then proxied to itself until 431).
            extraBackends: [Backend(name: "dead", address: Address(host: "127.0.0.2", port: deadPort))],
            configure: { $0.failureThreshold = 1_000; $0.healthCheckInterval = .seconds(60) }
        ) { (h: Harness) async throws in
            for _ in 0..<8 {
                let response = try await h.post("payload")
                #expect(response.status == 200)
                #expect(response.backend != "dead")
            }
            let routed = try await h.post("payload", route: "dead")
            #expect(routed.status == 200)
            // A body too large to buffer is streamed; none of it was sent to the dead
            // backend, so it still goes to another one, whole.
            let streamed = try await sendStreamingPost(port: h.port, chunks: 32, chunkSize: 64 * 1024, route: "dead", group: h.group)
            #expect(streamed.status == 200)
            #expect(streamed.backend != "dead")
            #expect(streamed.body.contains("method=POST body=\(32 * 64 * 1024) "))
        }
    }

    @Test("draining stops new sessions going to a node while its sessions keep their route")
    func drain() async throws {
        try await withHarness { (h: Harness) async throws in
            let drained = try await h.admin(.POST, "/_cohort/drain/b")
            #expect(drained.status == 200)
            #expect(drained.body.contains(#""state":"draining""#))
            for _ in 0..<6 {
                #expect(try await h.get().backend != "b")
            }
            #expect(try await h.get(route: "b").backend == "b")
            let table = try await h.admin(.GET, "/_cohort/backends")
            #expect(table.status == 200)
            #expect(table.body.contains(#"{"name":"b""#))
            #expect(try await h.admin(.POST, "/_cohort/drain/nope").status == 404)
            // A web page's cross-site POST (a browser adds Origin) is refused: no drain.
            let admin = try #require(h.balancer.adminAddress)
            let fromPage = try await sendRequest(port: admin.port, method: .POST, path: "/_cohort/drain/c",
                                                 headers: [("origin", "http://evil.example")], group: h.group)
            #expect(fromPage.status == 403)
            #expect(h.state(of: "c") == .up)
            #expect(try await h.admin(.POST, "/_cohort/undrain/b").status == 200)
            var served: Set<String> = []
            for _ in 0..<3 { served.insert(try await h.get().backend ?? "?") }
            #expect(served == ["a", "b", "c"])
        }
    }

    @Test("too many or too large request headers get 431, counted")
    func headerLimits() async throws {
        try await withHarness { (h: Harness) async throws in
            let many = (0..<101).map { ("x-h\($0)", "v") }
            #expect(try await h.get(headers: many).status == 431)
            let large = [("x-big", String(repeating: "v", count: 33 * 1024))]
            #expect(try await h.get(headers: large).status == 431)
            #expect(try await h.get().status == 200)
            #expect(h.balancer.refusals.count(.headersTooLarge) == 2)
            #expect(h.balancer.refusals.count(.bodyTooLarge) == 0)
        }
    }

    @Test("a request that already passed through this balancer (a loop) gets 508, counted")
    func loopDetected() async throws {
        try await withHarness { (h: Harness) async throws in
            // What the balancer itself would receive if it were one of its own backends.
            #expect(try await h.get(headers: [("via", "1.1 nginx, \(h.balancer.via)")]).status == 508)
            #expect(try await h.get(headers: [("via", "1.1 cohort-0")]).status == 200, "another balancer's entry is fine")
            #expect(h.balancer.refusals.count(.loop) == 1)
        }
    }

    @Test("with every backend gone, the client gets 503, and a backend reported up again is used")
    func noLiveBackend() async throws {
        try await withHarness { (h: Harness) async throws in
            for name in ["a", "b", "c"] { h.balancer.setMembershipState(name: name, up: false) }
            #expect(try await h.get().status == 503)
            h.balancer.setMembershipState(name: "a", up: true)
            #expect(try await h.get().backend == "a")
        }
    }

    @Test("a backend's 101 (no Upgrade is ever forwarded) is refused: 502, and the balancer keeps serving")
    func unrequestedUpgrade() async throws {
        try await withHarness { (h: Harness) async throws in
            let response = try await h.get("/switch", route: "a")
            #expect(response.status == 502)
            #expect(try await h.get(route: "a").status == 200)
        }
    }

    @Test("a response timeout retries an idempotent request once on another node; a POST gets 504")
    func responseTimeout() async throws {
        try await withHungBackendHarness(
            configure: { $0.responseTimeout = .seconds(1); $0.failureThreshold = 1_000 }
        ) { (h: Harness) async throws in
            let get = try await h.get(route: "hung")
            #expect(get.status == 200)
            #expect(get.backend != "hung")
            let post = try await h.post("x", route: "hung")
            #expect(post.status == 504)
        }
    }

    @Test("a graceful shutdown closes idle client connections at once; a busy one gets its response, then closes")
    func gracefulShutdown() async throws {
        try await withHungBackendHarness(
            configure: { $0.responseTimeout = .seconds(1); $0.failureThreshold = 1_000 }
        ) { (h: Harness) async throws in
            // An idle keep-alive connection: one request answered, the connection left open.
            let received = NIOLockedValueBox(ByteBuffer())
            let idle = try await ClientBootstrap(group: h.group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RawCollector(received: received)) }
                }
                .connect(host: "127.0.0.1", port: h.port).get()
            try await idle.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.1\r\nhost: x\r\n\r\n"))
            try await h.waitUntil("the idle connection's response") { received.withLockedValue { String(buffer: $0).contains("name=") } }
            // A busy one: its backend never answers; after the timeout it is retried elsewhere.
            async let busy = sendRaw(port: h.port, bytes: Array(
                "GET / HTTP/1.1\r\nhost: x\r\ncookie: COHORTSESSION=\(sessionKey).hung\r\n\r\n".utf8), timeout: .seconds(10), group: h.group)
            try await h.waitUntil("the busy request reached the hung backend") {
                h.balancer.backends().first { $0.name == "hung" }?.outstandingRequests == 1
            }

            h.balancer.connections.beginShutdown()
            try await h.waitUntil("the idle connection closed", within: .seconds(2)) { !idle.isActive }
            #expect(!idle.isActive)
            let reply = try await busy
            #expect(reply?.hasPrefix("HTTP/1.1 200") == true, "\(reply ?? "-")")
            #expect(reply?.lowercased().contains("connection: close") == true, "\(reply ?? "-")")
            // New connections are refused from now on.
            #expect(try await sendRaw(port: h.port, bytes: Array("GET / HTTP/1.1\r\nhost: x\r\n\r\n".utf8), group: h.group) == "")
        }
    }
}

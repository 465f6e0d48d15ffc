import CohortBalancerCore
import CohortCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

private func node(_ name: String, _ port: Int, host: String = "127.0.0.1") -> ExternalBalancerConfig.Node {
    .init(name: name, address: Address(host: host, port: port))
}

/// The files `cohort config nginx` and `cohort config haproxy` write, checked by the real
/// programs and run in front of test backends.
@Suite("nginx and HAProxy running the generated configurations")
struct GeneratedConfigLiveTests {
    private static let sessionKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAA"

    @Test("nginx -t accepts the file", .enabled(if: ExternalTool.nginx != nil, "nginx is not installed (apt-get install nginx)"))
    func nginxAccepts() throws {
        let nginx = try #require(ExternalTool.nginx)
        let directory = try ExternalTool.temporaryDirectory("nginx")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (prefix, requestIDs) in [(nil, true), (directory, true), (nil, false)] {
            let config = ExternalBalancerConfig(
                nodes: [node("n1", 8081), node("n2", 8082), node("node-4_x", 8084, host: "localhost")], cookieName: "my-session",
                requestIDs: requestIDs)
            let file = directory + "/nginx.conf"
            try NginxConfig(balancer: config, prefix: prefix).render().write(toFile: file, atomically: true, encoding: .utf8)
            // As the file's header and the README say: `-c` names the file inside the `-p` directory.
            let result = try ExternalTool.run(nginx, ["-t", "-q", "-p", directory, "-c", "nginx.conf", "-e", "stderr"])
            #expect(result.status == 0, "nginx -t (prefix \(prefix ?? "relative"), request ids \(requestIDs)) failed:\n\(result.output)")
        }
    }

    @Test("haproxy -c accepts the file", .enabled(if: ExternalTool.haproxy != nil, "haproxy is not installed (apt-get install haproxy)"))
    func haproxyAccepts() throws {
        let haproxy = try #require(ExternalTool.haproxy)
        let directory = try ExternalTool.temporaryDirectory("haproxy")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for requestIDs in [true, false] {
            let config = ExternalBalancerConfig(
                nodes: [node("n1", 8081), node("n2", 8082), node("node-4_x", 8084, host: "localhost")], cookieName: "my-session",
                requestIDs: requestIDs)
            let file = directory + "/haproxy.cfg"
            try HAProxyConfig(balancer: config).render().write(toFile: file, atomically: true, encoding: .utf8)
            let result = try ExternalTool.run(haproxy, ["-c", "-f", file])
            #expect(result.status == 0, "haproxy -c (request ids \(requestIDs)) failed:\n\(result.output)")
            #expect(!result.output.contains("WARNING"), "haproxy -c (request ids \(requestIDs)) warns:\n\(result.output)")
        }
    }

    @Test("nginx retries a POST whose node closed without answering, with the same request id; GETs carry none; a client's id is kept",
          .enabled(if: ExternalTool.nginx != nil, "nginx is not installed (apt-get install nginx)"))
    func nginxRequestIDs() async throws {
        try await requestIDs(through: "nginx")
    }

    @Test("HAProxy retries a POST whose node closed without answering, with the same request id; GETs carry none; a client's id is kept",
          .enabled(if: ExternalTool.haproxy != nil, "haproxy is not installed (apt-get install haproxy)"))
    func haproxyRequestIDs() async throws {
        try await requestIDs(through: "haproxy")
    }

    @Test("with --no-request-ids, nginx answers a POST whose node closed without answering with 502, sent once, without an id",
          .enabled(if: ExternalTool.nginx != nil, "nginx is not installed (apt-get install nginx)"))
    func nginxWithoutRequestIDs() async throws {
        try await requestIDs(through: "nginx", enabled: false)
    }

    @Test("with --no-request-ids, HAProxy answers a POST whose node closed without answering with 502, sent once, without an id",
          .enabled(if: ExternalTool.haproxy != nil, "haproxy is not installed (apt-get install haproxy)"))
    func haproxyWithoutRequestIDs() async throws {
        try await requestIDs(through: "haproxy", enabled: false)
    }

    /// Backends `a` (drops the first POST it reads: a node that died mid-request) and `b`
    /// behind `kind`, configured with request ids `enabled` or not; then the matching
    /// scenario, which starts with a POST whose session routes to `a`.
    private func requestIDs(through kind: String, enabled: Bool = true) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let a = try await TestBackend.start(name: "a", group: group, dropsFirstPost: true)
        let b = try await TestBackend.start(name: "b", group: group)
        let port = try await unusedPort(group: group)
        let directory = try ExternalTool.temporaryDirectory(kind)
        let config = ExternalBalancerConfig(
            nodes: [node("a", a.port), node("b", b.port)], listen: Address(host: "127.0.0.1", port: port), requestIDs: enabled)
        let running: ExternalTool.Running
        if kind == "nginx" {
            let file = directory + "/nginx.conf"
            try NginxConfig(balancer: config).render().write(toFile: file, atomically: true, encoding: .utf8)
            running = try ExternalTool.Running(try #require(ExternalTool.nginx), ["-p", directory, "-c", "nginx.conf", "-e", "stderr", "-g", "daemon off;"],
                                               log: directory + "/output.log")
        } else {
            let file = directory + "/haproxy.cfg"
            try HAProxyConfig(balancer: config).render().write(toFile: file, atomically: true, encoding: .utf8)
            running = try ExternalTool.Running(try #require(ExternalTool.haproxy), ["-f", file, "-db"], log: directory + "/output.log")
        }
        var failure: (any Error)?
        do {
            if enabled {
                try await scenario(kind: kind, port: port, a: a, b: b, group: group)
            } else {
                try await scenarioWithoutIDs(kind: kind, port: port, a: a, b: b, group: group)
            }
        } catch {
            failure = error
        }
        let output = running.stop()
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
        if let failure {
            print("[config] \(kind) output:\n\(output.suffix(8_000))")
            throw failure
        }
    }

    private func scenario(kind: String, port: Int, a: TestBackend, b: TestBackend, group: any EventLoopGroup) async throws {
        let (response, posts) = try await firstPost(kind: kind, port: port, a: a, b: b, group: group)
        #expect(response.status == 200, "the POST's retry was not answered: \(response.status) \(response.body)")
        #expect(posts.count == 2, "the POST reached the nodes \(posts.count) times, not once and a retry")
        let id = try #require(posts.first?.requestIDs.first, "the POST carried no Cohort-Request-Id")
        #expect(RequestIDSyntax.isValid(id.utf8), "not a valid request id: \(id)")
        #expect(posts.allSatisfy { $0.requestIDs == [id] }, "the retry carried another id: \(posts)")
        if kind == "nginx" { #expect(response.backend == "b", "nginx retried on \(response.backend ?? "?"), not a's backup") }

        // Another POST, another id; no id on a GET; a client's own id is passed on unchanged.
        let second = try await sendRequest(port: port, method: .POST, path: "/api/counter", headers: Self.routeA, body: "x", group: group)
        let secondID = try #require(Self.requestID(second))
        #expect(secondID != id && secondID != "-")
        #expect(Self.requestID(try await sendRequest(port: port, headers: Self.routeA, group: group)) == "-")
        let own = [("cohort-request-id", "client-chosen-0123456789")]
        #expect(Self.requestID(try await sendRequest(port: port, headers: Self.routeA + own, group: group)) == "client-chosen-0123456789")
        #expect(Self.requestID(try await sendRequest(port: port, method: .POST, headers: Self.routeA + own, body: "x", group: group))
                == "client-chosen-0123456789")
        // A client's id a node would ignore is replaced on a POST, which may be retried.
        for unusable in ["req:42", "short", "client-chosen-0123456789, client-chosen-9876543210"] {
            let sent = try await sendRequest(port: port, method: .POST, headers: Self.routeA + [("cohort-request-id", unusable)],
                                             body: "x", group: group)
            let used = try #require(Self.requestID(sent))
            #expect(RequestIDSyntax.isValid(used.utf8), "\(kind) sent \(used) for a client's \(unusable)")
        }
    }

    private func scenarioWithoutIDs(kind: String, port: Int, a: TestBackend, b: TestBackend, group: any EventLoopGroup) async throws {
        let (response, posts) = try await firstPost(kind: kind, port: port, a: a, b: b, group: group)
        #expect(response.status == 502, "a POST that reached a node was answered \(response.status) \(response.body)")
        #expect(posts.count == 1, "the POST reached the nodes \(posts.count) times: retried without a request id")
        #expect(posts.allSatisfy { $0.requestIDs.isEmpty }, "a request id was sent: \(posts)")
    }

    /// A session cookie whose route is backend `a`.
    private static let routeA = [("cookie", "COHORTSESSION=\(sessionKey).a")]

    /// Once the balancer forwards, a POST whose session routes to `a`: its response, and
    /// every delivery of a POST the backends saw.
    private func firstPost(kind: String, port: Int, a: TestBackend, b: TestBackend, group: any EventLoopGroup)
        async throws -> (TestResponse, [TestBackend.ReceivedRequest]) {
        try await waitForHealth(port: port, group: group, kind: kind)
        let response = try await sendRequest(port: port, method: .POST, path: "/api/counter", headers: Self.routeA, body: "x", group: group)
        let posts = (a.requests.withLockedValue { $0 } + b.requests.withLockedValue { $0 }).filter { $0.method == .POST }
        return (response, posts)
    }

    /// The `rid=` a test backend echoed (`-`: none).
    private static func requestID(_ response: TestResponse) -> String? {
        response.body.split(separator: " ").first { $0.hasPrefix("rid=") }.map { String($0.dropFirst(4)) }
    }

    /// Waits (up to 20 s) until `GET /health` through the balancer on `port` answers 200.
    private func waitForHealth(port: Int, group: any EventLoopGroup, kind: String) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            if let response = try? await sendRequest(port: port, path: "/health", group: group), response.status == 200 { return }
            guard ContinuousClock.now < deadline else { throw ExternalBalancerNotReady(kind: kind) }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

struct ExternalBalancerNotReady: Error, CustomStringConvertible {
    var kind: String
    var description: String { "\(kind) did not answer GET /health with 200 within 20 s" }
}

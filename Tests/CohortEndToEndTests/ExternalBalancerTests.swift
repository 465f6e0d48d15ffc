#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing

// Real nginx and HAProxy, configured by `cohort config nginx|haproxy`, in front of three
// real `cohort node` processes; one node is killed with SIGKILL.
//
// Each test is skipped (with the reason in the test report and on stdout) when its load
// balancer is not installed: `apt-get install nginx haproxy` (`.ci/run` does it). The
// balancers run from a directory of their own on a free port, never the system service.
@Suite(.serialized, .timeLimit(.minutes(3)), .tags(.endToEnd), .tracksFailuresForNodeLogs)
struct ExternalBalancerTests {
    static let trio = ["n1", "n2", "n3"]

    @Test(.enabled(if: ExternalBalancerKind.nginx.isInstalled, ExternalBalancerKind.nginx.skipReason))
    func nginxSticksAndFailsOver() async throws {
        try await stickinessAndFailover(through: .nginx)
    }

    @Test(.enabled(if: ExternalBalancerKind.haproxy.isInstalled, ExternalBalancerKind.haproxy.skipReason))
    func haproxySticksAndFailsOver() async throws {
        try await stickinessAndFailover(through: .haproxy)
    }

    @Test(.enabled(if: ExternalBalancerKind.nginx.isInstalled, ExternalBalancerKind.nginx.skipReason))
    func nginxTwoHundredClientsThroughKill9() async throws {
        try await loadThroughKill9(through: .nginx)
    }

    @Test(.enabled(if: ExternalBalancerKind.haproxy.isInstalled, ExternalBalancerKind.haproxy.skipReason))
    func haproxyTwoHundredClientsThroughKill9() async throws {
        try await loadThroughKill9(through: .haproxy)
    }

    /// 200 clients, each its own session, POST through the balancer while n1 is killed with
    /// SIGKILL: every POST answers 200 and every client's counts are exactly 1, 2, 3, ...
    /// A POST in flight on n1 is retried on another node with its `Cohort-Request-Id`; if n1
    /// had committed it, that node answers with the recorded response instead of counting
    /// it again.
    private func loadThroughKill9(through kind: ExternalBalancerKind) async throws {
        try await withTestCluster { cluster in
            try await cluster.startFullMesh(durability: "acknowledged")
            let failuresBefore = FailureTracker.count
            let balancer = try await ExternalBalancer.start(kind, in: cluster, nodes: Self.trio)
            let load = CounterLoad(clients: 200, endpoint: balancer.endpoint)
            let deadline = ContinuousClock.now + .seconds(60)
            /// Waits until `count` more requests are answered, while the balancer and `alive` run.
            func progress(_ count: Int, _ what: String, alive: [String]) async throws {
                try await load.waitForMore(count, what, deadline: deadline) {
                    try balancer.ensureRunning()
                    try cluster.ensureRunning(alive)
                }
            }
            load.start(workers: 24)
            do {
                load.enter(phase: "3 nodes")
                try await progress(1_000, "with all three nodes", alive: Self.trio)
                load.enter(phase: "n1 killed")
                cluster.process("n1").kill9()
                try await progress(1_000, "after kill -9 of n1", alive: ["n2", "n3"])
                try await load.stop()
            } catch {
                try? await load.stop()
                balancer.stop(dumpLogs: true)
                throw error
            }
            let totals = load.totals
            log("""
                \(kind), 200 clients: \(totals.requests) POSTs; failovers \(totals.failovers), \
                served by \(totals.servedBy.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")), \
                slowest \(totals.slowest.readable), violations \(totals.violations.count)
                """)
            #expect(totals.violations.isEmpty, """
                \(totals.violations.count) violation(s) through \(kind); the first ones:
                \(totals.violations.prefix(25).map { "  \($0)" }.joined(separator: "\n"))
                """)
            #expect(totals.failovers >= 1, "no request failed over although n1 was killed")
            #expect((totals.servedBy["n1"] ?? 0) > 0, "n1 served nothing before it was killed: \(totals.servedBy)")
            balancer.stop(dumpLogs: FailureTracker.count > failuresBefore)
        }
    }

    /// 10 POSTs stick to the node that created the session; that node is killed; the next
    /// POST is answered (200) by another node with the next count and the same random part;
    /// the following requests stick to one node.
    private func stickinessAndFailover(through kind: ExternalBalancerKind) async throws {
        try await withTestCluster { cluster in
            try await cluster.startFullMesh(durability: "acknowledged")
            let failuresBefore = FailureTracker.count
            let balancer = try await ExternalBalancer.start(kind, in: cluster, nodes: Self.trio)
            do {
                try await scenario(cluster: cluster, balancer: balancer)
                balancer.stop(dumpLogs: FailureTracker.count > failuresBefore)
            } catch {
                balancer.stop(dumpLogs: true)
                throw error
            }
        }
    }

    private func scenario(cluster: TestCluster, balancer: ExternalBalancer) async throws {
        let kind = balancer.kind
        var browser = Browser()
        var before: [SessionInfo] = []
        for _ in 1...10 {
            before.append(try Self.increment(&browser, through: balancer, "before the kill"))
        }
        let first = try #require(before.first)
        #expect(before.map(\.count) == Array(1...10), "counts through \(kind): \(before.map(\.count))")
        #expect(Set(before.map(\.node)) == [first.node], "\(kind) spread one session over \(before.map(\.node))")
        #expect(before.allSatisfy { $0.route == $0.node }, "ids vs serving nodes: \(before.map { "\($0.id)@\($0.node)" })")
        #expect(Set(before.map(\.key)) == [first.key], "the random part changed: \(before.map(\.id))")
        let sticky = first.node
        try #require(Self.trio.contains(sticky), "session served by unknown node \(sticky)")

        cluster.process(sticky).kill9()
        let killedAt = ContinuousClock.now
        let failedOver = try Self.increment(&browser, through: balancer, "first POST after kill -9 of \(sticky)")
        log("\(kind): first POST after kill -9 of \(sticky) answered by \(failedOver.node) in \((ContinuousClock.now - killedAt).readable)")
        #expect(failedOver.count == 11, "count after fail-over through \(kind): \(failedOver.count)")
        #expect(failedOver.key == first.key, "random part changed on fail-over: \(first.id) -> \(failedOver.id)")
        #expect(failedOver.node != sticky, "served by the killed node \(sticky)?")
        #expect(failedOver.route == failedOver.node, "route not rebound to the serving node: \(failedOver.id) served by \(failedOver.node)")

        var after: [SessionInfo] = []
        for _ in 1...5 {
            after.append(try Self.increment(&browser, through: balancer, "after the fail-over"))
        }
        #expect(after.map(\.count) == Array(12...16), "counts after fail-over: \(after.map(\.count))")
        #expect(Set(after.map(\.node)) == [failedOver.node], "after fail-over \(kind) sent the session to \(after.map(\.node))")
        #expect(Set(after.map(\.key)) == [first.key], "random part changed after fail-over: \(after.map(\.id))")
    }

    /// `POST /api/counter` through the balancer; anything but 200 is an error naming `stage`.
    private static func increment(
        _ browser: inout Browser, through balancer: ExternalBalancer, _ stage: String
    ) throws -> SessionInfo {
        try balancer.ensureRunning()
        let response = try browser.send("POST", "/api/counter", on: balancer.endpoint)
        guard response.status == 200 else {
            throw HTTPClientError.unexpectedStatus(
                response.status, expected: 200, request: "POST /api/counter through \(balancer.kind) (\(stage))", body: response.text
            )
        }
        return try response.decode(SessionInfo.self)
    }

    private func log(_ message: String) {
        print("[e2e] \(message)")
    }
}

/// The load balancers `cohort config` writes configurations for.
enum ExternalBalancerKind: String, Sendable, CustomStringConvertible {
    case nginx
    case haproxy

    var description: String { rawValue }

    /// The executable: on `PATH`, or where Debian installs it (`/usr/sbin`, often not on a
    /// user's `PATH`). Prints why the test is skipped when it is missing.
    var executable: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        let found = directories.map { "\($0)/\(rawValue)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        if found == nil { print("[e2e] \(skipReason)") }
        return found
    }

    var isInstalled: Bool { executable != nil }

    var skipReason: Comment {
        "\(rawValue) is not installed (not on PATH nor in /usr/sbin): skipping the \(rawValue) test; `apt-get install \(rawValue)` to run it"
    }
}

/// A load balancer that exited while the test expected it to run.
struct BalancerExited: StopsWaiting, CustomStringConvertible {
    var kind: ExternalBalancerKind
    var status: ExitStatus
    var description: String { "\(kind) is not running: \(status) (its output is printed at the end of the test)" }
}

/// One nginx or HAProxy process, running a configuration made by the built `cohort config`
/// binary, on a free loopback port, with its files in a directory of its own inside the
/// cluster's directory. ``stop(dumpLogs:)`` (also run on deinit) ends it and its workers.
final class ExternalBalancer {
    let kind: ExternalBalancerKind
    let endpoint: Endpoint
    let directory: URL
    let configPath: String
    let process: NodeProcess
    private var isStopped = false

    private init(kind: ExternalBalancerKind, endpoint: Endpoint, directory: URL, configPath: String, process: NodeProcess) {
        self.kind = kind
        self.endpoint = endpoint
        self.directory = directory
        self.configPath = configPath
        self.process = process
    }

    deinit {
        stop(dumpLogs: false)
    }

    /// Generates the configuration with `cohort config <kind>` for `nodes` of `cluster`,
    /// starts the balancer in the foreground and waits until `GET /health` through it
    /// answers 200.
    static func start(_ kind: ExternalBalancerKind, in cluster: TestCluster, nodes: [String]) async throws -> ExternalBalancer {
        guard let executable = kind.executable else { throw HarnessFailure(kind.skipReason.description) }
        let endpoint = Endpoint.loopback(try FreePorts.tcp())
        var arguments = ["config", kind.rawValue, "--listen", "\(endpoint)"]
        for name in nodes { arguments += ["--backend", "\(name)=\(cluster.http(name))"] }
        let generator = try cluster.spawn("config-\(kind)", arguments)
        let status = try await generator.waitForExit(timeout: .seconds(10))
        guard status == .exited(0), !generator.stdout.isEmpty else {
            if status == nil { generator.kill9() }
            throw HarnessFailure("cohort config \(kind): \(status.map { "\($0)" } ?? "did not exit within 10 s")\n\(generator.report())")
        }

        let directory = cluster.directory.appendingPathComponent(kind.rawValue, isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let configPath: String
        let balancerArguments: [String]
        switch kind {
        case .nginx:
            configPath = directory.appendingPathComponent("nginx.conf").path
            balancerArguments = ["-p", directory.path, "-c", configPath, "-e", "stderr", "-g", "daemon off;"]
        case .haproxy:
            configPath = directory.appendingPathComponent("haproxy.cfg").path
            balancerArguments = ["-f", configPath, "-db"]
        }
        try generator.stdout.write(toFile: configPath, atomically: true, encoding: .utf8)
        let process = try NodeProcess(
            label: kind.rawValue, executable: executable, arguments: balancerArguments, logDirectory: cluster.directory
        )
        let balancer = ExternalBalancer(kind: kind, endpoint: endpoint, directory: directory, configPath: configPath, process: process)
        do {
            let waited = try await waitUntil("\(kind) on \(endpoint) forwards GET /health", timeout: .seconds(20)) {
                try balancer.ensureRunning()
                let response = try HTTPClient.get("/health", on: endpoint, timeout: .seconds(1))
                if response.status != 200 { throw NotYet("GET /health through \(kind): HTTP \(response.status)") }
                return true
            }
            print("[e2e] \(kind) forwards to the nodes \(waited.readable) after it was started")
        } catch {
            balancer.stop(dumpLogs: true)
            throw error
        }
        return balancer
    }

    /// Throws `BalancerExited` (which ends any wait) if the balancer has exited.
    func ensureRunning() throws {
        if let status = process.pollExit() { throw BalancerExited(kind: kind, status: status) }
    }

    /// SIGTERM (nginx's master then stops its workers; HAProxy stops at once) and waits up to
    /// 5 s; if it still runs, SIGKILL to it and every process it started. Synchronous, so
    /// it also works in `deinit` and after the test was cancelled. With `dumpLogs`, prints
    /// the configuration and the balancer's output. Safe to call more than once.
    func stop(dumpLogs: Bool) {
        guard !isStopped else { return }
        isStopped = true
        if process.pollExit() == nil {
            let workers = Self.children(of: process.pid)
            kill(process.pid, SIGTERM)
            let deadline = ContinuousClock.now + .seconds(5)
            while process.pollExit() == nil && ContinuousClock.now < deadline { usleep(20_000) }
            if process.pollExit() == nil {
                for worker in workers + Self.children(of: process.pid) { kill(worker, SIGKILL) }
                process.kill9()
            }
        }
        guard dumpLogs else { return }
        print("[e2e] \(kind) configuration (\(configPath)):")
        print((try? String(contentsOfFile: configPath, encoding: .utf8)) ?? "(unreadable)")
        print(process.report())
        let errorLog = directory.appendingPathComponent("error.log").path
        if let text = try? String(contentsOfFile: errorLog, encoding: .utf8) {
            print("----- \(errorLog)\n\(text.suffix(16_000))")
        }
    }

    /// Processes whose parent is `pid` (nginx's workers), read from `/proc`; empty elsewhere.
    private static func children(of pid: pid_t) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry -> pid_t? in
            guard let child = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let commEnd = stat.lastIndex(of: ")")
            else { return nil }
            // After "(comm)": state, then the parent's pid.
            let fields = stat[stat.index(after: commEnd)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == pid ? child : nil
        }
    }
}

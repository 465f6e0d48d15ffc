import Testing

// `cohort balancer` with static backends in front of three real `cohort node` processes
// (acknowledged durability); nodes are killed with SIGKILL and restarted.
//
// Needs the `cohort` executable (see `CohortBinary`). On failure the output of every
// process the test started, the balancer's included, is printed.
@Suite(.serialized, .timeLimit(.minutes(5)), .tags(.endToEnd), .tracksFailuresForNodeLogs)
struct BalancerEndToEndTests {
    static let trio = ["n1", "n2", "n3"]

    /// The issue's first balancer scenario: 20 POSTs stick to one node and count 1...20;
    /// that node is killed; the next POST is answered (no 5xx) by another node with 21,
    /// the same random part and the id rebound to the new node, which keeps the session.
    @Test func stickySessionSurvivesKill9WithRouteRebinding() async throws {
        try await withTestCluster { cluster in
            try await cluster.startFullMesh(durability: "acknowledged")
            let balancer = try await cluster.startBalancer(backends: Self.trio)
            let through = balancer.endpoint

            var browser = Browser()
            var before: [SessionInfo] = []
            for _ in 1...20 {
                before.append(try browser.incrementCounter(on: through))
            }
            let first = try #require(before.first)
            let sticky = first.node
            #expect(before.map(\.count) == Array(1...20), "counts through the balancer: \(before.map(\.count))")
            #expect(before.allSatisfy { $0.node == sticky }, "one session spread over \(before.map(\.node))")
            #expect(before.allSatisfy { $0.id == first.id }, "the id changed without a failover: \(Set(before.map(\.id)))")
            #expect(first.route == sticky, "session \(first.id) created on \(sticky)")
            try #require(Self.trio.contains(sticky), "session served by unknown node \(sticky)")

            cluster.process(sticky).kill9()
            let killedAt = ContinuousClock.now
            let response = try browser.send("POST", "/api/counter", on: through)
            let latency = ContinuousClock.now - killedAt
            try #require(
                response.status == 200,
                "first POST after kill -9 of \(sticky): HTTP \(response.status), body \(response.text.debugDescription)"
            )
            let failedOver = try response.decode(SessionInfo.self)
            log("POST after kill -9 of \(sticky) answered by \(failedOver.node) in \(latency.readable): \(failedOver.id) count \(failedOver.count)")
            #expect(failedOver.count == 21, "count after the failover: \(failedOver.count), expected 21")
            #expect(failedOver.key == first.key, "random part changed on failover: \(first.id) -> \(failedOver.id)")
            #expect(failedOver.node != sticky, "served by the killed node \(sticky)?")
            #expect(
                failedOver.route == failedOver.node,
                "route not rebound: id \(failedOver.id) served by \(failedOver.node) (was \(first.id))"
            )
            #expect(browser.cookies.sessionID == failedOver.id, "cookie after the failover: \(browser.cookies.sessionID ?? "none"), id \(failedOver.id)")
            let rebound = try #require(
                response.headers(named: "Set-Cookie").compactMap(Cookie.init(setCookie:)).first { $0.name == CookieJar.sessionCookieName },
                "no Set-Cookie for the rebound id \(failedOver.id)"
            )
            #expect(rebound.attributes["path"] == "/" && rebound.isHTTPOnly, "rebound cookie attributes \(rebound.attributes)")
            #expect(rebound.attributes["samesite"]?.lowercased() == "lax", "rebound cookie attributes \(rebound.attributes)")

            var after: [SessionInfo] = []
            for _ in 1...5 {
                after.append(try browser.incrementCounter(on: through))
            }
            #expect(after.map(\.count) == Array(22...26), "counts after the failover: \(after.map(\.count))")
            #expect(after.allSatisfy { $0.node == failedOver.node }, "after rebinding to \(failedOver.node) served by \(after.map(\.node))")
            #expect(after.allSatisfy { $0.id == failedOver.id }, "ids after rebinding: \(after.map(\.id))")
        }
    }

    /// 200 clients, each its own session, through the balancer while n1 is killed with
    /// SIGKILL and later n2 is stopped (SIGTERM) and started again: every POST answers 200
    /// and every client's counts are exactly 1, 2, 3, ...
    ///
    /// From n2's SIGTERM until it is back, half the clients whose session routes to n2 wait
    /// (like users reading the page), so that afterwards they come back to it and the
    /// restarted node serves sessions it only knows from the state transfer; the other half
    /// go on and fail over while n2 stops.
    @Test func twoHundredClientsSeeNoErrorAndNoCountGap() async throws {
        try await withTestCluster { cluster in
            try await cluster.startFullMesh(durability: "acknowledged")
            let balancer = try await cluster.startBalancer(backends: Self.trio)
            let load = CounterLoad(clients: 200, endpoint: balancer.endpoint)
            let started = ContinuousClock.now
            let deadline = started + .seconds(60)
            let stepRequests = 2_000  // 10 rounds over the 200 clients per phase

            /// Waits until `count` more requests are answered, while the balancer and `alive` run.
            func progress(_ count: Int, _ what: String, alive: [String]) async throws {
                try await load.waitForMore(count, what, deadline: deadline) {
                    try balancer.ensureRunning()
                    try cluster.ensureRunning(alive)
                }
            }

            var marks: [String] = []
            func mark(_ event: String) {
                marks.append("\(event) at \((ContinuousClock.now - started).readable) (request \(load.completedRequests))")
            }

            load.start(workers: 24)
            do {
                load.enter(phase: "3 nodes")
                try await progress(stepRequests, "with all three nodes", alive: Self.trio)

                load.enter(phase: "n1 killed")
                cluster.process("n1").kill9()
                mark("kill -9 n1")
                try await progress(stepRequests, "after kill -9 of n1", alive: ["n2", "n3"])

                load.enter(phase: "n2 stopping")
                load.holdHalf(ofRoute: "n2")
                mark("n2 SIGTERM (\(load.heldClients) of the clients on n2 wait)")
                let stopped = try await cluster.process("n2").terminate(timeout: .seconds(10))
                #expect(stopped == .exited(0), "n2 after SIGTERM: \(stopped.map { "\($0)" } ?? "still running after 10 s")")
                load.enter(phase: "n2 down")
                try cluster.restart("n2")
                try await cluster.waitUntilHealthy(["n2"])
                try await cluster.waitUntilMembers(["n2": "alive", "n3": "alive"], on: ["n2", "n3"], timeout: .seconds(10))
                mark("n2 back, seen alive by n2 and n3 (\(load.heldClients) clients held)")

                load.enter(phase: "n2 restarted")
                load.releaseHeld()
                try await progress(stepRequests, "after the restart of n2", alive: ["n2", "n3"])
                mark("end")
                try await load.stop()
            } catch {
                try? await load.stop()
                throw error
            }

            let totals = load.totals
            let duration = ContinuousClock.now - started
            let rate = Double(totals.requests) / (Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
            log("""
                200 clients, 24 workers: \(totals.requests) POSTs in \(duration.readable) (\(Int(rate))/s); \
                failovers \(totals.failovers), rebinds \(totals.rebinds), served off-route \(totals.servedOffRoute), slowest \(totals.slowest.readable) \
                (\(totals.slowestRequest)), violations \(totals.violations.count)
                """)
            log("served by: \(totals.servedBy.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
            log("per phase: \(totals.perPhase.dropFirst().map(\.description).joined(separator: "; "))")
            log("events: \(marks.joined(separator: "; "))")

            #expect(totals.violations.isEmpty, """
                \(totals.violations.count) violation(s); the first ones:
                \(totals.violations.prefix(25).map { "  \($0)" }.joined(separator: "\n"))
                """)
            #expect(totals.failovers >= 1, "no request failed over although n1 was killed and n2 restarted")
            #expect((totals.servedBy["n1"] ?? 0) > 0 && (totals.servedBy["n2"] ?? 0) > 0, "served by \(totals.servedBy)")
            let afterRestart = try #require(totals.perPhase.last { $0.name == "n2 restarted" })
            #expect(afterRestart.requests >= stepRequests, "only \(afterRestart.requests) requests after n2's restart")
            #expect((afterRestart.servedBy["n2"] ?? 0) > 0, "the restarted n2 served nothing after it was back: \(afterRestart)")
        }
    }

    /// A rolling restart under load: each node in turn is stopped with SIGTERM, started
    /// again and waited for, while 100 clients POST through `cohort balancer
    /// --no-request-ids`. Every POST answers 200 with the client's next count.
    ///
    /// Without request ids the balancer cannot resend a POST whose connection broke, so
    /// a stopping node that closed a kept-alive connection as a request arrived would
    /// cost that request a 502. The drain prevents it: health answers 503 with
    /// `Cohort-Draining` (the balancer takes the node out at once), responses say
    /// `Connection: close`, and HTTP stops only once requests stopped.
    @Test func rollingRestartWithoutRequestIDsLosesNoRequest() async throws {
        try await withTestCluster { cluster in
            // A drain timeout far above what the drains take (1.5 s): on a loaded machine
            // they end because requests stopped, never because time ran out.
            try await cluster.startFullMesh(durability: "acknowledged", extraArguments: ["--drain-timeout", "15"])
            let balancer = try await cluster.startBalancer(backends: Self.trio, extraArguments: ["--no-request-ids"])
            let load = CounterLoad(clients: 100, endpoint: balancer.endpoint)
            let deadline = ContinuousClock.now + .seconds(90)
            var stops: [String] = []
            load.start(workers: 16)
            do {
                load.enter(phase: "3 nodes")
                try await load.waitForMore(1_000, "with all three nodes", deadline: deadline) { try balancer.ensureRunning() }
                for name in Self.trio {
                    load.enter(phase: "\(name) stopping")
                    let sentBefore = load.completedRequests
                    let stopping = ContinuousClock.now
                    let stopped = try await cluster.process(name).terminate(timeout: .seconds(25))
                    #expect(stopped == .exited(0), "\(name) after SIGTERM: \(stopped.map { "\($0)" } ?? "still running after 25 s")")
                    stops.append("\(name) stopped in \((ContinuousClock.now - stopping).readable), \(load.completedRequests - sentBefore) requests meanwhile")
                    load.enter(phase: "\(name) down")
                    try cluster.restart(name)
                    try await cluster.waitUntilHealthy([name])
                    try await cluster.waitUntilMembers(Dictionary(uniqueKeysWithValues: Self.trio.map { ($0, "alive") }), on: [name], timeout: .seconds(10))
                    // What `cohort status` waits for: no copy still moving to or from a node.
                    try await waitUntil("no copies in transit", timeout: .seconds(20)) {
                        for node in Self.trio {
                            let view = try cluster.clusterView(of: node)
                            guard view.pendingPulls ?? 0 == 0, view.pendingHandoffs ?? 0 == 0 else {
                                throw NotYet("\(node): \(view.pendingPulls ?? 0) pulls, \(view.pendingHandoffs ?? 0) hand-overs pending")
                            }
                        }
                        return true
                    }
                    load.enter(phase: "\(name) back")
                    try await load.waitForMore(500, "after the restart of \(name)", deadline: deadline) {
                        try balancer.ensureRunning()
                        try cluster.ensureRunning(Self.trio)
                    }
                }
                try await load.stop()
            } catch {
                try? await load.stop()
                throw error
            }
            let totals = load.totals
            log("rolling restart: \(totals.requests) POSTs, violations \(totals.violations.count), slowest \(totals.slowest.readable); \(stops.joined(separator: "; "))")
            log("per phase: \(totals.perPhase.dropFirst().map(\.description).joined(separator: "; "))")
            #expect(totals.violations.isEmpty, """
                \(totals.violations.count) violation(s); the first ones:
                \(totals.violations.prefix(25).map { "  \($0)" }.joined(separator: "\n"))
                """)
            for name in Self.trio {
                let phase = try #require(totals.perPhase.last { $0.name == "\(name) stopping" })
                #expect(phase.requests > 0, "no request was answered while \(name) stopped: \(phase)")
            }
        }
    }

    private func log(_ message: String) {
        print("[e2e] \(message)")
    }
}

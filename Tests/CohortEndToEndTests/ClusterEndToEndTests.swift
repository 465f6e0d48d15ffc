import Foundation
import Testing

// Real `cohort` processes on loopback ports, killed with SIGKILL.
//
// Needs the `cohort` executable: next to the test executable (what `swift test` builds)
// or at `$COHORT_BINARY`; without it every test here fails, saying so. On failure the
// output of every process the test started is printed (`COHORT_E2E_KEEP_LOGS=1` keeps
// the log directory even on success).
@Suite(.serialized, .timeLimit(.minutes(3)), .tags(.endToEnd), .tracksFailuresForNodeLogs)
struct ClusterEndToEndTests {
    static let trio = ["n1", "n2", "n3"]
    static let trioAlive = ["n1": "alive", "n2": "alive", "n3": "alive"]

    @Test func refusesToStartWithoutKey() async throws {
        try await withTestCluster { cluster in
            let spec = try NodeSpec.onFreePorts("unkeyed")  // neither --key-file nor --insecure
            let process = try cluster.spawn(spec.name, spec.arguments)
            let status = try await process.waitForExit(timeout: .seconds(10))

            #expect(status != nil, "`cohort node` without --key-file or --insecure was still running after 10 s")
            if let status {
                #expect(status != .exited(0), "`cohort node` without a key must fail, but \(status)")
                if case .signaled = status { Issue.record("`cohort node` without a key crashed instead of refusing: \(status)") }
            }
            #expect(process.stderr.contains("--insecure"), "stderr should tell the operator about --insecure")
        }
    }

    /// The issue's acceptance scenario.
    @Test func threeNodesFormClusterAndSurviveKill9() async throws {
        try await withTestCluster { cluster in
            let formation = try await cluster.startFullMesh(durability: "acknowledged")
            log("n1..n3 all see each other alive \(formation.readable) after all three served /health")
            #expect(formation < .seconds(3), "cluster took \(formation.readable) to form (bound: 3 s)")
            let (n1, n2, n3) = (cluster.http("n1"), cluster.http("n2"), cluster.http("n3"))
            // The log line carries the node's logger metadata (set once, formatted when logged).
            let startLine = cluster.process("n1").stderr.split(separator: "\n").first { $0.contains("node starting") }
            #expect(startLine?.contains("cluster.node=n1") == true, "n1's start line: \(startLine ?? "none")")

            // A session on n1, and its cookie.
            var browser = Browser()
            let created = try browser.session(on: n1)
            #expect(created.count == 0)
            #expect(created.node == "n1")
            #expect(created.route == "n1", "a session created on n1 is routed to n1: \(created.id)")
            let cookie = try #require(browser.cookies.cookies[CookieJar.sessionCookieName], "no COHORTSESSION cookie set")
            #expect(cookie.value == created.id)
            #expect(cookie.attributes["path"] == "/")
            #expect(cookie.isHTTPOnly)
            #expect(cookie.attributes["samesite"]?.lowercased() == "lax")

            // Five increments on n1.
            var counts: [Int] = []
            var latest = created
            for _ in 1...5 {
                latest = try browser.incrementCounter(on: n1)
                counts.append(latest.count)
                #expect(latest.key == created.key)
            }
            #expect(counts == [1, 2, 3, 4, 5])
            #expect(latest.id.hasSuffix(".n1"), "id after writes on n1: \(latest.id)")

            // Acknowledged durability: the backups have it as soon as the POSTs returned.
            for name in ["n2", "n3"] {
                var reader = Browser(cookies: browser.cookies)
                let seen = try reader.session(on: cluster.http(name))
                #expect(seen.id == latest.id, "\(name) shows id \(seen.id), n1 wrote \(latest.id)")
                #expect(seen.count == 5, "\(name) shows count \(seen.count) right after the 5th acknowledged write")
            }

            // kill -9 n1; the session lives on.
            cluster.process("n1").kill9()
            let killedAt = ContinuousClock.now
            let failedOver = try browser.incrementCounter(on: n2)
            #expect(failedOver.count == 6)
            #expect(failedOver.key == created.key, "random part changed on fail-over: \(created.id) -> \(failedOver.id)")
            #expect(["n1", "n2"].contains(failedOver.route), "unexpected route after fail-over to n2: \(failedOver.id)")
            let onN3 = try browser.session(on: n3)
            #expect(onN3.count == 6)
            #expect(onN3.key == created.key)

            // n2 and n3 declare n1 dead.
            var detectedAfter: [String: Duration] = [:]
            try await waitUntil("n2 and n3 list n1 as dead", deadline: killedAt + .seconds(10)) {
                try cluster.ensureRunning(["n2", "n3"])
                var pending: [String] = []
                for observer in ["n2", "n3"] where detectedAfter[observer] == nil {
                    let view = try cluster.clusterView(of: observer)
                    if view.lists("n1", as: "dead") {
                        detectedAfter[observer] = .now - killedAt
                    } else {
                        pending.append("\(observer) sees [\(view.summary)]")
                    }
                }
                if !pending.isEmpty { throw NotYet(pending.joined(separator: "; ")) }
                return true
            }
            log("n1 marked dead after kill -9: on n2 after \(detectedAfter["n2"]?.readable ?? "?"), on n3 after \(detectedAfter["n3"]?.readable ?? "?")")

            // Restart n1 with the same arguments: it rejoins and serves the session.
            try cluster.restart("n1")
            try await cluster.waitUntilHealthy(["n1"])
            let rejoin = try await cluster.waitUntilMembers(Self.trioAlive, on: Self.trio, timeout: .seconds(10))
            log("restarted n1 seen alive by all after \(rejoin.readable) (from serving /health)")
            var returning = Browser(cookies: browser.cookies)
            let afterRestart = try returning.session(on: n1)
            #expect(afterRestart.count == 6, "restarted n1 shows count \(afterRestart.count)")
            #expect(afterRestart.key == created.key, "restarted n1 shows id \(afterRestart.id), created \(created.id)")
        }
    }

    @Test func wrongKeyNodeNeverJoins() async throws {
        try await withTestCluster { cluster in
            try await cluster.startFullMesh()
            let keyA = try #require(cluster.spec("n1").keyFile)
            let keyB = try await cluster.keygen("other.key")
            #expect(FileManager.default.contents(atPath: keyA) != FileManager.default.contents(atPath: keyB),
                    "two runs of `cohort keygen` wrote the same key")

            var intruder = try NodeSpec.onFreePorts("n4")
            intruder.seeds = Self.trio.map { cluster.spec($0).cluster }
            intruder.keyFile = keyB
            try cluster.start(intruder)
            try await cluster.waitUntilHealthy(["n4"])

            var browsers = [Browser(), Browser(), Browser()]
            var expectedCounts = [0, 0, 0]
            for index in Self.trio.indices { _ = try browsers[index].session(on: cluster.http(Self.trio[index])) }
            var round = 0
            let violation = try await firstViolation(during: .seconds(5)) {
                try cluster.ensureRunning(Self.trio + ["n4"])
                for name in Self.trio {
                    let view = try cluster.clusterView(of: name)
                    if view.memberNames.contains("n4") { return "\(name) lists the wrong-key node: [\(view.summary)]" }
                }
                let own = try cluster.clusterView(of: "n4")
                if own.members.map(\.name) != ["n4"] { return "n4 (wrong key) lists [\(own.summary)]" }
                let index = round % 3
                round += 1
                let result = try browsers[index].incrementCounter(on: cluster.http(Self.trio[index]))
                expectedCounts[index] += 1
                if result.count != expectedCounts[index] {
                    return "POST /api/counter on \(Self.trio[index]) gave \(result.count), expected \(expectedCounts[index])"
                }
                return nil
            }
            #expect(violation == nil, "\(violation ?? "")")
            #expect(round >= 10, "only \(round) checks ran in 5 s")
        }
    }

    @Test func gracefulStopIsNotADeath() async throws {
        try await withTestCluster { cluster in
            try await cluster.startFullMesh()
            let status = try await cluster.process("n3").terminate(timeout: .seconds(10))
            #expect(status == .exited(0), "after SIGTERM n3 \(status.map { "\($0)" } ?? "did not exit within 10 s")")

            let observers = ["n1", "n2"]
            try await waitUntil("n1 and n2 list n3 as left", timeout: .seconds(10)) {
                try cluster.ensureRunning(observers)
                for observer in observers {
                    let view = try cluster.clusterView(of: observer)
                    if view.lists("n3", as: "dead") {
                        throw Unexpected("\(observer) declared the gracefully stopped n3 dead: [\(view.summary)]")
                    }
                    if !view.lists("n3", as: "left") { throw NotYet("\(observer) sees [\(view.summary)]") }
                }
                return true
            }
            // Past the failure-detection bound it must still not turn "dead" (it may be forgotten).
            let violation = try await firstViolation(during: .seconds(4)) {
                for observer in observers {
                    let view = try cluster.clusterView(of: observer)
                    if view.statuses(of: "n3").contains(where: { $0 != "left" }) { return "\(observer) sees [\(view.summary)]" }
                }
                return nil
            }
            #expect(violation == nil, "\(violation ?? "")")
        }
    }

    private func log(_ message: String) {
        print("[e2e] \(message)")
    }
}

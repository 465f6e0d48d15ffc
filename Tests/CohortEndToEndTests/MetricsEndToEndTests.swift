import Foundation
import Testing

// `--metrics HOST:PORT` on `cohort node` and `cohort balancer`: Prometheus' text format
// on a listener of its own, with the library's counters and the state read at each scrape.
@Suite(.serialized, .timeLimit(.minutes(3)), .tags(.endToEnd), .tracksFailuresForNodeLogs)
struct MetricsEndToEndTests {
    @Test func aNodeAndABalancerServeTheirMetrics() async throws {
        try await withTestCluster { cluster in
            let metrics = ["n1": Endpoint.loopback(try FreePorts.tcp()), "n2": Endpoint.loopback(try FreePorts.tcp())]
            var first = try NodeSpec.onFreePorts("n1")
            var second = try NodeSpec.onFreePorts("n2")
            first.seeds = [second.cluster]
            second.seeds = [first.cluster]
            for var spec in [first, second] {
                spec.insecure = true
                spec.extraArguments = ["--metrics", "\(metrics[spec.name]!)"]
                _ = try cluster.start(spec)
            }
            try await cluster.waitUntilHealthy(["n1", "n2"])
            try await cluster.waitUntilMembers(["n1": "alive", "n2": "alive"], on: ["n1", "n2"], timeout: .seconds(10))

            // The metrics listener starts with the node's services, after its HTTP port.
            for name in ["n1", "n2"] {
                try await waitUntil("\(name) serves /metrics", timeout: .seconds(10)) { try Self.scrape(metrics[name]!).text.contains("cohort_ready") }
            }
            let before = try Self.scrape(metrics["n1"]!)
            #expect(before.contentType?.hasPrefix("text/plain; version=0.0.4") == true, "content type \(before.contentType ?? "none")")
            #expect(before.value("cohort_ready", ["node": "n1"]) == 1)
            #expect(before.value("cohort_draining", ["node": "n1"]) == 0)
            #expect(before.value("cohort_peers", ["node": "n1", "status": "alive"]) == 1)
            #expect(before.value("cohort_sessions", ["node": "n1"]) == 0)
            #expect(before.text.contains("# TYPE cohort_sessions gauge"))

            var browser = Browser()
            for _ in 1...3 { _ = try browser.incrementCounter(on: cluster.http("n1")) }
            let after = try Self.scrape(metrics["n1"]!)
            #expect(after.value("cohort_sessions", ["node": "n1"]) == 1)
            #expect(after.text.contains("http_server_request_duration_bucket{"), "request durations: \(after.text)")
            let commits = try #require(after.value("cohort_commits_total", ["node": "n1"]), "no commit counter in:\n\(after.text)")
            #expect(commits >= 3, "three writes, \(commits) commits counted")
            #expect(after.text.contains("# TYPE cohort_commits_total counter"))
            let acked = try #require(after.value("cohort_ack_wait_seconds_count", ["node": "n1"]), "no ack-wait histogram in:\n\(after.text)")
            #expect(acked >= 3, "three acknowledged writes, \(acked) waits recorded")

            // The replica's engine statistics, exported as counters.
            try await waitUntil("n2 counts the replicated writes", timeout: .seconds(10)) {
                let applied = try Self.scrape(metrics["n2"]!).value("cohort_deltas_applied_total", ["node": "n2"]) ?? 0
                if applied < 3 { throw NotYet("n2 applied \(applied)") }
                return true
            }
            let again = try Self.scrape(metrics["n2"]!)
            let replica = try Self.scrape(metrics["n2"]!)
            #expect(replica.value("cohort_deltas_applied_total", ["node": "n2"]) == again.value("cohort_deltas_applied_total", ["node": "n2"]),
                    "a scrape does not add to a counter")
            #expect(replica.value("cohort_sessions", ["node": "n2"]) == 1, "\(replica.text)")
            // Roles are counted at most once a second.
            try await waitUntil("n1 counts itself the primary of the session", timeout: .seconds(5), pollInterval: .milliseconds(200)) {
                try Self.scrape(metrics["n1"]!).value("cohort_sessions_by_role", ["node": "n1", "role": "primary"]) == 1
            }
            #expect(replica.text.contains("# TYPE cohort_deltas_applied_total counter"))

            let balancerMetrics = Endpoint.loopback(try FreePorts.tcp())
            let front = try await cluster.startBalancer(backends: ["n1"], extraArguments: ["--metrics", "\(balancerMetrics)"])
            try await waitUntil("the balancer serves /metrics", timeout: .seconds(10)) {
                try Self.scrape(balancerMetrics).text.contains("cohort_balancer_backend_up")
            }
            let balancer = try Self.scrape(balancerMetrics)
            #expect(balancer.value("cohort_balancer_backend_up", ["backend": "n1"]) == 1, "\(balancer.text)")
            #expect(balancer.value("cohort_balancer_backend_outstanding_requests", ["backend": "n1"]) == 0)
            // The harness waited for GET /health through the balancer: at least one answer.
            let answered = balancer.value("cohort_balancer_responses_total", ["backend": "n1", "class": "2xx"]) ?? 0
            #expect(answered >= 1, "\(balancer.text)")
            #expect(balancer.value("cohort_balancer_errors_total", ["status": "502"]) == 0)

            // Its only backend gone, the balancer answers with an error of its own, counted.
            cluster.process("n1").kill9()
            let failed = try HTTPClient.get("/api/session", on: front.endpoint)
            #expect(failed.status == 502 || failed.status == 503, "HTTP \(failed.status)")
            let after502 = try Self.scrape(balancerMetrics)
            let errors = (after502.value("cohort_balancer_errors_total", ["status": "502"]) ?? 0)
                + (after502.value("cohort_balancer_errors_total", ["status": "503"]) ?? 0)
            #expect(errors >= 1, "\(after502.text)")
        }
    }

    struct Exposition {
        var text: String
        var contentType: String?

        /// The sample of `name` with exactly these labels (in any order), or `nil`.
        func value(_ name: String, _ labels: [String: String]) -> Double? {
            for line in text.split(separator: "\n") where line.hasPrefix(name + "{") {
                guard let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}") else { continue }
                var found: [String: String] = [:]
                for pair in line[line.index(after: open)..<close].split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    found[String(parts[0])] = String(parts[1].dropFirst().dropLast())
                }
                if found == labels { return Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)) }
            }
            return nil
        }
    }

    static func scrape(_ endpoint: Endpoint) throws -> Exposition {
        let response = try HTTPClient.get("/metrics", on: endpoint)
        #expect(response.status == 200)
        return Exposition(text: String(decoding: response.body, as: UTF8.self), contentType: response.header("Content-Type"))
    }
}

import MetricsTestKit
import Testing

@testable import CohortBalancer

/// What `BalancerTraffic` counts, into a test metrics factory.
@Suite struct BalancerTrafficTests {
    @Test func responsesFailuresAndErrorsAreCountedWhereTheySay() throws {
        let metrics = TestMetrics()
        let traffic = BalancerTraffic(factory: metrics)
        traffic.response(from: "n1", status: 200)
        traffic.response(from: "n1", status: 204)
        traffic.response(from: "n1", status: 503)
        traffic.response(from: "n2", status: 302)
        traffic.response(from: "n2", status: 999)
        traffic.attemptFailed(on: "n1", .failedBeforeSending)
        traffic.attemptFailed(on: "n1", .failedBeforeResponse)
        traffic.attemptFailed(on: "n2", .timedOut)
        traffic.responseAborted(by: "n2")
        traffic.errorResponse(502)
        traffic.errorResponse(502)
        traffic.errorResponse(418)  // not one of the balancer's own: ignored

        func count(_ label: String, _ dimensions: [(String, String)]) throws -> Int64 {
            try metrics.expectCounter(label, dimensions).totalValue
        }
        #expect(try count("cohort_balancer_responses_total", [("backend", "n1"), ("class", "2xx")]) == 2)
        #expect(try count("cohort_balancer_responses_total", [("backend", "n1"), ("class", "5xx")]) == 1)
        #expect(try count("cohort_balancer_responses_total", [("backend", "n2"), ("class", "3xx")]) == 1)
        #expect(try count("cohort_balancer_responses_total", [("backend", "n2"), ("class", "other")]) == 1)
        #expect(try count("cohort_balancer_attempt_failures_total", [("backend", "n1"), ("outcome", "connect")]) == 1)
        #expect(try count("cohort_balancer_attempt_failures_total", [("backend", "n1"), ("outcome", "reset")]) == 1)
        #expect(try count("cohort_balancer_attempt_failures_total", [("backend", "n2"), ("outcome", "timeout")]) == 1)
        #expect(try count("cohort_balancer_attempt_failures_total", [("backend", "n2"), ("outcome", "aborted")]) == 1)
        #expect(try count("cohort_balancer_errors_total", [("status", "502")]) == 2)
        #expect(try count("cohort_balancer_errors_total", [("status", "504")]) == 0)
    }
}

@testable import CohortBalancer
import CohortBalancerCore
@testable import CohortCommand
import CohortCore
import CohortMembership
import Logging
import NIOPosix
import Testing

@Suite struct BalancerCommandTests {
    /// The validation error `arguments` get, or `nil` if they are accepted.
    static func refusal(_ arguments: [String]) -> String? {
        do {
            _ = try BalancerCommand.parse(arguments)
            return nil
        } catch {
            return BalancerCommand.message(for: error)
        }
    }

    @Test("--backend and --join together are refused: membership would drop the fixed backends at once")
    func backendWithJoinIsRefused() {
        #expect(Self.refusal(["--backend", "n1=127.0.0.1:8081", "--join", "127.0.0.1:7001", "--insecure"])?.contains("not both") == true)
        #expect(Self.refusal(["--join", "127.0.0.1:7001", "--insecure"]) == nil)
        #expect(Self.refusal(["--backend", "n1=127.0.0.1:8081"]) == nil)
    }

    @Test("--trusted-proxy takes IP addresses only, and compares them as NIO prints a peer's")
    func trustedProxyAddresses() {
        #expect(Self.refusal(["--backend", "n1=127.0.0.1:8081", "--trusted-proxy", "10.0.0.0/8"])?.contains("IP address") == true)
        #expect(Self.refusal(["--backend", "n1=127.0.0.1:8081", "--trusted-proxy", "proxy.internal"])?.contains("IP address") == true)
        #expect(Self.refusal(["--backend", "n1=127.0.0.1:8081", "--trusted-proxy", "10.0.0.5", "--trusted-proxy", "::1"]) == nil)
        #expect(IPAddressText.canonical("0:0:0:0:0:0:0:1") == "::1")
        #expect(IPAddressText.canonical("10.0.0.5") == "10.0.0.5")
    }

    @Test("joining a node on another host needs an address that host can answer")
    func joiningAnotherHostNeedsAReachableAddress() {
        #expect(Self.refusal(["--join", "10.0.0.1:7001", "--insecure"])?.contains("only this host can reach") == true)
        #expect(Self.refusal(["--join", "10.0.0.1:7001", "--insecure", "--cluster", "10.0.0.9:7009"]) == nil)
        #expect(Self.refusal(["--join", "10.0.0.1:7001", "--insecure", "--cluster", "0.0.0.0:7009", "--advertise", "10.0.0.9"]) == nil)
        #expect(Self.refusal(["--join", "10.0.0.1:7001", "--insecure", "--cluster", "0.0.0.0:7009", "--advertise", "127.0.0.1"])?
            .contains("only this host can reach") == true)
    }

    @Test("a membership sync changes a backend's health only when its process or status changed")
    func membershipSyncKeepsHealthChecksVerdict() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let balancer = try await BalancerServer.bind(
            configuration: .init(listen: Address(host: "127.0.0.1", port: 0), backends: []),
            clock: ContinuousClock(), eventLoopGroup: group, logger: Logger(label: "test"))
        let n2 = Membership.Member(id: NodeID(name: "n2", address: Address(host: "127.0.0.1", port: 7002), uid: 2),
                                   incarnation: 0, status: .alive, httpAddress: Address(host: "127.0.0.1", port: 8082))
        func isUp() -> Bool { balancer.backends().first { $0.name == "n2" }?.state == .up }

        BalancerMembership.apply([n2], since: [:], to: balancer)
        #expect(!isUp(), "a process seen for the first time waits for a health check (its HTTP may not serve yet)")
        _ = balancer.table.withLockedValue { $0.onHealthCheck("n2", healthy: true) }
        #expect(isUp())
        // The balancer's own checks find n2 failing (say, /health answers 503).
        for _ in 0..<10 { _ = balancer.table.withLockedValue { $0.onHealthCheck("n2", healthy: false) } }
        #expect(!isUp())
        // An event about another member: n2 unchanged, so the checks' verdict stands.
        BalancerMembership.apply([n2], since: ["n2": n2], to: balancer)
        #expect(!isUp(), "an unrelated membership event does not bring a failing backend back")

        var suspect = n2
        suspect.status = .suspect
        BalancerMembership.apply([suspect], since: ["n2": n2], to: balancer)
        #expect(!isUp())
        BalancerMembership.apply([n2], since: ["n2": suspect], to: balancer)
        #expect(isUp(), "a refutation (suspect, then alive) is news and marks it up")
        try await group.shutdownGracefully()
    }
}

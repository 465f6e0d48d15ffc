@testable import CohortBalancer
import CohortBalancerCore
import CohortCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// A node that stops gracefully says so in its health answer (`Cohort-Draining`), and the
/// balancer acts on the first such answer instead of counting failures.
@Suite("Balancer and draining nodes", .timeLimit(.minutes(1)))
struct BalancerNodeDrainTests {
    @Test("a node whose health answer says it drains is taken out at once, its sessions go elsewhere, and it is back once it passes")
    func drainingAnswer() async throws {
        // So many failures needed that only the draining answer can take `b` out.
        try await withHarness(configure: { $0.failureThreshold = 1_000 }) { (h: Harness) async throws in
            #expect(try await h.get(route: "b").backend == "b")
            let backend = try #require(h.backends.first { $0.name == "b" })
            backend.draining.withLockedValue { $0 = true }
            try await h.waitUntil("b marked down by its draining answer") { h.state(of: "b") == .down }
            #expect(h.state(of: "b") == .down)
            // Its sessions (and new ones) are served by the others meanwhile.
            for _ in 0..<4 {
                #expect(try await h.get(route: "b").backend != "b")
                #expect(try await h.get().backend != "b")
            }
            backend.draining.withLockedValue { $0 = false }
            try await h.waitUntil("b up again after a passing check") { h.state(of: "b") == .up }
            #expect(try await h.get(route: "b").backend == "b")
        }
    }

    @Test("health checks against a node that hangs up at once (a stopping one) fail cleanly, however the close and the check interleave")
    func hangUps() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let accepted = NIOLockedValueBox(0)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 += 1 }
                return channel.pipeline.addHandler(HangUp())
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let gone = Backend(name: "gone", address: Address(host: "127.0.0.1", port: port))
        try await withHarness(extraBackends: [gone], configure: { $0.healthCheckInterval = .milliseconds(5) }) { (h: Harness) async throws in
            try await h.waitUntil("gone marked down") { h.state(of: "gone") == .down }
            // Many more checks, each racing the close against attaching to the connection. What
            // this guards is the absence of a trap (a leaked promise in a debug build), which
            // would end the test process; the states are checked on top.
            let before = accepted.withLockedValue { $0 }
            try await h.waitUntil("200 more checks", within: .seconds(20)) { accepted.withLockedValue { $0 } >= before + 200 }
            #expect(h.state(of: "gone") == .down)
            #expect(try await h.get(route: "a").backend == "a")
        }
        try await server.close()
    }

    /// Writes a byte and closes, as soon as a connection is accepted.
    final class HangUp: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "x")), promise: nil)
            context.close(promise: nil)
        }
    }
}

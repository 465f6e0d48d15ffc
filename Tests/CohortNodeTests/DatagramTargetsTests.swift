import CohortCore
@testable import CohortNode
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Membership datagrams reach a member's name where it points now: looked up off the
/// event loop, kept briefly, and looked up again when a new process appears at the name.
@Suite(.timeLimit(.minutes(1))) struct DatagramTargetsTests {
    /// A UDP socket on 127.0.0.1 that keeps what it receives, as text.
    final class Receiver: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let received = NIOLockedValueBox<[String]>([])

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let text = String(buffer: unwrapInboundIn(data).data)
            received.withLockedValue { $0.append(text) }
        }
    }

    static func bind(_ handler: Receiver, group: any EventLoopGroup) async throws -> any Channel {
        try await DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    static func waitFor(_ text: String, at receiver: Receiver) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if receiver.received.withLockedValue({ $0.contains(text) }) { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    @Test("a name is looked up once, kept, looked up again once forgotten (a restart at a new IP); failures are not retried on every send")
    func namesAreResolvedKeptAndForgotten() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (first, second) = (Receiver(), Receiver())
        let firstChannel = try await Self.bind(first, group: group)
        let secondChannel = try await Self.bind(second, group: group)
        let sender = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let firstPort = try #require(firstChannel.localAddress?.port)
        let secondPort = try #require(secondChannel.localAddress?.port)
        // The name's current address, and how many lookups were made.
        let dns = NIOLockedValueBox<(port: Int?, lookups: Int)>((firstPort, 0))
        let targets = DatagramTargets(channel: sender) { address in
            let port = dns.withLockedValue { dns -> Int? in
                dns.lookups += 1
                return address.host == "n2.test" ? dns.port : nil
            }
            guard let port else { throw ChannelError.unknownLocalAddress }
            return try SocketAddress(ipAddress: "127.0.0.1", port: port)
        }
        let n2 = Address(host: "n2.test", port: 7002)

        targets.send(ByteBuffer(string: "a"), to: n2)
        targets.send(ByteBuffer(string: "b"), to: n2)  // waits for the same lookup
        #expect(try await Self.waitFor("a", at: first))
        #expect(try await Self.waitFor("b", at: first))
        // n2 restarts at a new address: until told, the kept address is used...
        dns.withLockedValue { $0.port = secondPort }
        targets.send(ByteBuffer(string: "c"), to: n2)
        #expect(try await Self.waitFor("c", at: first))
        #expect(dns.withLockedValue { $0.lookups } == 1)
        // ...and once a new process is seen at the name, it is looked up again.
        targets.forget(n2)
        targets.send(ByteBuffer(string: "d"), to: n2)
        #expect(try await Self.waitFor("d", at: second))

        // A name that does not resolve is not looked up again on every send.
        let unknown = Address(host: "gone.test", port: 7003)
        let before = dns.withLockedValue { $0.lookups }
        targets.send(ByteBuffer(string: "e"), to: unknown)
        let deadline = ContinuousClock.now + .seconds(5)
        while dns.withLockedValue({ $0.lookups }) == before, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        // Whether they come while the lookup runs (they wait for it) or after it failed
        // (they are dropped for a second), these start no lookup.
        for _ in 0..<10 { targets.send(ByteBuffer(string: "f"), to: unknown) }
        #expect(dns.withLockedValue { $0.lookups } == before + 1)

        // An IP literal is never looked up.
        targets.send(ByteBuffer(string: "g"), to: Address(host: "127.0.0.1", port: secondPort))
        #expect(try await Self.waitFor("g", at: second))
        #expect(dns.withLockedValue { $0.lookups } == before + 1)

        try await sender.close()
        try await firstChannel.close()
        try await secondChannel.close()
        try await group.shutdownGracefully()
    }
}

import CohortCore
import CohortReplication
import CohortWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import CohortNode

/// A node that stops gracefully writes what its links still queue before closing them:
/// with async durability those are writes it already answered.
@Suite(.timeLimit(.minutes(1)))
struct PeerLinkDrainTests {
    /// Counts the replication messages of the frames it receives (the hello aside).
    private final class MessageCounter: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let codec = FrameCodec(protection: .insecure)
        let messages = NIOLockedValueBox(0)
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch try? codec.decode(frame: unwrapInboundIn(data)) {
            // Deltas only: the link also opens with an empty `touched` (its hello's proof).
            case .replication(.delta)?: messages.withLockedValue { $0 += 1 }
            case .replicationBatch(let batch)?: messages.withLockedValue { $0 += batch.count { if case .delta = $0 { true } else { false } } }
            default: break
            }
        }
    }

    @Test func aDrainedLinkDeliversEveryQueuedMessageEvenWhileThePeerWasNotReading() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let counter = MessageCounter()
        let accepted = NIOLockedValueBox<(any Channel)?>(nil)
        // The peer reads nothing at first: the link's socket fills and frames queue.
        let server = try await ServerBootstrap(group: group)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 = channel }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ClusterFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(counter)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let reachable = NIOLockedValueBox(false)
        let codec = FrameCodec(protection: .insecure)
        let link = PeerLink(
            peer: NodeID(name: "p", address: Address(host: "127.0.0.1", port: port), uid: 1), eventLoop: group.next(),
            hello: { codec.encode(.hello(NodeID(name: "n", address: Address(host: "127.0.0.1", port: 1), uid: 2))) },
            seal: { batch, buffer in codec.encode(batch, envelope: .unsequenced, into: &buffer) },
            maxPendingBytes: 256 << 20, maxBackoff: .seconds(1), logger: Logger(label: "test.link"),
            onReachability: { up in reachable.withLockedValue { $0 = up } })
        link.start()
        let deadline = ContinuousClock.now + .seconds(10)
        while !reachable.withLockedValue({ $0 }) {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(10))
        }

        // 16 MiB of deltas: far more than the sockets hold.
        let count = 16_000
        for index in 0..<count {
            let delta = SessionDelta(
                id: SessionID(key: String(repeating: "A", count: 22) + String(100_000 + index), route: "n"),
                base: .zero, version: SessionVersion(counter: 1, origin: "n"),
                changes: [.set(name: "v", value: [UInt8](repeating: 7, count: 1024))], maxIdle: .seconds(60))
            #expect(link.send(.delta(delta)))
        }

        let drained = link.drained()
        let peer = try #require(accepted.withLockedValue { $0 })
        try await peer.setOption(.autoRead, value: true).get()
        peer.read()
        try await drained.get()
        link.close()
        let received = ContinuousClock.now + .seconds(20)
        while counter.messages.withLockedValue({ $0 }) < count, ContinuousClock.now < received {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(counter.messages.withLockedValue { $0 } == count)
        try await server.close()
        try await group.shutdownGracefully()
    }
}

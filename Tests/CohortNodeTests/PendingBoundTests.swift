import CohortCore
@testable import CohortNode
import Logging
import NIOCore
import NIOPosix
import Testing

/// Replication waiting for one peer is bounded (`maxPendingBytesPerPeer`): beyond it,
/// messages to that peer are refused (the node counts them as `sendQueueDrops`, and the
/// peer later repairs the gap by fetching whole sessions); nothing grows without limit.
@Suite struct PendingBoundTests {
    @Test func aLinkToAnUnreachablePeerRefusesFramesBeyondItsBound() throws {
        // Nothing listens on port 1: the link never connects, so every frame waits.
        let peer = NodeID(name: "p", address: Address(host: "127.0.0.1", port: 1), uid: 1)
        let link = PeerLink(
            peer: peer, eventLoop: MultiThreadedEventLoopGroup.singleton.next(), hello: { ByteBuffer() },
            maxPendingBytes: 1_000, maxBackoff: .seconds(1), logger: Logger(label: "test"), onReachability: { _ in })
        defer { link.close() }
        var accepted = 0
        for _ in 0..<50 {
            if link.send({ $0.writeBytes(Array(repeating: UInt8(7), count: 100)) }) { accepted += 1 }
        }
        // Frames are accepted while less than the bound is pending (the last one may
        // cross it by its own size), then refused.
        #expect(accepted == 10)
        #expect(!link.send({ $0.writeBytes([1]) }))
    }
}

import CohortCore
import CohortReplication
import CohortWire
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
            seal: { batch, buffer in FrameCodec(protection: .insecure).encode(batch, envelope: .unsequenced, into: &buffer) },
            maxPendingBytes: 1_000, maxBackoff: .seconds(1), logger: Logger(label: "test"), onReachability: { _ in })
        defer { link.close() }
        var accepted = 0
        // 100 bytes queued each: u32 length, type, u16 key length and 93 key bytes.
        let message = ReplicationMessage.fetch(key: String(repeating: "k", count: 93))
        for _ in 0..<50 {
            if link.send(message) { accepted += 1 }
        }
        // Messages are accepted while less than the bound is pending (the last one may
        // cross it by its own size), then refused.
        #expect(accepted == 10)
        #expect(link.pendingBytes == 1_000)
        #expect(!link.send(.offerEnd))
    }
}

import CohortCore
import CohortMembership
import CohortNode
import CohortReplication
import CohortWire
import NIOCore
import Testing

/// Captured frames sent again to a node's cluster port, over TCP and UDP: the first
/// delivery is accepted, every replay is rejected and counted, and nothing a replay
/// carries is applied. The "capture" is a frame sealed with the cluster key by a peer
/// process `x` (what an eavesdropper records is exactly these bytes).
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ReplayTests {
    static let key = ClusterKey.generate()
    static let codec = FrameCodec(protection: .sealed(key))
    static let peer = NodeID(name: "x", address: Address(host: "127.0.0.1", port: 9), uid: 0xABCD_0001)

    static func makeNode() async throws -> ClusterNode {
        try await InProcessClusterTests.makeNode("n1", seeds: [], key: key)
    }

    static func frame(_ message: WireMessage, to receiver: UInt64, sequence: UInt64) -> [UInt8] {
        let envelope = FrameEnvelope(sender: peer.uid, receiver: receiver, sequence: sequence)
        return Array(codec.encode(message, envelope: envelope).readableBytesView)
    }

    static func snapshot(_ id: SessionID, count: UInt8) -> SessionSnapshot {
        SessionSnapshot(
            id: id, version: SessionVersion(counter: UInt64(count), origin: "x"),
            attributes: ["count": [count]], maxIdle: .seconds(60), idleFor: .zero)
    }

    @Test func aReplayedTCPConnectionIsRejectedAndChangesNothing() async throws {
        let node = try await Self.makeNode()
        try await InProcessClusterTests.withRunning([node]) {
            let id = SessionID(key: "AAAAAAAAAAAAAAAAAAAAAAAAAAA", route: "x")
            let hello = Self.frame(.hello(Self.peer), to: node.id.uid, sequence: 0)
            let first = Self.frame(.replication(.session(Self.snapshot(id, count: 1))), to: node.id.uid, sequence: 1)
            let captured = hello + first

            let original = try RawSocket.Stream(to: node.id.address)
            try original.send(captured)
            try await InProcessClusterTests.waitUntil("the original frame is applied") {
                node.localSession(forKey: id.key)?.attributes["count"] == [1]
            }
            // The session moves on (count 2) on the same connection.
            try original.send(Self.frame(.replication(.session(Self.snapshot(id, count: 2))), to: node.id.uid, sequence: 2))
            try await InProcessClusterTests.waitUntil("the next frame is applied") {
                node.localSession(forKey: id.key)?.attributes["count"] == [2]
            }
            #expect(node.counters.framesRejected == 0)

            // The recorded connection, replayed on a new one: the hello is fine, the
            // session frame is a replay; the node closes the connection.
            let replay = try RawSocket.Stream(to: node.id.address)
            try replay.send(captured)
            try await InProcessClusterTests.waitUntil("the replay is counted") { node.counters.framesReplayed == 1 }
            #expect(replay.waitForClose(), "the node kept a replaying connection open")
            #expect(node.counters.framesRejected == 1)

            // A frame captured on its way to an earlier process of this node (another
            // receiver uid) is refused as well, even with a fresh sequence number.
            let elsewhere = try RawSocket.Stream(to: node.id.address)
            try elsewhere.send(Self.frame(.hello(Self.peer), to: node.id.uid &+ 1, sequence: 0))
            #expect(elsewhere.waitForClose(), "a hello for another process was accepted")
            try await InProcessClusterTests.waitUntil("the misdirected hello is counted") { node.counters.framesReplayed == 2 }
            #expect(node.localSession(forKey: id.key)?.attributes["count"] == [2], "a replay rolled the session back")
        }
    }

    @Test("a replayed hello holds no connection: without a sequenced frame after it, the node closes it")
    func aReplayedHelloAloneIsClosed() async throws {
        let node = try await Self.makeNode()
        try await InProcessClusterTests.withRunning([node]) {
            let hello = Self.frame(.hello(Self.peer), to: node.id.uid, sequence: 0)
            // What an eavesdropper can send: a hello it captured, and nothing after it.
            let replayed = try RawSocket.Stream(to: node.id.address, receiveTimeout: .seconds(9))
            try replayed.send(hello)
            // A peer that holds the key follows its hello with a sequenced frame.
            let genuine = try RawSocket.Stream(to: node.id.address, receiveTimeout: .seconds(2))
            try genuine.send(hello + Self.frame(.replication(.touched(keys: [])), to: node.id.uid, sequence: 1))
            let clock = ContinuousClock()
            let start = clock.now
            #expect(replayed.waitForClose(), "a hello alone kept its connection open")
            #expect(clock.now - start >= .seconds(3), "closed before the hello's grace period")
            #expect(node.counters.framesRejected == 1)
            #expect(!genuine.waitForClose(), "a connection whose hello was followed by a sequenced frame was closed")
        }
    }

    @Test func replayedAndTooOldDatagramsAreRejectedReorderedOnesAccepted() async throws {
        let node = try await Self.makeNode()
        try await InProcessClusterTests.withRunning([node]) {
            let member = Membership.Member(id: Self.peer, incarnation: 1, status: .alive)
            func ping(_ sequence: UInt64) -> [UInt8] {
                Self.frame(.membership(Membership.Packet(from: member, message: .ping(sequence: sequence))), to: 0, sequence: sequence)
            }
            // First a genuine ping (again, with new numbers, until the running node has
            // taken it in): x becomes a member.
            var first: UInt64 = 1
            try await InProcessClusterTests.waitUntil("x is a member") {
                first += 1
                try? RawSocket.sendDatagram(ping(first), to: node.id.address)
                return node.members.contains { $0.id == Self.peer }
            }
            #expect(node.counters.framesRejected == 0)
            // 1010, then 1008 (reordered: accepted), 1008 again (replay), 1100 (window
            // slides), 1020 (older than the 64-frame window), 1100 again (replay).
            for sequence: UInt64 in [1010, 1008, 1008, 1100, 1020, 1100] {
                try RawSocket.sendDatagram(ping(sequence), to: node.id.address)
            }
            try await InProcessClusterTests.waitUntil("three datagrams rejected") { node.counters.framesReplayed == 3 }
            // A datagram whose envelope names another sender than its packet.
            let other = FrameEnvelope(sender: Self.peer.uid + 1, receiver: 0, sequence: 2_000)
            let forged = Array(Self.codec.encode(.membership(Membership.Packet(from: member, message: .ping(sequence: 2_000))), envelope: other).readableBytesView)
            try RawSocket.sendDatagram(forged, to: node.id.address)
            try await InProcessClusterTests.waitUntil("the mismatched sender is rejected") { node.counters.framesReplayed == 4 }
            #expect(node.counters.framesRejected == 4)
        }
    }
}

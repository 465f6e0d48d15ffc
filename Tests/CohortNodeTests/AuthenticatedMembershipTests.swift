import CohortCore
import CohortMembership
import CohortNode
import CohortReplication
import CohortWire
import NIOCore
import Testing

/// A process without the cluster key can reach the cluster port but gains nothing there:
/// it cannot join, cannot make a member look dead or gone, cannot inject sessions, and
/// nothing it receives can be read. Every attempt is rejected and counted, and the
/// cluster keeps replicating throughout.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct AuthenticatedMembershipTests {
    static let key = ClusterKey.generate()

    /// Frames an attacker can build: unsealed (insecure), or sealed with its own key.
    static let forgers = [FrameCodec(protection: .insecure), FrameCodec(protection: .sealed(.generate()))]

    @Test func forgedMembershipAndSessionFramesChangeNothing() async throws {
        let n1 = try await InProcessClusterTests.makeNode("n1", seeds: [], key: Self.key)
        let n2 = try await InProcessClusterTests.makeNode("n2", seeds: [n1.id.address], key: Self.key)
        try await InProcessClusterTests.withRunning([n1, n2]) {
            try await InProcessClusterTests.waitUntil("n1 and n2 see each other") {
                InProcessClusterTests.aliveNames(n1) == ["n1", "n2"] && InProcessClusterTests.aliveNames(n2) == ["n1", "n2"]
            }
            let n2Member = try #require(n1.members.first { $0.id.name == "n2" })
            var sent = 0
            for forger in Self.forgers {
                // "n2 is dead" (gossip with a higher incarnation) and "n2 leaves", claimed by n2 itself.
                let dead = Membership.Member(id: n2.id, incarnation: n2Member.incarnation + 10, status: .dead)
                let lies: [Membership.Packet] = [
                    Membership.Packet(from: dead, message: .ping(sequence: 1), gossip: [dead]),
                    Membership.Packet(from: n2Member, message: .leave),
                ]
                for (index, packet) in lies.enumerated() {
                    let envelope = FrameEnvelope(sender: n2.id.uid, receiver: 0, sequence: UInt64(1_000 + index))
                    try RawSocket.sendDatagram(Array(forger.encode(.membership(packet), envelope: envelope).readableBytesView), to: n1.id.address)
                    sent += 1
                }
                // A hello claiming to be n2, then a whole session.
                let id = SessionID(key: "BBBBBBBBBBBBBBBBBBBBBBBBBBB", route: "n2")
                let snapshot = SessionSnapshot(id: id, version: SessionVersion(counter: 1, origin: "n2"), attributes: ["admin": [1]], maxIdle: .seconds(60), idleFor: .zero)
                let stream = try RawSocket.Stream(to: n1.id.address)
                let hello = forger.encode(.hello(n2.id), envelope: FrameEnvelope(sender: n2.id.uid, receiver: n1.id.uid, sequence: 0))
                let session = forger.encode(.replication(.session(snapshot)), envelope: FrameEnvelope(sender: n2.id.uid, receiver: n1.id.uid, sequence: 1))
                try stream.send(Array(hello.readableBytesView) + Array(session.readableBytesView))
                #expect(stream.waitForClose(), "n1 kept a connection with a forged hello open")
                sent += 1
                #expect(n1.localSession(forKey: id.key) == nil, "a forged session was stored")
            }
            let expected = sent
            try await InProcessClusterTests.waitUntil("every forged frame is rejected") { n1.counters.framesRejected >= expected }
            #expect(n1.counters.framesReplayed == 0, "forgeries must fail authentication, not reach replay checks")
            // n2 is still alive on n1, and replication still works both ways.
            #expect(n1.members.first { $0.id.name == "n2" }?.status == .alive)
            let id = n1.makeSessionID()
            let report = await n1.commit(InProcessClusterTests.change(id, from: .zero, count: 1))
            #expect(report.outcome == .acknowledged)
            #expect(n2.localSession(forKey: id.key)?.attributes["count"] == [1])
        }
    }

    @Test func aNodeWithAnotherKeyReceivesNoSessionData() async throws {
        let n1 = try await InProcessClusterTests.makeNode("n1", seeds: [], key: Self.key)
        let n2 = try await InProcessClusterTests.makeNode("n2", seeds: [n1.id.address], key: Self.key)
        // The intruder names n1 and n2 as seeds, so they hear of it and it hears of them.
        let intruder = try await InProcessClusterTests.makeNode("x", seeds: [n1.id.address, n2.id.address], key: .generate())
        try await InProcessClusterTests.withRunning([n1, n2, intruder]) {
            try await InProcessClusterTests.waitUntil("n1 and n2 see each other") {
                InProcessClusterTests.aliveNames(n1) == ["n1", "n2"] && InProcessClusterTests.aliveNames(n2) == ["n1", "n2"]
            }
            let id = n1.makeSessionID()
            var version = SessionVersion.zero
            for count in UInt8(1)...5 {
                let report = await n1.commit(InProcessClusterTests.change(id, from: version, count: count))
                #expect(report.outcome == .acknowledged)
                version = try #require(report.session?.version)
            }
            try await InProcessClusterTests.waitUntil("the intruder's frames were rejected by both") {
                n1.counters.framesRejected > 0 && n2.counters.framesRejected > 0
            }
            #expect(intruder.members.map(\.id.name) == ["x"], "the intruder learned members: \(intruder.members)")
            #expect(intruder.sessionCount == 0)
            #expect(await intruder.load(id: id) == nil, "the intruder could fetch a session")
            #expect(!n1.members.contains { $0.id.name == "x" } && !n2.members.contains { $0.id.name == "x" })
        }
    }
}

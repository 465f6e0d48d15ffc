import CohortCore
import CohortMembership
@testable import CohortNode
import CohortReplication
import Logging
import NIOCore
import NIOEmbedded
import Testing

/// A node's link and replication group follow the process membership holds current for a
/// name, whatever uid a membership event is about.
@Suite struct PeerLinkReconcileTests {
    static let me = NodeID(name: "n1", address: Address(host: "127.0.0.1", port: 7001), uid: 1)
    static let earlier = NodeID(name: "n2", address: Address(host: "127.0.0.1", port: 7002), uid: 21)
    /// n2 restarted at another port (a new host, or `--cluster host:0`).
    static let restarted = NodeID(name: "n2", address: Address(host: "127.0.0.1", port: 7102), uid: 22)

    let loop = EmbeddedEventLoop()
    var state: NodeState
    var now = Instant.zero

    init() {
        state = NodeState(membership: Membership.Instance(myself: Self.me, seeds: [], random: SplitMix64(seed: 7)),
                          engine: ReplicationEngine(nodeName: "n1"))
        _ = state.membership.start(now: now)
    }

    func makeLink(_ peer: NodeID) -> PeerLink {
        PeerLink(peer: peer, eventLoop: loop, hello: { ByteBuffer() }, seal: { _, _ in }, maxPendingBytes: 1 << 20,
                 maxBackoff: .seconds(1), logger: Logger(label: "test"), onReachability: { _ in })
    }

    /// A packet from `sender` reaches membership; its directives go through `NodeState`.
    mutating func receive(from sender: NodeID, sequence: UInt64, gossip: [Membership.Member] = []) {
        now = now + .milliseconds(10)
        let packet = Membership.Packet(from: Membership.Member(id: sender, incarnation: 0, status: .alive),
                                       message: .ping(sequence: sequence), gossip: gossip)
        var effects: [NodeEffect] = []
        let directives = state.membership.onPacket(packet, now: now)
        state.absorb(directives, now: now, makeLink: makeLink, into: &effects)
    }

    @Test("news about an earlier life of a restarted peer (suspected, then dead) keeps the link and the group on the new one")
    mutating func earlierLifeSuspectedThenDead() {
        receive(from: Self.earlier, sequence: 1)
        #expect(state.links["n2"]?.peer.uid == Self.earlier.uid)
        #expect(state.engine.isPeer("n2"))

        receive(from: Self.restarted, sequence: 1)
        #expect(state.links["n2"]?.peer.uid == Self.restarted.uid, "the link moves to the restarted process")
        #expect(state.engine.isPeer("n2"))

        receive(from: Self.restarted, sequence: 2, gossip: [Membership.Member(id: Self.earlier, incarnation: 0, status: .suspect)])
        #expect(state.membership.member(Self.earlier)?.status == .suspect)
        #expect(state.links["n2"]?.peer.uid == Self.restarted.uid, "a suspicion of the earlier life does not move it back")
        #expect(state.engine.isPeer("n2"))

        receive(from: Self.restarted, sequence: 3, gossip: [Membership.Member(id: Self.earlier, incarnation: 0, status: .dead)])
        #expect(state.membership.member(Self.earlier)?.status == .dead)
        #expect(state.links["n2"]?.peer.uid == Self.restarted.uid, "the earlier life's death does not close the current link")
        #expect(state.engine.isPeer("n2"), "n2 still gets every write's copy")
    }

    @Test("when the only process of a name dies, its link closes and it leaves the group")
    mutating func onlyLifeDies() {
        receive(from: Self.earlier, sequence: 1)
        let witness = NodeID(name: "n3", address: Address(host: "127.0.0.1", port: 7003), uid: 31)
        receive(from: witness, sequence: 1, gossip: [Membership.Member(id: Self.earlier, incarnation: 0, status: .dead)])
        #expect(state.links["n2"] == nil)
        #expect(!state.engine.isPeer("n2"))
        #expect(state.engine.isPeer("n3"))
    }
}

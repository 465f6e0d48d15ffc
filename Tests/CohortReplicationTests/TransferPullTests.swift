import CohortCore
import CohortReplication
import Testing

/// A restarted node pulls every copy it was offered, even when the offer arrives before
/// membership lists the offering node or the connection to it breaks during the
/// transfer; until then it does not report ready.
@Suite struct TransferPullTests {
    let id = SessionID(key: "GGGGGGGGGGGGGGGGGGGGGGGGGGG", route: "A")
    let t0 = Instant(seconds: 100)

    /// Node A holding one session, with B just come up: its next tick offers B the session.
    func holderWithOffers() -> (ReplicationEngine, [ReplicationDirective]) {
        var a = ReplicationEngine(nodeName: "A")
        a.markDiscovered()
        _ = a.onTick(now: t0)
        _ = a.onLocalCommit(
            LocalChange(id: id, loadedVersion: .zero, changes: [.set(name: "cart", value: [1, 2, 3])], maxIdle: .seconds(600)),
            durability: .async, now: t0)
        _ = a.onPeerUp("B", now: t0)
        return (a, a.onTick(now: t0 + .milliseconds(100)))
    }

    func sent(_ directives: [ReplicationDirective], to peer: String) -> [ReplicationMessage] {
        directives.compactMap { if case .send(let message, peer) = $0 { message } else { nil } }
    }

    /// Delivers `messages` from `from` to `to`, then everything they answer, back and forth.
    func exchange(_ messages: [ReplicationMessage], from: String, _ sender: inout ReplicationEngine,
                  to: String, _ receiver: inout ReplicationEngine, now: Instant) {
        var queue = messages.map { (from, $0) }
        while !queue.isEmpty {
            let (origin, message) = queue.removeFirst()
            if origin == from {
                queue += sent(receiver.onPeerMessage(message, from: from, now: now), to: from).map { (to, $0) }
            } else {
                queue += sent(sender.onPeerMessage(message, from: to, now: now), to: to).map { (from, $0) }
            }
        }
    }

    @Test func anOfferThatArrivesBeforeMembershipListsItsSenderIsPulledOnceItDoes() throws {
        var (a, offers) = holderWithOffers()
        #expect(sent(offers, to: "B").contains { if case .offer = $0 { true } else { false } })
        var b = ReplicationEngine(nodeName: "B")
        // The offer and the offer's end reach B before B's membership reports A alive.
        for message in sent(offers, to: "B") { _ = b.onPeerMessage(message, from: "A", now: t0) }
        b.markDiscovered()
        _ = b.onTick(now: t0 + .milliseconds(200))
        #expect(!b.isReady, "a wanted copy is parked, not dropped")
        _ = b.onPeerUp("A", now: t0 + .milliseconds(300))
        let pulls = sent(b.onTick(now: t0 + .milliseconds(400)), to: "A")
        #expect(!pulls.isEmpty)
        exchange(pulls, from: "B", &b, to: "A", &a, now: t0 + .milliseconds(400))
        #expect(b.session(forKey: id.key)?.attributes["cart"] == [1, 2, 3])
        _ = b.onTick(now: t0 + .milliseconds(500))
        #expect(b.isReady)
    }

    @Test func aPullWhoseConnectionBrokeIsAskedAgainOnceReachable() throws {
        var (a, offers) = holderWithOffers()
        var b = ReplicationEngine(nodeName: "B")
        _ = b.onPeerUp("A", now: t0)
        for message in sent(offers, to: "B") { _ = b.onPeerMessage(message, from: "A", now: t0) }
        b.markDiscovered()
        let first = sent(b.onTick(now: t0 + .milliseconds(200)), to: "A")
        #expect(!first.isEmpty, "the pull went out")
        // The answer is lost with the connection.
        _ = b.onPeerUnreachable("A", now: t0 + .milliseconds(250))
        _ = b.onTick(now: t0 + .milliseconds(300))
        #expect(!b.isReady)
        b.onPeerReachable("A")
        let again = sent(b.onTick(now: t0 + .milliseconds(400)), to: "A")
        #expect(again.contains { if case .fetch(let key) = $0 { key == id.key } else if case .fetchMany(let keys) = $0 { keys.contains(id.key) } else { false } })
        exchange(again, from: "B", &b, to: "A", &a, now: t0 + .milliseconds(400))
        #expect(b.session(forKey: id.key) != nil)
        _ = b.onTick(now: t0 + .milliseconds(500))
        #expect(b.isReady)
    }
}

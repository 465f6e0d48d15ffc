import CohortCore
import CohortMembership
import Testing

/// Helpers that build hand-made packets for one ``Membership/Instance`` ("a").
enum Fixture {
    static let configuration = Membership.Configuration()

    static func id(_ name: String, uid: UInt64 = 1) -> NodeID {
        NodeID(name: name, address: Address(host: name, port: 7946), uid: uid)
    }

    static func member(_ name: String, _ incarnation: UInt64, _ status: Membership.Status, uid: UInt64 = 1) -> Membership.Member {
        Membership.Member(id: id(name, uid: uid), incarnation: incarnation, status: status)
    }

    static func time(_ milliseconds: Int64) -> Instant { Instant(milliseconds: milliseconds) }

    /// Node "a", started at time 0 with no seeds.
    static func started(seed: UInt64 = 1) -> Membership.Instance {
        var a = Membership.Instance(myself: id("a"), seeds: [], random: SplitMix64(seed: seed))
        _ = a.start(now: .zero)
        return a
    }

    /// Node "a" that knows each of `names` alive at incarnation 0 (each pinged it).
    static func knowing(_ names: [String], seed: UInt64 = 1) -> Membership.Instance {
        var a = started(seed: seed)
        for name in names {
            _ = a.onPacket(Membership.Packet(from: member(name, 0, .alive), message: .ping(sequence: 1)), now: .zero)
        }
        return a
    }

    static func gossip(_ updates: [Membership.Member], from sender: String = "z") -> Membership.Packet {
        Membership.Packet(from: member(sender, 0, .alive), message: .ping(sequence: 99), gossip: updates)
    }

    static func sends(_ directives: [Membership.Directive]) -> [(packet: Membership.Packet, address: Address)] {
        directives.compactMap {
            if case .send(let packet, let address) = $0 { (packet, address) } else { nil }
        }
    }

    static func changes(_ directives: [Membership.Directive]) -> [(member: Membership.Member, previous: Membership.Status?)] {
        directives.compactMap {
            if case .memberChanged(let member, let previous) = $0 { (member, previous) } else { nil }
        }
    }

    /// The status changes `directives` report about `name`, as "previous->new".
    static func transitions(_ directives: [Membership.Directive], of name: String) -> [String] {
        changes(directives).filter { $0.member.id.name == name }.map {
            "\($0.previous.map(\.description) ?? "nil")->\($0.member.status)"
        }
    }
}

@Suite("Membership precedence rules")
struct MembershipPrecedenceTests {
    typealias F = Fixture

    /// Every (new, old) status pair at every incarnation order against SWIM's table.
    @Test(arguments: [Membership.Status.alive, .suspect, .dead, .left], [Membership.Status.alive, .suspect, .dead, .left])
    func supersedesTable(new: Membership.Status, old: Membership.Status) {
        for (newIncarnation, oldIncarnation) in [(1, 2), (2, 2), (3, 2)] as [(UInt64, UInt64)] {
            let expected: Bool = switch (new, old) {
            case (_, .left): false
            case (.left, _): true
            case (.alive, _): newIncarnation > oldIncarnation
            case (.suspect, .alive): newIncarnation >= oldIncarnation
            case (.suspect, .suspect): newIncarnation > oldIncarnation
            case (.dead, .alive), (.dead, .suspect): newIncarnation >= oldIncarnation
            case (.suspect, .dead), (.dead, .dead): false
            }
            let result = Membership.Instance.supersedes(F.member("b", newIncarnation, new), F.member("b", oldIncarnation, old))
            #expect(result == expected, "\(new)(\(newIncarnation)) over \(old)(\(oldIncarnation))")
        }
    }

    @Test("gossip moves a member alive → suspect → dead only by the rules")
    func suspectThenDead() {
        var a = F.knowing(["b"])
        var d = a.onPacket(F.gossip([F.member("b", 0, .suspect)]), now: F.time(10))
        #expect(F.transitions(d, of: "b") == ["alive->suspect"])
        d = a.onPacket(F.gossip([F.member("b", 0, .suspect), F.member("b", 0, .alive)]), now: F.time(20))
        #expect(F.transitions(d, of: "b").isEmpty, "suspect(0) and alive(0) do not override suspect(0)")
        d = a.onPacket(F.gossip([F.member("b", 1, .alive)]), now: F.time(30))
        #expect(F.transitions(d, of: "b") == ["suspect->alive"])
        d = a.onPacket(F.gossip([F.member("b", 0, .dead)]), now: F.time(40))
        #expect(F.transitions(d, of: "b").isEmpty, "dead(0) is older than alive(1)")
        d = a.onPacket(F.gossip([F.member("b", 1, .dead)]), now: F.time(50))
        #expect(F.transitions(d, of: "b") == ["alive->dead"])
        #expect(a.member(named: "b")?.status == .dead)
        #expect(a.liveMembers.map(\.id.name) == ["z"])
    }

    @Test("alive with a higher incarnation updates silently; an equal one is ignored")
    func aliveIncarnations() {
        var a = F.knowing(["b"])
        let d = a.onPacket(F.gossip([F.member("b", 3, .alive)]), now: F.time(10))
        #expect(F.changes(d).allSatisfy { $0.member.id.name != "b" })
        #expect(a.member(named: "b")?.incarnation == 3)
        _ = a.onPacket(F.gossip([F.member("b", 2, .alive)]), now: F.time(20))
        #expect(a.member(named: "b")?.incarnation == 3)
    }

    @Test("a dead member is revived only by alive with a strictly higher incarnation")
    func deadRevival() {
        var a = F.knowing(["b"])
        _ = a.onPacket(F.gossip([F.member("b", 2, .dead)]), now: F.time(10))
        var d = a.onPacket(F.gossip([F.member("b", 2, .alive), F.member("b", 2, .suspect)]), now: F.time(20))
        #expect(F.transitions(d, of: "b").isEmpty)
        d = a.onPacket(F.gossip([F.member("b", 3, .alive)]), now: F.time(30))
        #expect(F.transitions(d, of: "b") == ["dead->alive"])
        #expect(a.member(named: "b")?.incarnation == 3)
    }

    @Test("a dead record keeps the highest incarnation it heard, so older alive news cannot revive it")
    func deadIncarnationRaised() {
        var a = F.knowing(["b"])
        _ = a.onPacket(F.gossip([F.member("b", 0, .dead)]), now: F.time(10))
        _ = a.onPacket(F.gossip([F.member("b", 5, .dead)]), now: F.time(20))
        let d = a.onPacket(F.gossip([F.member("b", 4, .alive)]), now: F.time(30))
        #expect(F.transitions(d, of: "b").isEmpty)
        #expect(a.member(named: "b")?.status == .dead)
    }

    @Test("left is final for a uid")
    func leftIsFinal() {
        var a = F.knowing(["b"])
        var d = a.onPacket(Membership.Packet(from: F.member("b", 4, .alive), message: .leave), now: F.time(10))
        #expect(F.transitions(d, of: "b") == ["alive->left"])
        d = a.onPacket(F.gossip([F.member("b", 9, .alive), F.member("b", 9, .dead)]), now: F.time(20))
        #expect(F.transitions(d, of: "b").isEmpty)
        d = a.onPacket(Membership.Packet(from: F.member("b", 10, .alive), message: .ping(sequence: 5)), now: F.time(30))
        #expect(d.isEmpty, "packets from a left uid are ignored")
        #expect(a.member(named: "b")?.status == .left)
    }

    @Test("only alive introduces an unknown member")
    func unknownMembers() {
        var a = F.started()
        var d = a.onPacket(F.gossip([F.member("c", 0, .suspect), F.member("d", 0, .dead), F.member("e", 0, .left)]), now: F.time(10))
        #expect(F.changes(d).map(\.member.id.name) == ["z"])
        d = a.onPacket(F.gossip([F.member("c", 0, .alive)]), now: F.time(20))
        #expect(F.transitions(d, of: "c") == ["nil->alive"])
    }

    @Test("suspicion or death at the node's own incarnation or later is refuted with the next one")
    func refutation() {
        var a = F.knowing(["b"])
        var d = a.onPacket(F.gossip([F.member("a", 0, .suspect)], from: "b"), now: F.time(10))
        #expect(a.myself.incarnation == 1)
        #expect(a.myself.status == .alive)
        // The ack already carries the new incarnation, and the alive news goes first after
        // news about the destination.
        let ack = F.sends(d).first { if case .ack = $0.packet.message { true } else { false } }
        #expect(ack?.packet.from.incarnation == 1)
        #expect(ack?.packet.gossip.first?.id == F.id("b"))
        #expect(ack?.packet.gossip.dropFirst().first == Membership.Member(id: F.id("a"), incarnation: 1, status: .alive))
        d = a.onPacket(F.gossip([F.member("a", 0, .dead)], from: "b"), now: F.time(20))
        #expect(a.myself.incarnation == 1, "a claim older than the current incarnation is stale")
        _ = a.onPacket(F.gossip([F.member("a", 7, .dead)], from: "b"), now: F.time(30))
        #expect(a.myself.incarnation == 8)
        _ = a.onPacket(F.gossip([F.member("a", .max, .suspect)], from: "b"), now: F.time(40))
        #expect(a.myself.incarnation == .max, "saturates instead of trapping")
        #expect(F.changes(d).allSatisfy { $0.member.id != F.id("a") }, "no change is reported about oneself")
    }

    @Test("a packet from a member held dead is answered with a ping carrying the dead record")
    func deadSenderIsAskedToRefute() {
        var a = F.knowing(["b", "c"])
        _ = a.onPacket(F.gossip([F.member("b", 0, .dead)], from: "c"), now: F.time(10))
        var d = a.onPacket(
            Membership.Packet(from: F.member("b", 0, .alive), message: .ping(sequence: 4), gossip: [F.member("c", 0, .dead)]),
            now: F.time(20)
        )
        #expect(F.transitions(d, of: "b").isEmpty, "not revived at the same incarnation")
        #expect(F.transitions(d, of: "c").isEmpty, "a dead sender's view of others is ignored")
        let sends = F.sends(d)
        #expect(sends.count == 2)
        #expect(sends.allSatisfy { $0.address == F.id("b").address })
        #expect(sends.contains { if case .ping = $0.packet.message { true } else { false } })
        #expect(sends.contains { if case .ack(4, _) = $0.packet.message { true } else { false } })
        #expect(sends.allSatisfy { $0.packet.gossip.first == F.member("b", 0, .dead) })
        // Rate-limited: a second packet in the same probe interval gets only the ack.
        d = a.onPacket(Membership.Packet(from: F.member("b", 0, .alive), message: .ping(sequence: 5)), now: F.time(30))
        #expect(F.sends(d).count == 1)
        // The refuted incarnation readmits it.
        d = a.onPacket(Membership.Packet(from: F.member("b", 1, .alive), message: .ack(sequence: 77, target: F.member("b", 1, .alive))), now: F.time(40))
        #expect(F.transitions(d, of: "b") == ["dead->alive"])
    }

    @Test("a packet from a new uid with the same name and address retires the old uid")
    func restartReplacesOldUID() {
        var a = F.knowing(["b"])
        let d = a.onPacket(Membership.Packet(from: F.member("b", 0, .alive, uid: 2), message: .ping(sequence: 1)), now: F.time(10))
        #expect(F.changes(d).map { "\($0.member.id.uid):\($0.member.status)" } == ["2:alive", "1:dead"])
        #expect(a.member(named: "b")?.id.uid == 2)
        #expect(a.member(F.id("b", uid: 1))?.status == .dead)
        #expect(a.liveMembers.map(\.id) == [F.id("b", uid: 2)])
        // Stale news about the old uid does not bring it back.
        _ = a.onPacket(F.gossip([F.member("b", 0, .alive, uid: 1)]), now: F.time(20))
        #expect(a.member(F.id("b", uid: 1))?.status == .dead)
    }
}

import CohortCore
import CohortMembership
import Testing

@Suite("Membership probing, discovery and hostile input")
struct MembershipProbeTests {
    typealias F = Fixture

    /// Drives "a" (knowing b and c) tick by tick; c answers every ping, b never does.
    @Test("an unanswered probe escalates to ping requests, then suspicion, then death", arguments: 0..<5)
    func probeEscalation(seed: Int) {
        var a = F.knowing(["b", "c"], seed: UInt64(seed))
        var firstPingToB: Instant?
        var pingRequestAt: Instant?
        var suspectAt: Instant?
        var deadAt: Instant?
        for ms in stride(from: Int64(20), through: 3_000, by: 20) {
            let now = F.time(ms)
            let directives = a.onTick(now: now)
            for (packet, address) in F.sends(directives) {
                switch packet.message {
                case .ping(let sequence) where address == F.id("c").address:
                    _ = a.onPacket(Membership.Packet(from: F.member("c", 0, .alive), message: .ack(sequence: sequence, target: F.member("c", 0, .alive))), now: now)
                case .ping where address == F.id("b").address:
                    if firstPingToB == nil { firstPingToB = now }
                case .pingRequest(_, let target):
                    #expect(target == F.id("b"))
                    #expect(address == F.id("c").address, "the only other member helps")
                    if pingRequestAt == nil { pingRequestAt = now }
                default:
                    break
                }
            }
            for change in F.changes(directives) where change.member.id.name == "b" {
                if change.member.status == .suspect { suspectAt = now }
                if change.member.status == .dead { deadAt = now }
            }
            #expect(F.changes(directives).allSatisfy { $0.member.id.name != "c" }, "c always answers")
        }
        let config = F.configuration
        guard let start = firstPingToB else {
            Issue.record("b was never probed")
            return
        }
        #expect(start <= F.time(0) + config.probeInterval * 2, "a round of two members")
        #expect(pingRequestAt == start + config.pingTimeout)
        #expect(suspectAt == start + config.probeTimeout)
        #expect(deadAt == start + config.probeTimeout + config.suspicionTimeout(clusterSize: 3))
    }

    @Test("a tick that comes after the probe timeout still asks others first, and suspects only when they did not answer in time")
    func lateTickAsksOthersFirst() {
        var a = F.knowing(["b", "c"], seed: 3)
        let config = F.configuration
        // Tick until a probes b (c answers every ping directly).
        var start: Instant?
        var ms: Int64 = 20
        while start == nil && ms < 3_000 {
            for (packet, address) in F.sends(a.onTick(now: F.time(ms))) {
                guard case .ping(let sequence) = packet.message else { continue }
                if address == F.id("b").address {
                    start = F.time(ms)
                } else {
                    _ = a.onPacket(Membership.Packet(from: F.member("c", 0, .alive), message: .ack(sequence: sequence, target: F.member("c", 0, .alive))), now: F.time(ms))
                }
            }
            ms += 20
        }
        guard let start else {
            Issue.record("b was never probed")
            return
        }
        // The next tick comes late: past the whole probe timeout (a stalled process).
        let late = start + config.probeTimeout + .milliseconds(40)
        let directives = a.onTick(now: late)
        #expect(F.sends(directives).contains { if case .pingRequest = $0.packet.message { true } else { false } },
                "no ping request: the probe was concluded without asking others")
        #expect(!F.changes(directives).contains { $0.member.id.name == "b" }, "b suspected on a late tick")
        // The helpers' answers have the rest of the probe's time; without one, b is suspected then.
        let before = a.onTick(now: late + config.probeTimeout - config.pingTimeout - .milliseconds(1))
        #expect(!F.changes(before).contains { $0.member.id.name == "b" })
        let after = a.onTick(now: late + config.probeTimeout - config.pingTimeout)
        #expect(F.changes(after).contains { $0.member.id.name == "b" && $0.member.status == .suspect })
    }

    @Test("every live member is probed once per round")
    func roundRobin() {
        let names = ["b", "c", "d", "e", "f"]
        var a = F.knowing(names)
        var targets: [String] = []
        for ms in stride(from: Int64(20), through: 4_000, by: 20) {
            for (packet, address) in F.sends(a.onTick(now: F.time(ms))) {
                guard case .ping(let sequence) = packet.message else { continue }
                let name = address.host
                targets.append(name)
                let member = F.member(name, 0, .alive)
                _ = a.onPacket(Membership.Packet(from: member, message: .ack(sequence: sequence, target: member)), now: F.time(ms))
            }
        }
        #expect(targets.count == 20)
        for round in 0..<4 {
            #expect(Set(targets[(round * 5)..<(round * 5 + 5)]) == Set(names), "round \(round): \(targets)")
        }
    }

    @Test("a ping request is relayed and the target's ack forwarded with the original sequence")
    func relay() {
        var a = F.knowing(["b", "c"])
        var d = a.onPacket(Membership.Packet(from: F.member("b", 0, .alive), message: .pingRequest(sequence: 7, target: F.id("c"))), now: F.time(10))
        let ping = F.sends(d).first
        #expect(ping?.address == F.id("c").address)
        guard case .ping(let relaySequence) = ping?.packet.message else {
            Issue.record("no relayed ping: \(d)")
            return
        }
        let c = F.member("c", 0, .alive)
        d = a.onPacket(Membership.Packet(from: c, message: .ack(sequence: relaySequence, target: c)), now: F.time(12))
        #expect(F.sends(d).map(\.address) == [F.id("b").address])
        #expect(F.sends(d).first?.packet.message == .ack(sequence: 7, target: c))
        // The same ack again is not forwarded twice.
        d = a.onPacket(Membership.Packet(from: c, message: .ack(sequence: relaySequence, target: c)), now: F.time(13))
        #expect(F.sends(d).isEmpty)
        // A request about "a" itself is answered directly.
        d = a.onPacket(Membership.Packet(from: F.member("b", 0, .alive), message: .pingRequest(sequence: 8, target: F.id("a"))), now: F.time(14))
        #expect(F.sends(d).first?.packet.message == .ack(sequence: 8, target: a.myself))
    }

    @Test("hostile or unexpected input is ignored without trapping")
    func garbage() {
        var unstarted = Membership.Instance(myself: F.id("a"), seeds: [], random: SplitMix64(seed: 1))
        #expect(unstarted.onTick(now: F.time(10)).isEmpty)
        #expect(unstarted.onPacket(F.gossip([]), now: F.time(10)).isEmpty)

        var a = F.knowing(["b"])
        let b = F.member("b", 0, .alive)
        // An ack with an unknown sequence, a ping request for an unknown target.
        #expect(F.sends(a.onPacket(Membership.Packet(from: b, message: .ack(sequence: 12345, target: b)), now: F.time(10))).isEmpty)
        #expect(F.sends(a.onPacket(Membership.Packet(from: b, message: .pingRequest(sequence: 1, target: F.id("nobody"))), now: F.time(11))).isEmpty)
        // From itself, or from another uid claiming its name or address.
        #expect(a.onPacket(Membership.Packet(from: a.myself, message: .ping(sequence: 1)), now: F.time(12)).isEmpty)
        #expect(a.onPacket(Membership.Packet(from: F.member("a", 0, .alive, uid: 9), message: .ping(sequence: 1)), now: F.time(13)).isEmpty)
        let sameAddress = Membership.Member(id: NodeID(name: "x", address: F.id("a").address, uid: 3), incarnation: 0, status: .alive)
        #expect(a.onPacket(Membership.Packet(from: sameAddress, message: .ping(sequence: 1)), now: F.time(14)).isEmpty)
        // An ack naming a dead target, gossip about this node's other lives, a flood of gossip.
        _ = a.onPacket(Membership.Packet(from: b, message: .ack(sequence: 1, target: F.member("q", 0, .dead))), now: F.time(15))
        var flood = (0..<1_000).map { F.member("m\($0)", UInt64($0), .alive) }
        flood.insert(F.member("a", 0, .alive, uid: 5), at: 0)
        _ = a.onPacket(F.gossip(flood, from: "b"), now: F.time(16))
        #expect(a.member(named: "q") == nil)
        #expect(a.members.count == 2 + 63, "64 gossip updates read per packet at most")
        #expect(a.members.filter { $0.id.name == "a" }.map(\.id) == [F.id("a")])
        // The instance still works.
        #expect(a.myself.status == .alive)
        #expect(!a.onTick(now: F.time(400)).isEmpty)
    }

    @Test("start pings each seed once, never its own address; reconnects ping uncovered seeds and dead members")
    func discovery() {
        let s1 = Address(host: "s1", port: 1)
        let s2 = Address(host: "s2", port: 2)
        var a = Membership.Instance(myself: F.id("a"), seeds: [F.id("a").address, s1, s1, s2], random: SplitMix64(seed: 1))
        var d = a.start(now: .zero)
        #expect(F.sends(d).map(\.address) == [s1, s2])
        #expect(a.start(now: F.time(5)).isEmpty)
        // s1 answers as node "s"; "b" is known and then declared dead.
        let s = Membership.Member(id: NodeID(name: "s", address: s1, uid: 1), incarnation: 0, status: .alive)
        _ = a.onPacket(Membership.Packet(from: s, message: .ack(sequence: 1, target: s)), now: F.time(10))
        _ = a.onPacket(Membership.Packet(from: F.member("b", 0, .alive), message: .ping(sequence: 1), gossip: [F.member("b", 0, .dead)]), now: F.time(10))
        #expect(a.member(named: "b")?.status == .dead)
        d = a.onTick(now: .zero + F.configuration.reconnectInterval)
        let pinged = F.sends(d).filter { if case .ping = $0.packet.message { true } else { false } }
        #expect(pinged.contains { $0.address == s2 }, "s2 never answered")
        #expect(pinged.filter { $0.address == s1 }.count <= 1, "s1 is covered by s (at most probed)")
        let toB = pinged.first { $0.address == F.id("b").address }
        #expect(toB?.packet.gossip.first == F.member("b", 0, .dead), "a dead member is told it is dead, so it can refute")
    }

    @Test("leave tells every live member, then the instance goes quiet; receivers stop probing the leaver")
    func leave() {
        var a = F.knowing(["b", "c"])
        let d = a.leave(now: F.time(10))
        #expect(Set(F.sends(d).map(\.address)) == [F.id("b").address, F.id("c").address])
        #expect(F.sends(d).allSatisfy { $0.packet.message == .leave && $0.packet.from.status == .left })
        #expect(a.myself.status == .left)
        #expect(a.onTick(now: F.time(1_000)).isEmpty)
        #expect(a.onPacket(F.gossip([], from: "b"), now: F.time(1_000)).isEmpty)
        #expect(a.leave(now: F.time(1_001)).isEmpty)

        var receiver = F.knowing(["x", "b"])
        let d2 = receiver.onPacket(Membership.Packet(from: F.member("x", 0, .left), message: .leave), now: F.time(10))
        #expect(F.transitions(d2, of: "x") == ["alive->left"])
        for ms in stride(from: Int64(20), through: 2_000, by: 20) {
            #expect(F.sends(receiver.onTick(now: F.time(ms))).allSatisfy { $0.address != F.id("x").address })
        }
    }

    @Test("tombstones are dropped after the retention period")
    func tombstones() {
        var a = F.knowing(["b"])
        _ = a.onPacket(F.gossip([F.member("b", 0, .dead)], from: "c"), now: F.time(10))
        var ms: Int64 = 20
        while ms < 61_000 {
            _ = a.onTick(now: F.time(ms))
            if ms == 59_980 { #expect(a.member(named: "b")?.status == .dead) }
            ms += 20
        }
        _ = a.onTick(now: F.time(61_000))
        #expect(a.member(named: "b") == nil)
        #expect(!a.members.contains { $0.id.name == "b" })
    }

    @Test("each update rides on a bounded number of packets, news about the destination first")
    func retransmitLimit() {
        var a = F.knowing(["b", "c"])
        var carriedB = 0
        // The acks that introduced b and c carried gossip too; count from the start.
        var all: [Membership.Directive] = []
        var fresh = F.started()
        all += fresh.onPacket(Membership.Packet(from: F.member("b", 0, .alive), message: .ping(sequence: 1)), now: .zero)
        all += fresh.onPacket(Membership.Packet(from: F.member("c", 0, .alive), message: .ping(sequence: 1)), now: .zero)
        for sequence in 2..<40 {
            let d = fresh.onPacket(Membership.Packet(from: F.member("c", 0, .alive), message: .ping(sequence: UInt64(sequence))), now: .zero)
            #expect(F.sends(d).first?.packet.gossip.first.map { $0.id.name != "b" } ?? true)
            all += d
        }
        for (packet, _) in F.sends(all) where packet.gossip.contains(where: { $0.id.name == "b" }) {
            carriedB += 1
        }
        // N = 3: 4 × ⌈log2(4)⌉ = 8.
        #expect(carriedB == F.configuration.gossipRetransmitMultiplier * 2)
        // A suspect destination hears about its suspicion in every packet to it.
        _ = a.onPacket(F.gossip([F.member("b", 0, .suspect)], from: "c"), now: F.time(5))
        for sequence in 0..<30 {
            let d = a.onPacket(Membership.Packet(from: F.member("b", 0, .alive), message: .ping(sequence: UInt64(sequence))), now: F.time(10))
            let ack = F.sends(d).first { if case .ack = $0.packet.message { true } else { false } }
            #expect(ack?.packet.gossip.first == F.member("b", 0, .suspect))
        }
    }

    @Test("observers are members like any other")
    func observers() {
        var a = F.started()
        var observer = F.member("o", 0, .alive)
        observer.role = .observer
        let d = a.onPacket(Membership.Packet(from: observer, message: .ping(sequence: 1)), now: F.time(1))
        #expect(F.changes(d).first?.member.role == .observer)
        #expect(a.liveMembers.map(\.role) == [.observer])
    }

    @Test("the same seed and inputs give the same directives")
    func deterministic() {
        func run() -> [Membership.Directive] {
            var a = F.knowing(["b", "c", "d", "e"], seed: 42)
            var all: [Membership.Directive] = []
            for ms in stride(from: Int64(20), through: 3_000, by: 20) {
                all += a.onTick(now: F.time(ms))
            }
            return all
        }
        let first = run()
        #expect(first == run())
        #expect(first.count > 20)
    }
}

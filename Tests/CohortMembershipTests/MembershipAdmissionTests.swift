import CohortCore
import CohortMembership
import Testing

/// The admission gate of one ``Membership/Instance`` ("a"), by hand-made packets.
@Suite("Membership admission gate")
struct MembershipAdmissionTests {
    typealias F = Fixture

    static var configuration: Membership.Configuration {
        var configuration = Membership.Configuration()
        configuration.requiresAdmission = true
        return configuration
    }

    static func started(seeds: [Address] = []) -> Membership.Instance {
        var a = Membership.Instance(myself: F.id("a"), seeds: seeds, configuration: configuration, random: SplitMix64(seed: 1))
        _ = a.start(now: .zero)
        return a
    }

    static func verifications(_ directives: [Membership.Directive]) -> [NodeID] {
        directives.compactMap { if case .verify(let id) = $0 { id } else { nil } }
    }

    @Test func aPacketFromANodeNotAdmittedIsDroppedAndItsVerificationRequested() {
        var a = Self.started()
        let ping = F.gossip([F.member("c", 0, .alive)], from: "b")
        let directives = a.onPacket(ping, now: F.time(10))
        #expect(Self.verifications(directives) == [F.id("b")])
        #expect(F.sends(directives).isEmpty, "a packet from a node not admitted was answered")
        #expect(a.members.map(\.id.name) == ["a"])
        #expect(!a.isAdmitted(F.id("b")))
    }

    @Test func verificationRequestsAreRateLimitedAndBackOffAfterFailures() {
        var a = Self.started()
        let interval = Self.configuration.probeInterval
        var requests: [Instant] = []
        var now = Instant.zero
        // b sends a packet every tick for 20 s; every verification fails.
        while now < Instant(seconds: 20) {
            now = now + Self.configuration.tickInterval
            let directives = a.onPacket(F.gossip([], from: "b"), now: now)
            if !Self.verifications(directives).isEmpty {
                requests.append(now)
                a.rejectAdmission(F.id("b"), now: now)
            }
        }
        let gaps = zip(requests.dropFirst(), requests).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 >= interval }, "\(gaps)")
        #expect(gaps.prefix(4).elementsEqual(gaps.prefix(4).sorted()), "no backoff: \(gaps)")
        #expect(gaps.last.map { $0 >= Self.configuration.maxAdmissionBackoff } == true, "\(gaps)")
        #expect(requests.count <= 8, "\(requests.count) requests in 20 s")
        #expect(a.members.map(\.id.name) == ["a"])
    }

    @Test func anAdmittedNodeIsPingedAndThenBecomesAMember() {
        var a = Self.started()
        _ = a.onPacket(F.gossip([], from: "b"), now: F.time(10))
        let admitted = a.admit(F.id("b"), now: F.time(12))
        #expect(F.sends(admitted).map(\.address) == [F.id("b").address], "no ping on admission")
        #expect(a.members.map(\.id.name) == ["a"], "admission alone makes no member")
        let directives = a.onPacket(F.gossip([], from: "b"), now: F.time(14))
        #expect(F.transitions(directives, of: "b") == ["nil->alive"])
        #expect(F.sends(directives).count == 1, "the ping was not acked")
    }

    @Test func gossipAboutANodeNotAdmittedIsNotAppliedButVerified() {
        var a = Self.started()
        _ = a.admit(F.id("b"), now: .zero)
        _ = a.onPacket(F.gossip([], from: "b"), now: F.time(1))
        let directives = a.onPacket(F.gossip([F.member("c", 0, .alive), F.member("d", 3, .dead)], from: "b"), now: F.time(2))
        #expect(Self.verifications(directives) == [F.id("c")])
        #expect(F.changes(directives).isEmpty)
        #expect(a.member(F.id("c")) == nil && a.member(F.id("d")) == nil)
    }

    @Test func aRestartedProcessNeedsANewVerification() {
        var a = Self.started()
        _ = a.admit(F.id("b"), now: .zero)
        _ = a.onPacket(F.gossip([], from: "b"), now: F.time(1))
        let restarted = Membership.Packet(from: F.member("b", 0, .alive, uid: 2), message: .ping(sequence: 1))
        let directives = a.onPacket(restarted, now: F.time(2))
        #expect(Self.verifications(directives) == [F.id("b", uid: 2)])
        #expect(a.member(F.id("b"))?.status == .alive, "an unverified process replaced a verified one")
    }

    @Test func withoutTheSwitchEverySenderIsAdmitted() {
        var a = F.started()
        let directives = a.onPacket(F.gossip([], from: "b"), now: F.time(1))
        #expect(Self.verifications(directives).isEmpty)
        #expect(F.transitions(directives, of: "b") == ["nil->alive"])
        #expect(a.isAdmitted(F.id("x")))
        #expect(a.admit(F.id("x"), now: F.time(2)).isEmpty)
    }
}

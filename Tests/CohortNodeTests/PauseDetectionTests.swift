import CohortCore
import CohortMembership
@testable import CohortNode
import CohortReplication
import Testing

/// A node that stood still (a VM stall, SIGSTOP) checks its sessions with their owners
/// for a while once it runs again: `NodeState.noteTick` and `isResyncing`, on a manual clock.
@Suite struct PauseDetectionTests {
    static let me = NodeID(name: "n1", address: Address(host: "127.0.0.1", port: 7001), uid: 1)
    let pause = Duration.milliseconds(160)
    let resync = Duration.seconds(3)
    var state = NodeState(
        membership: Membership.Instance(myself: Self.me, seeds: [], random: SplitMix64(seed: 7)),
        engine: ReplicationEngine(nodeName: "n1"))

    @Test mutating func regularTicksNeverStartACheck() {
        var now = Instant(seconds: 10)
        for _ in 0..<100 {
            #expect(state.noteTick(now: now, pause: pause, resync: resync) == nil)
            #expect(!state.isResyncing(now: now, pause: pause))
            now = now + .milliseconds(150)  // late ticks, within the bound
        }
        #expect(state.counters.pauses == 0)
    }

    @Test mutating func aGapStartsACheckAtOnceWhichEndsAfterTheResyncPeriod() {
        let start = Instant(seconds: 10)
        _ = state.noteTick(now: start, pause: pause, resync: resync)
        // Running again after 2 s, before the next tick: already checking.
        let thawed = start + .seconds(2)
        #expect(state.isResyncing(now: thawed, pause: pause))
        #expect(state.noteTick(now: thawed, pause: pause, resync: resync) == .seconds(2))
        #expect(state.counters.pauses == 1)
        // Catch-up ticks keep it on for the whole period, then it ends.
        #expect(state.noteTick(now: thawed + .milliseconds(20), pause: pause, resync: resync) == nil)
        #expect(state.isResyncing(now: thawed + .seconds(2), pause: pause))
        var now = thawed + .milliseconds(20)
        while now < thawed + resync + .milliseconds(100) {
            now = now + .milliseconds(20)
            _ = state.noteTick(now: now, pause: pause, resync: resync)
        }
        #expect(!state.isResyncing(now: now, pause: pause))
        #expect(state.counters.pauses == 1)
    }

    @Test mutating func gapsWithinACheckCountOnceAndExtendIt() {
        let start = Instant(seconds: 10)
        _ = state.noteTick(now: start, pause: pause, resync: resync)
        #expect(state.noteTick(now: start + .seconds(1), pause: pause, resync: resync) != nil)
        #expect(state.noteTick(now: start + .seconds(2), pause: pause, resync: resync) == nil, "within the period")
        #expect(state.isResyncing(now: start + .seconds(4.5), pause: pause), "extended from the second gap")
        #expect(state.counters.pauses == 1)
    }

    @Test mutating func aStoppingNodeNeverChecks() {
        let start = Instant(seconds: 10)
        _ = state.noteTick(now: start, pause: pause, resync: resync)
        state.stopping = true
        #expect(!state.isResyncing(now: start + .seconds(5), pause: pause), "its ticks ended: not a pause")
    }
}

import CohortCore
import Testing

@Suite struct LogThrottleTests {
    @Test func oneLinePerKeyPerIntervalThenTheCountOfTheRest() {
        var throttle = LogThrottle<Instant>(capacity: 2)
        let t0 = Instant(seconds: 100)
        func admit(_ key: String, _ now: Instant) -> Int? { throttle.admit(key, now: now, quietUntil: now + .seconds(10)) }
        #expect(admit("a", t0) == 0)
        #expect(admit("a", t0 + .seconds(1)) == nil)
        #expect(admit("a", t0 + .seconds(9)) == nil)
        #expect(admit("b", t0 + .seconds(2)) == 0)  // another key is independent
        #expect(admit("a", t0 + .seconds(10)) == 2)  // the next line reports the two left out
        #expect(admit("a", t0 + .seconds(11)) == nil)
        // Full: a new key first drops keys whose quiet period is over (b)...
        #expect(admit("c", t0 + .seconds(12)) == 0)
        #expect(admit("a", t0 + .seconds(12)) == nil)  // a is still quiet
        // ...and if all are still quiet (a, c), new keys share one entry rather than grow.
        #expect(admit("b", t0 + .seconds(13)) == 0)
        #expect(admit("d", t0 + .seconds(14)) == nil)
        #expect(admit("a", t0 + .seconds(14)) == nil, "a keeps its own entry")
        #expect(admit("e", t0 + .seconds(23)) == 0, "once a and c are quiet no more, a new key has its own entry again")
    }

    @Test("a flood from more keys than the capacity (spoofed senders) gets one line per interval, not one per key")
    func floodOfDistinctKeys() {
        var throttle = LogThrottle<Instant>(capacity: 1024)
        let now = Instant(seconds: 100)
        var lines = 0
        for index in 0..<10_000 where throttle.admit("10.0.\(index / 256).\(index % 256) invalid", now: now, quietUntil: now + .seconds(10)) != nil {
            lines += 1
        }
        #expect(lines == 1025, "one per remembered key, and one for all the others")
        var later = 0
        for index in 10_000..<20_000 where throttle.admit("k\(index)", now: now + .seconds(11), quietUntil: now + .seconds(21)) != nil {
            later += 1
        }
        #expect(later == 1025, "after the interval the table turns over once: again 1,025 lines, not 10,000")
    }
}

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
        // ...and if all are still quiet (a, c), drops everything rather than grow.
        #expect(admit("b", t0 + .seconds(13)) == 0)
        #expect(admit("a", t0 + .seconds(13)) == 0)
    }
}

import CohortCore
import Testing

@Suite struct SessionIDTests {
    @Test func generatedIDsCarry160RandomBitsAndParseBack() {
        var generator = SplitMix64(seed: 1)
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = SessionID.generate(route: "n1", using: &generator)
            #expect(id.key.count == 27)
            #expect(id.route == "n1")
            #expect(SessionID(parsing: id.description) == id)
            seen.insert(id.key)
        }
        #expect(seen.count == 1000)
    }

    @Test(arguments: [
        "", ".", "abc.n1", "AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAA.", ".n1",
        "AAAAAAAAAAAAAAAAAAAAAA.n1.x", "AAAAAAAAAAAAAAAAAAAAA!.n1", "AAAAAAAAAAAAAAAAAAAAAA.n 1",
        "AAAAAAAAAAAAAAAAAAAAAA.\u{e9}", String(repeating: "A", count: 65) + ".n1",
        "AAAAAAAAAAAAAAAAAAAAAA." + String(repeating: "n", count: 65),
    ])
    func malformedCookieValuesAreRejected(_ text: String) {
        #expect(SessionID(parsing: text) == nil)
    }

    @Test func wellFormedValuesParse() {
        let id = SessionID(parsing: "AAAAAAAAAAAAAAAAAAAAAA.node-2_b")
        #expect(id?.key == "AAAAAAAAAAAAAAAAAAAAAA")
        #expect(id?.route == "node-2_b")
        #expect(id?.rebound(to: "n3").description == "AAAAAAAAAAAAAAAAAAAAAA.n3")
    }

    @Test func logTagDoesNotRevealTheKey() {
        let id = SessionID(key: "AAAAAAAAAAAAAAAAAAAAAAAAAAA", route: "n1")
        #expect(!id.logTag.isEmpty)
        #expect(!id.key.contains(id.logTag) || id.logTag.count < 8)
        #expect(id.logTag != SessionID(key: "BAAAAAAAAAAAAAAAAAAAAAAAAAA", route: "n1").logTag)
    }

    @Test func addressesParse() {
        #expect(Address(parsing: "127.0.0.1:7001") == Address(host: "127.0.0.1", port: 7001))
        #expect(Address(parsing: "[::1]:80") == Address(host: "::1", port: 80))
        #expect(Address(parsing: "localhost") == nil)
        #expect(Address(parsing: ":80") == nil)
        #expect(Address(parsing: "h:70000") == nil)
        #expect(Address(host: "::1", port: 80).description == "[::1]:80")
    }

    /// Found by the balancer fuzzer: a `[` followed by a combining mark (U+06E8) is one
    /// character but still a bracket byte; parsing and description agree on bytes.
    @Test func anAddressWithCombiningMarksRoundTrips() throws {
        let text = "\u{06E8}x[\u{06E8}y::1@]:7946"
        let address = try #require(Address(parsing: text))
        #expect(address.host == "\u{06E8}x[\u{06E8}y::1@]")
        #expect(Address(parsing: address.description) == address)
        let bracketed = try #require(Address(parsing: "[\u{06E8}a]:80"))
        #expect(bracketed.host == "\u{06E8}a")
    }

    @Test func instantArithmetic() {
        let start = Instant(seconds: 10)
        #expect(start + .milliseconds(1500) == Instant(milliseconds: 11_500))
        #expect(Instant(seconds: 12) - start == .seconds(2))
        #expect(Duration.seconds(Int64.max).nanosecondsClamped == Int64.max)
    }

    /// A peer's duration of ~292 years must push a deadline to the end of the clock, not
    /// wrap it into the distant past.
    @Test func instantArithmeticSaturates() {
        let start = Instant(seconds: 10)
        let far = Duration.milliseconds(Int64.max / 1_000_000)
        #expect(start + far + far == Instant(nanoseconds: .max))
        #expect(start - far - far == Instant(nanoseconds: .min))
        #expect(Instant(nanoseconds: .max) - Instant(nanoseconds: .min) == .nanoseconds(Int64.max))
        #expect(Instant(nanoseconds: .min) - Instant(nanoseconds: .max) == .nanoseconds(Int64.min))
        #expect(start + .seconds(-3) == Instant(seconds: 7))
    }
}

import CohortCore
import CohortHummingbird
import CohortNode
import CohortWire
import Hummingbird
import HummingbirdTesting
import Testing

/// Values the library refuses up front, and session misuse that would lose writes.
@Suite struct ConfigurationValidationTests {
    static func configuration() -> ClusterNode.Configuration {
        .init(name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure, durability: .async)
    }

    @Test func aNodeRefusesDurationsThatAreNotPositiveAndBoundsThatCannotHoldAFrame() throws {
        try Self.configuration().validate()
        var spinning = Self.configuration()
        spinning.membership.tickInterval = .zero
        #expect(throws: ConfigurationError.self) { try spinning.validate() }
        var noAcks = Self.configuration()
        noAcks.replication.ackTimeout = .milliseconds(-1)
        #expect(throws: ConfigurationError.self) { try noAcks.validate() }
        var smallQueue = Self.configuration()
        smallQueue.maxPendingBytesPerPeer = smallQueue.limits.maxFrameLength - 1
        #expect(throws: ConfigurationError.self) { try smallQueue.validate() }
    }

    @Test func sessionBoundsMustFitWhatPeersAccept() async throws {
        let node = try await ClusterNode.bind(configuration: Self.configuration())
        try ClusterSessionConfiguration().validate(for: node)
        let wire = WireLimits()
        let invalid: [(String, (inout ClusterSessionConfiguration) -> Void)] = [
            ("value past the wire", {
                $0.limits.maxAttributeValueBytes = wire.maxAttributeValueLength + 1
                $0.limits.maxSessionBytes = 4 << 20
            }),
            ("name past the wire", { $0.limits.maxAttributeNameBytes = wire.maxAttributeNameLength + 1 }),
            ("as many attributes as the wire (the record needs one more)", { $0.limits.maxAttributes = wire.maxAttributes }),
            ("session as large as a frame", { $0.limits.maxSessionBytes = wire.maxFrameLength }),
            ("zero lifetime", { $0.maxLifetime = .zero }),
            ("zero idle timeout", { $0.idleTimeout = .zero }),
            ("no sessions", { $0.maxSessions = 0 }),
            ("a cookie name with a separator", { $0.cookieName = "a;b" }),
            ("a negative cookie age", { $0.cookieMaxAge = .seconds(-1) }),
            ("a cookie age under a second (Max-Age=0 deletes)", { $0.cookieMaxAge = .milliseconds(500) }),
            ("a trusted proxy by host name", { $0.secureCookies = .automatic(trustedProxies: ["127.0.0.1", "balancer.internal"]) }),
            ("a trusted proxy range", { $0.secureCookies = .automatic(trustedProxies: ["10.0.0.0/8"]) }),
        ]
        for (what, change) in invalid {
            var configuration = ClusterSessionConfiguration()
            change(&configuration)
            #expect(throws: ConfigurationError.self, "\(what)") { try configuration.validate(for: node) }
        }
        // What used to work still does: a small session bound under the default value
        // bound, a cookie name that is a token but no node name.
        var small = ClusterSessionConfiguration()
        small.limits.maxSessionBytes = 16 * 1024
        small.cookieName = "app.sid"
        try small.validate(for: node)
    }

    @Test func aSessionOutsideTheMiddlewareOrAReservedNameIsRefusedNotLostSilently() throws {
        let detached = ClusterSession()
        #expect(throws: ClusterSessionMisuse.noMiddleware) { try detached.set(1, forKey: "count") }
        #expect(detached.keys.isEmpty)
        #expect(throws: ClusterSessionMisuse.reservedName("cohort.request")) { try detached.set("x", forKey: "cohort.request") }
        #expect(throws: ClusterSessionMisuse.reservedName("cohort.x")) { try detached.get(String.self, forKey: "cohort.x") }
        detached.remove("cohort.request")  // left alone, no trap
        #expect(try detached.get(Int.self, forKey: "count") == nil)
    }

    @Test func sameSiteNoneMakesTheCookieSecureAndMaxAgeIsSent() async throws {
        let node = try await ClusterNode.bind(configuration: Self.configuration())
        var sessions = ClusterSessionConfiguration()
        sessions.sameSite = .none
        sessions.cookieMaxAge = .seconds(3600)
        let router = Router(context: BasicClusterSessionRequestContext.self)
        router.add(middleware: ClusterSessionMiddleware(node: node, configuration: sessions))
        router.post("/login") { _, context -> String in
            try context.session.set("alice", forKey: "user")
            return "ok"
        }
        try await Application(router: router).test(.router) { client in
            let response = try await client.execute(uri: "/login", method: .post)
            let cookie = try #require(response.headers[.setCookie])
            #expect(cookie.contains("SameSite=None"), "\(cookie)")
            #expect(cookie.contains("Secure"), "over plain HTTP too: browsers drop SameSite=None without it: \(cookie)")
            #expect(cookie.contains("Max-Age=3600"), "\(cookie)")
        }
    }
}

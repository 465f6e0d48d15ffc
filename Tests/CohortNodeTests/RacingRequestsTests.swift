import CohortCore
import CohortHummingbird
import CohortNode
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing

/// Two requests on one session at once, one of which ends the session's id: what the
/// other one's response does to the cookie.
@Suite struct RacingRequestsTests {
    /// Holds a handler between loading the session and writing it, until the test opens it.
    final class Gate: Sendable {
        private let state = NIOLockedValueBox<(arrived: Bool, opened: CheckedContinuation<Void, Never>?)>((false, nil))

        /// In the handler: signals arrival, then waits for `open()`.
        func pass() async {
            await withCheckedContinuation { continuation in
                state.withLockedValue { $0 = (true, continuation) }
            }
        }

        var hasArrived: Bool { state.withLockedValue { $0.arrived } }

        /// Waits until a handler reached the gate, at most `timeout`; whether one did.
        func arrived(within timeout: Duration) async throws -> Bool {
            let deadline = ContinuousClock.now + timeout
            while !hasArrived, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            return hasArrived
        }

        func open() {
            state.withLockedValue { state in
                state.opened?.resume()
                state.opened = nil
            }
        }
    }

    /// The middleware tests' app, plus `/slow-count`, held at `gate` between its read and its write.
    static func makeApp(gate: Gate) async throws -> some ApplicationProtocol {
        try await ClusterSessionMiddlewareTests.makeApp { router in
            router.post("/slow-count") { _, context -> String in
                let count = try context.session.get(Int.self, forKey: "count") ?? 0
                await gate.pass()
                try context.session.set(count + 1, forKey: "count")
                return "\(count + 1)"
            }
        }.0
    }

    @Test("a write refused because a login rotated the id meanwhile keeps the cookie; one refused after a logout clears it",
          arguments: ["/login", "/logout"])
    func aRefusedWriteClearsTheCookieOnlyAfterALogout(_ ender: String) async throws {
        let gate = Gate()
        let app = try await Self.makeApp(gate: gate)
        try await app.test(.router) { client in
            let created = try await client.execute(uri: "/count", method: .post)
            let cookie = try #require(created.headers[.setCookie]?.split(separator: ";").first.map(String.init))
            async let slow = client.execute(uri: "/slow-count", method: .post, headers: [.cookie: cookie])
            #expect(try await gate.arrived(within: .seconds(5)))
            let ended = try await client.execute(uri: ender, method: .post, headers: [.cookie: cookie])
            #expect(ended.status == .ok)
            gate.open()
            let late = try await slow
            #expect(late.status == .conflict, "the late write was not saved: its answer must not say it was")
            let clears = late.headers[.setCookie]?.contains("Max-Age=0") == true
            if ender == "/login" {
                // Arriving after the login's response, a clearing cookie would log the user out.
                #expect(!clears, "the late write's response cleared the cookie the login just set")
            } else {
                #expect(clears, "after a logout the ended id's cookie goes")
            }
        }
    }

    /// Two requests each within the session limits on the copy they loaded, which together
    /// would not be: the later commit is refused with 413 and saves nothing.
    @Test func concurrentWritesCannotTogetherGrowASessionPastItsLimits() async throws {
        let gate = Gate()
        let node = try await ClusterNode.bind(configuration: .init(
            name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure, durability: .async))
        var sessions = ClusterSessionConfiguration()
        sessions.limits.maxSessionBytes = 100
        let router = Router(context: BasicClusterSessionRequestContext.self)
        router.add(middleware: ClusterSessionMiddleware(node: node, configuration: sessions))
        router.post("/set") { request, context -> String in
            let name = request.uri.queryParameters.get("name") ?? "a"
            if request.uri.queryParameters.get("slow") != nil { await gate.pass() }
            try context.session.set(String(repeating: "x", count: 40), forKey: name)
            return "ok"
        }
        try await Application(router: router).test(.router) { client in
            let created = try await client.execute(uri: "/set?name=a", method: .post)
            let cookie = try #require(created.headers[.setCookie]?.split(separator: ";").first.map(String.init))
            async let slow = client.execute(uri: "/set?name=c&slow", method: .post, headers: [.cookie: cookie])
            #expect(try await gate.arrived(within: .seconds(5)))
            let other = try await client.execute(uri: "/set?name=b", method: .post, headers: [.cookie: cookie])
            #expect(other.status == .ok, "a and b: 2 × 43 bytes")
            gate.open()
            let late = try await slow
            #expect(late.status == .contentTooLarge, "a, b and c would be 129 bytes")
            let id = try #require(SessionID(parsing: String(cookie.drop { $0 != "=" }.dropFirst())))
            #expect(node.localSession(forKey: id.key)?.attributes.keys == ["a", "b"])
            #expect(node.counters.sessionWritesRefused == 1)
        }
    }
}

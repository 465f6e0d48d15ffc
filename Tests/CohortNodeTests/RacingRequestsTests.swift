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
            let deadline = ContinuousClock.now + .seconds(5)
            while !gate.hasArrived, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(gate.hasArrived)
            let ended = try await client.execute(uri: ender, method: .post, headers: [.cookie: cookie])
            #expect(ended.status == .ok)
            gate.open()
            let late = try await slow
            let clears = late.headers[.setCookie]?.contains("Max-Age=0") == true
            if ender == "/login" {
                // Arriving after the login's response, a clearing cookie would log the user out.
                #expect(!clears, "the late write's response cleared the cookie the login just set")
            } else {
                #expect(clears, "after a logout the ended id's cookie goes")
            }
        }
    }
}

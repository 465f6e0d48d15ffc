import CohortCore
import CohortHummingbird
import CohortNode
import CohortWire
import Hummingbird
import HummingbirdTesting
import Testing

/// Bounds the HTTP side enforces: per-session limits (413) and sessions per node (503 for
/// new sessions only); each refusal is counted and leaves the stored sessions untouched.
@Suite struct SessionLimitTests {
    static func makeApp(
        wire: (inout WireLimits) -> Void = { _ in }, _ configure: (inout ClusterSessionConfiguration) -> Void
    ) async throws -> (some ApplicationProtocol, ClusterNode) {
        var configuration = ClusterNode.Configuration(
            name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure, durability: .async)
        wire(&configuration.limits)
        let node = try await ClusterNode.bind(configuration: configuration)
        var sessions = ClusterSessionConfiguration()
        configure(&sessions)
        let router = Router(context: BasicClusterSessionRequestContext.self)
        router.add(middleware: ClusterSessionMiddleware(node: node, configuration: sessions))
        // POST /set?name=N&size=S stores S bytes ("x"…) under N.
        router.post("/set") { request, context -> String in
            let name = request.uri.queryParameters.get("name") ?? "a"
            let size = request.uri.queryParameters.get("size", as: Int.self) ?? 1
            try context.session.set(String(repeating: "x", count: size), forKey: name)
            return "ok"
        }
        return (Application(router: router), node)
    }

    static func id(_ response: TestResponse) -> SessionID? {
        ClusterSessionMiddlewareTests.cookieValue(response).flatMap { SessionID(parsing: $0) }
    }

    @Test func writesOverASessionLimitGet413AndChangeNothing() async throws {
        let (app, node) = try await Self.makeApp { sessions in
            sessions.limits.maxAttributes = 3
            sessions.limits.maxAttributeNameBytes = 16
            sessions.limits.maxAttributeValueBytes = 100
            sessions.limits.maxSessionBytes = 250
        }
        try await app.test(.router) { client in
            let created = try await client.execute(uri: "/set?name=a&size=10", method: .post)
            let id = try #require(Self.id(created))
            let cookie = "COHORTSESSION=\(id)"
            let version = node.localSession(forKey: id.key)?.version
            for (uri, what) in [
                ("/set?name=b&size=101", "value over 100 bytes"),  // JSON adds 2 quotes: 103
                ("/set?name=\(String(repeating: "n", count: 17))&size=1", "name over 16 bytes"),
            ] {
                let response = try await client.execute(uri: uri, method: .post, headers: [.cookie: cookie])
                #expect(response.status == .contentTooLarge, "\(what): \(response.status)")
            }
            #expect(try await client.execute(uri: "/set?name=b&size=90", method: .post, headers: [.cookie: cookie]).status == .ok)
            #expect(try await client.execute(uri: "/set?name=c&size=90", method: .post, headers: [.cookie: cookie]).status == .ok)
            // a(12) + b(92) + c(92) + names = 199; another 90-byte value would pass 250.
            #expect(try await client.execute(uri: "/set?name=a&size=90", method: .post, headers: [.cookie: cookie]).status == .contentTooLarge)
            // A fourth attribute is one too many, even a small one.
            #expect(try await client.execute(uri: "/set?name=d&size=1", method: .post, headers: [.cookie: cookie]).status == .contentTooLarge)
            // Replacing an attribute within the bounds is fine.
            #expect(try await client.execute(uri: "/set?name=a&size=20", method: .post, headers: [.cookie: cookie]).status == .ok)

            let stored = try #require(node.localSession(forKey: id.key))
            #expect(stored.attributes.keys.sorted() == ["a", "b", "c"])
            #expect(stored.attributes["a"]?.count == 22)
            #expect(stored.version.counter == (version?.counter ?? 0) + 3)
            #expect(node.counters.sessionWritesRefused == 4)
        }
    }

    /// A name longer than a frame's u16 length field could never be replicated: refused
    /// (413) even when the configured limit is higher, never a trap.
    @Test func aNameLongerThanAFrameCarriesIsRefusedWhateverTheLimit() async throws {
        let (app, _) = try await Self.makeApp(wire: { $0.maxAttributeNameLength = 1_000_000 }) { sessions in
            sessions.limits.maxAttributeNameBytes = 1_000_000
            sessions.limits.maxSessionBytes = 1_000_000
        }
        try await app.test(.router) { client in
            let tooLong = String(repeating: "n", count: Int(UInt16.max) + 1)
            let refused = try await client.execute(uri: "/set?name=\(tooLong)&size=1", method: .post)
            #expect(refused.status == .contentTooLarge)
            let longest = String(repeating: "n", count: Int(UInt16.max))
            let stored = try await client.execute(uri: "/set?name=\(longest)&size=1", method: .post)
            #expect(stored.status == .ok)
        }
    }

    @Test func aFullNodeRefusesNewSessionsWith503AndKeepsServingExistingOnes() async throws {
        let (app, node) = try await Self.makeApp { $0.maxSessions = 2 }
        try await app.test(.router) { client in
            var ids: [SessionID] = []
            for _ in 0..<2 {
                ids.append(try #require(Self.id(try await client.execute(uri: "/set", method: .post))))
            }
            let refused = try await client.execute(uri: "/set", method: .post)
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.headers[.retryAfter] == "1")
            #expect(refused.headers[.setCookie] == nil)
            #expect(node.sessionCount == 2)
            #expect(node.counters.sessionsRefused == 1)
            for id in ids {
                let write = try await client.execute(uri: "/set?name=b&size=5", method: .post, headers: [.cookie: "COHORTSESSION=\(id)"])
                #expect(write.status == .ok)
                #expect(node.localSession(forKey: id.key)?.attributes["b"] != nil)
            }
        }
    }
}

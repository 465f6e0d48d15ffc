import CohortCore
import CohortHummingbird
import CohortNode
import CohortReplication
import CohortWire
import Hummingbird
import HummingbirdTesting
import Testing

/// The middleware against one real node (no peers): cookies, creation, commits.
@Suite struct ClusterSessionMiddlewareTests {
    /// The routes below on `node` (by default a new one, named n1, without peers);
    /// `addRoutes` adds a test's own.
    static func makeApp(
        node: ClusterNode? = nil,
        addRoutes: (Router<BasicClusterSessionRequestContext>) -> Void = { _ in }
    ) async throws -> (some ApplicationProtocol, ClusterNode) {
        let node = if let node { node } else {
            try await ClusterNode.bind(configuration: .init(
                name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure, durability: .async))
        }
        let router = Router(context: BasicClusterSessionRequestContext.self)
        router.add(middleware: ClusterSessionMiddleware(node: node))
        addRoutes(router)
        router.post("/count") { _, context -> String in
            let count = try context.session.get(Int.self, forKey: "count") ?? 0
            try context.session.set(count + 1, forKey: "count")
            return "\(count + 1)"
        }
        router.get("/read") { _, context -> String in
            "\(try context.session.get(Int.self, forKey: "count") ?? -1)"
        }
        router.post("/stream") { _, context -> Response in
            let count = try context.session.get(Int.self, forKey: "count") ?? 0
            try context.session.set(count + 1, forKey: "count")
            // A streamed body (unknown length): server-sent events, an export.
            return Response(status: .ok, body: ResponseBody { writer in
                for _ in 0..<4 { try await writer.write(ByteBuffer(string: "chunk \(count + 1)\n")) }
                try await writer.finish(nil)
            })
        }
        router.post("/login") { _, context -> String in
            try context.session.set("alice", forKey: "user")
            context.session.rotateID()
            return "welcome"
        }
        router.post("/rotate-only") { _, context -> String in
            context.session.rotateID()
            return "rotated"
        }
        router.post("/logout") { _, context -> String in
            context.session.invalidate()
            return "bye"
        }
        router.post("/restart") { _, context -> String in
            context.session.invalidate()
            try context.session.set("guest", forKey: "user")
            return "new"
        }
        return (Application(router: router), node)
    }

    static func cookieValue(_ response: TestResponse) -> String? {
        guard let header = response.headers[.setCookie] else { return nil }
        let first = header.split(separator: ";")[0]
        guard let equals = first.firstIndex(of: "=") else { return nil }
        return String(first[first.index(after: equals)...])
    }

    @Test func aFirstWriteCreatesTheSessionAndSetsAHardenedCookie() async throws {
        let (app, node) = try await Self.makeApp()
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/count", method: .post)
            #expect(String(buffer: response.body) == "1")
            let header = try #require(response.headers[.setCookie])
            #expect(header.hasPrefix("COHORTSESSION="))
            #expect(header.contains("HttpOnly"))
            #expect(header.contains("SameSite=Lax"))
            #expect(header.contains("Path=/"))
            let id = try #require(Self.cookieValue(response).flatMap { SessionID(parsing: $0) })
            #expect(id.route == "n1")
            #expect(node.localSession(forKey: id.key) != nil)

            let second = try await client.execute(uri: "/count", method: .post, headers: [.cookie: "COHORTSESSION=\(id)"])
            #expect(String(buffer: second.body) == "2")
            #expect(second.headers[.setCookie] == nil)  // same id: no new cookie
            #expect(node.localSession(forKey: id.key)?.version.counter == 2)
        }
    }

    @Test(arguments: ["garbage", "", "AAAAAAAAAAAAAAAAAAAAAAAAAAA.n1", "../../etc/passwd", String(repeating: "A", count: 5000)])
    func unknownOrMalformedCookiesStartANewSessionNeverAnError(_ value: String) async throws {
        let (app, _) = try await Self.makeApp()
        try await app.test(.router) { client in
            let read = try await client.execute(uri: "/read", method: .get, headers: [.cookie: "COHORTSESSION=\(value)"])
            #expect(read.status == .ok)
            #expect(String(buffer: read.body) == "-1")
            #expect(read.headers[.setCookie] == nil)  // reading creates nothing
            let write = try await client.execute(uri: "/count", method: .post, headers: [.cookie: "COHORTSESSION=\(value)"])
            #expect(write.status == .ok)
            #expect(String(buffer: write.body) == "1")
            #expect(Self.cookieValue(write).flatMap { SessionID(parsing: $0) } != nil)
        }
    }

    @Test func aRetriedWriteWithTheSameRequestIDGetsTheFirstResponseAndIsNotAppliedTwice() async throws {
        let (app, node) = try await Self.makeApp()
        try await app.test(.router) { client in
            let first = try await client.execute(uri: "/count", method: .post)
            let id = try #require(Self.cookieValue(first).flatMap { SessionID(parsing: $0) })
            let cookie = "COHORTSESSION=\(id)"
            let write = try await client.execute(
                uri: "/count", method: .post, headers: [.cookie: cookie, RequestReplay.headerName: "request-0000000001"])
            #expect(String(buffer: write.body) == "2")
            // The balancer's retry of that request (the node died before answering, say).
            let retry = try await client.execute(
                uri: "/count", method: .post, headers: [.cookie: cookie, RequestReplay.headerName: "request-0000000001"])
            #expect(retry.status == write.status)
            #expect(String(buffer: retry.body) == "2")
            #expect(node.localSession(forKey: id.key)?.version.counter == 2)
            // A new request id, even one differing only in its last byte, is a new write.
            let next = try await client.execute(
                uri: "/count", method: .post, headers: [.cookie: cookie, RequestReplay.headerName: "request-0000000002"])
            #expect(String(buffer: next.body) == "3")
            #expect(node.localSession(forKey: id.key)?.version.counter == 3)
            // A client that reuses that id for another request gets it run, not the
            // recorded response of the first.
            let other = try await client.execute(
                uri: "/count?again=1", method: .post, headers: [.cookie: cookie, RequestReplay.headerName: "request-0000000002"])
            #expect(String(buffer: other.body) == "4")
        }
    }

    @Test("a streamed response (unknown length) is sent as made, not collected to be recorded: its retry runs again")
    func aStreamedResponseIsNotRecorded() async throws {
        let (app, node) = try await Self.makeApp()
        try await app.test(.router) { client in
            let first = try await client.execute(uri: "/count", method: .post)
            let id = try #require(Self.cookieValue(first).flatMap { SessionID(parsing: $0) })
            let headers: HTTPFields = [.cookie: "COHORTSESSION=\(id)", RequestReplay.headerName: "request-0000000003"]
            let streamed = try await client.execute(uri: "/stream", method: .post, headers: headers)
            #expect(String(buffer: streamed.body) == String(repeating: "chunk 2\n", count: 4))
            let retry = try await client.execute(uri: "/stream", method: .post, headers: headers)
            #expect(String(buffer: retry.body) == String(repeating: "chunk 3\n", count: 4), "a streamed response was recorded")
            #expect(node.localSession(forKey: id.key)?.version.counter == 3)
        }
    }

    @Test func onlyChangedAttributesAreCommittedAndReadsDoNotBumpTheVersion() async throws {
        let (app, node) = try await Self.makeApp()
        try await app.test(.router) { client in
            let created = try await client.execute(uri: "/count", method: .post)
            let id = try #require(Self.cookieValue(created).flatMap { SessionID(parsing: $0) })
            for _ in 0..<3 {
                let read = try await client.execute(uri: "/read", method: .get, headers: [.cookie: "COHORTSESSION=\(id)"])
                #expect(String(buffer: read.body) == "1")
            }
            #expect(node.localSession(forKey: id.key)?.version.counter == 1)
        }
    }

    @Test func aSessionRoutedToAnotherNodeIsReboundToThisOne() async throws {
        let (app, node) = try await Self.makeApp()
        // A session created on n9 (which died), replicated here.
        let foreign = SessionID(key: "CCCCCCCCCCCCCCCCCCCCCCCCCCC", route: "n9")
        _ = await node.commit(LocalChange(id: foreign, loadedVersion: .zero, changes: [.set(name: "count", value: Array("41".utf8))], maxIdle: .seconds(60)))
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/count", method: .post, headers: [.cookie: "COHORTSESSION=\(foreign)"])
            #expect(String(buffer: response.body) == "42")
            #expect(Self.cookieValue(response) == "CCCCCCCCCCCCCCCCCCCCCCCCCCC.n1")
            #expect(node.localSession(forKey: foreign.key)?.id.route == "n1")
            // The old id still finds the same session during the grace period (by key).
            let old = try await client.execute(uri: "/read", method: .get, headers: [.cookie: "COHORTSESSION=\(foreign)"])
            #expect(String(buffer: old.body) == "42")
        }
    }

    @Test func loginRotatesTheIdKeepsTheDataAndRetiresTheOldID() async throws {
        let (app, node) = try await Self.makeApp()
        try await app.test(.router) { client in
            let created = try await client.execute(uri: "/count", method: .post)
            let old = try #require(Self.cookieValue(created).flatMap { SessionID(parsing: $0) })
            let login = try await client.execute(uri: "/login", method: .post, headers: [.cookie: "COHORTSESSION=\(old)"])
            let fresh = try #require(Self.cookieValue(login).flatMap { SessionID(parsing: $0) })
            #expect(fresh.key != old.key, "the id was not rotated")
            #expect(node.localSession(forKey: old.key) == nil, "the old id still holds the session")
            let session = try #require(node.localSession(forKey: fresh.key))
            #expect(session.attributes["count"] == Array("1".utf8))
            #expect(session.attributes["user"] != nil)
            // The pre-login id (e.g. one an attacker planted) now starts an empty session.
            let stale = try await client.execute(uri: "/read", method: .get, headers: [.cookie: "COHORTSESSION=\(old)"])
            #expect(String(buffer: stale.body) == "-1")
            let current = try await client.execute(uri: "/read", method: .get, headers: [.cookie: "COHORTSESSION=\(fresh)"])
            #expect(String(buffer: current.body) == "1")
        }
    }

    @Test("a rotation alone on a request without a session stores nothing and sets no cookie")
    func aRotationAloneCreatesNoSession() async throws {
        let (app, node) = try await Self.makeApp()
        try await app.test(.router) { client in
            for _ in 0..<3 {
                let response = try await client.execute(uri: "/rotate-only", method: .post)
                #expect(response.status == .ok)
                #expect(response.headers[.setCookie] == nil)
            }
            #expect(node.sessionCount == 0)
        }
    }

    @Test func invalidateEndsTheSessionAndClearsTheCookie() async throws {
        let (app, node) = try await Self.makeApp()
        try await app.test(.router) { client in
            let created = try await client.execute(uri: "/count", method: .post)
            let id = try #require(Self.cookieValue(created).flatMap { SessionID(parsing: $0) })
            let logout = try await client.execute(uri: "/logout", method: .post, headers: [.cookie: "COHORTSESSION=\(id)"])
            #expect(logout.headers[.setCookie]?.contains("Max-Age=0") == true)
            #expect(node.localSession(forKey: id.key) == nil)
            let after = try await client.execute(uri: "/read", method: .get, headers: [.cookie: "COHORTSESSION=\(id)"])
            #expect(String(buffer: after.body) == "-1")
        }
    }

    @Test func valuesSetAfterInvalidateStartANewSessionUnderANewID() async throws {
        let (app, node) = try await Self.makeApp()
        try await app.test(.router) { client in
            let created = try await client.execute(uri: "/count", method: .post)
            let id = try #require(Self.cookieValue(created).flatMap { SessionID(parsing: $0) })
            let restarted = try await client.execute(uri: "/restart", method: .post, headers: [.cookie: "COHORTSESSION=\(id)"])
            let fresh = try #require(Self.cookieValue(restarted).flatMap { SessionID(parsing: $0) })
            #expect(fresh != id)
            #expect(node.localSession(forKey: id.key) == nil, "the old session ended")
            let session = try #require(node.localSession(forKey: fresh.key))
            #expect(session.attributes["user"] == Array(#""guest""#.utf8))
            #expect(session.attributes["count"] == nil, "nothing of the old session")
        }
    }
}

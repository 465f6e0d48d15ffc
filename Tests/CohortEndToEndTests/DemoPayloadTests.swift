import Testing

// `POST /api/payload?bytes=N` of the demo app (what the macro benchmarks in `bench/` use to
// give every session a 1 KB attribute), against two real `cohort node` processes.
@Suite(.serialized, .timeLimit(.minutes(3)), .tags(.endToEnd), .tracksFailuresForNodeLogs)
struct DemoPayloadTests {
    /// `{"id": ..., "node": ..., "count": N, "bytes": N}`: `bytes` is the size of the payload
    /// the session holds after the request (read back from the session).
    struct PayloadInfo: Decodable {
        var id: String
        var node: String
        var count: Int
        var bytes: Int
    }

    @Test func storesBoundedPayloadAndReplicatesTheSession() async throws {
        try await withTestCluster { cluster in
            try await cluster.startFullMesh(["n1", "n2"], durability: "acknowledged")
            let (n1, n2) = (cluster.http("n1"), cluster.http("n2"))

            var browser = Browser()
            let response = try browser.send("POST", "/api/payload?bytes=1024", on: n1)
            try #require(response.status == 200, "POST /api/payload?bytes=1024: HTTP \(response.status) \(response.text)")
            let stored = try response.decode(PayloadInfo.self)
            #expect(stored.bytes == 1024, "the session holds a payload of \(stored.bytes) bytes, asked for 1024")
            #expect(stored.node == "n1")
            #expect(stored.id.hasSuffix(".n1"), "new session id \(stored.id)")
            let cookie = try #require(browser.cookies.cookies[CookieJar.sessionCookieName], "no session cookie set")
            #expect(cookie.value == stored.id)

            // The session with its payload is replicated: n2 serves it (acknowledged write).
            let onN2 = try browser.incrementCounter(on: n2)
            #expect(onN2.key == SessionInfo(id: stored.id, node: "", count: 0).key)
            #expect(onN2.count == 1)

            // Resizing works, and the largest allowed size is accepted.
            let largest = try browser.send("POST", "/api/payload?bytes=60000", on: n1)
            #expect(largest.status == 200)
            #expect(try largest.decode(PayloadInfo.self).bytes == 60000)
            #expect(try largest.decode(PayloadInfo.self).count == 1, "the counter written on n2 was not seen on n1")

            // Out of bounds or not a number: 400, and no new session.
            for query in ["bytes=60001", "bytes=-1", "bytes=abc", ""] {
                var fresh = Browser()
                let rejected = try fresh.send("POST", "/api/payload?\(query)", on: n1)
                #expect(rejected.status == 400, "POST /api/payload?\(query): HTTP \(rejected.status), expected 400")
                #expect(fresh.cookies.cookies[CookieJar.sessionCookieName] == nil, "a rejected request created a session")
            }
        }
    }
}

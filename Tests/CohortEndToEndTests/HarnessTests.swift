#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOConcurrencyHelpers
import Testing

/// The harness on its own: these run without the `cohort` binary.
@Suite(.tags(.harness))
struct HarnessTests {
    static let sessionBody = #"{"id":"AAAAAAAAAAAAAAAAAAAAAAAAAAA.n1","node":"n1","count":3}"#

    static func canned(_ headers: [String], body: String) -> [UInt8] {
        Array((["HTTP/1.1 200 OK"] + headers + ["", body]).joined(separator: "\r\n").utf8)
    }

    @Test func parsesResponseWithContentLengthAndCookie() throws {
        let bytes = Self.canned([
            "Content-Type: application/json",
            "set-cookie: COHORTSESSION=AAAAAAAAAAAAAAAAAAAAAAAAAAA.n1; Path=/; HttpOnly; SameSite=Lax",
            "Content-Length: \(Self.sessionBody.utf8.count)",
        ], body: Self.sessionBody)
        let response = try #require(try HTTPResponseParser.parse(bytes, atEOF: false))
        #expect(response.status == 200)
        #expect(response.reason == "OK")
        #expect(response.header("content-type") == "application/json")
        #expect(response.text == Self.sessionBody)

        let session = try response.decode(SessionInfo.self)
        #expect(session == SessionInfo(id: "AAAAAAAAAAAAAAAAAAAAAAAAAAA.n1", node: "n1", count: 3))
        #expect(session.key == "AAAAAAAAAAAAAAAAAAAAAAAAAAA")
        #expect(session.route == "n1")

        var jar = CookieJar()
        #expect(jar.requestHeader == nil)
        jar.store(from: response)
        #expect(jar.sessionID == "AAAAAAAAAAAAAAAAAAAAAAAAAAA.n1")
        #expect(jar.requestHeader == "COHORTSESSION=AAAAAAAAAAAAAAAAAAAAAAAAAAA.n1")
        let cookie = try #require(jar.cookies["COHORTSESSION"])
        #expect(cookie.attributes["path"] == "/")
        #expect(cookie.isHTTPOnly)
        #expect(cookie.attributes["samesite"] == "Lax")
    }

    @Test func incompleteResponsesNeedMoreBytes() throws {
        let full = Self.canned(["Content-Length: 10"], body: "0123456789")
        #expect(try HTTPResponseParser.parse(Array(full.prefix(10)), atEOF: false) == nil)  // inside the headers
        #expect(try HTTPResponseParser.parse(Array(full.dropLast(3)), atEOF: false) == nil)  // short body
        #expect(try HTTPResponseParser.parse(full, atEOF: false)?.text == "0123456789")

        let unframed = Self.canned([], body: "until close")
        #expect(try HTTPResponseParser.parse(unframed, atEOF: false) == nil)
        #expect(try HTTPResponseParser.parse(unframed, atEOF: true)?.text == "until close")
    }

    @Test func decodesChunkedBodies() throws {
        let chunked = Self.canned(["Transfer-Encoding: chunked"], body: "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n")
        #expect(try HTTPResponseParser.parse(chunked, atEOF: false)?.text == "hello, world")
        #expect(try HTTPResponseParser.parse(Array(chunked.dropLast(2)), atEOF: false) == nil)
    }

    @Test func rejectsGarbage() {
        #expect(throws: HTTPClientError.self) {
            try HTTPResponseParser.parse(Array("SSH-2.0-OpenSSH\r\n\r\n".utf8), atEOF: true)
        }
    }

    @Test func cookieJarReplacesAndDeletes() {
        func response(_ setCookies: [String]) -> HTTPResponse {
            HTTPResponse(status: 200, reason: "OK", headers: setCookies.map { ("Set-Cookie", $0) }, body: [])
        }
        var jar = CookieJar()
        jar.store(from: response(["COHORTSESSION=key.n1; Path=/", "theme=dark"]))
        #expect(jar.requestHeader == "COHORTSESSION=key.n1; theme=dark")
        jar.store(from: response(["COHORTSESSION=key.n2; Path=/; HttpOnly"]))  // route rebinding
        #expect(jar.sessionID == "key.n2")
        jar.store(from: response(["theme=; Max-Age=0", "garbage"]))
        #expect(jar.requestHeader == "COHORTSESSION=key.n2")
    }

    @Test func serializesRequests() {
        var request = HTTPRequest(method: "POST", path: "/api/counter")
        request.headers.append(("Cookie", "COHORTSESSION=key.n1"))
        let text = String(decoding: request.serialized(host: .loopback(8080)), as: UTF8.self)
        #expect(text.hasPrefix("POST /api/counter HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"))
        #expect(text.contains("\r\nConnection: close\r\n"))
        #expect(text.contains("\r\nCookie: COHORTSESSION=key.n1\r\n"))
        #expect(text.hasSuffix("\r\nContent-Length: 0\r\n\r\n"))
    }

    @Test func decodesClusterViews() throws {
        let body = #"{"node":"n1","sessions":2,"members":[{"name":"n1","status":"alive","incarnation":3},{"name":"n2","status":"dead"}]}"#
        let view = try JSONDecoder().decode(ClusterView.self, from: Data(body.utf8))
        #expect(view.lists("n2", as: "dead"))
        #expect(view.statuses(of: "n3").isEmpty)
        #expect(view.summary == "n1=alive n2=dead")
        #expect(view.sessions == 2)
    }

    /// A restarted node is listed again under its name, next to its dead predecessor.
    @Test func clusterViewsWithARestartedNode() throws {
        let body = #"{"node":"n2","sessions":0,"members":[{"name":"n1","status":"dead","uid":"6042aa"},"#
            + #"{"name":"n1","status":"alive","uid":"1115bb"},{"name":"n2","status":"alive","uid":"8762cc"}]}"#
        let view = try JSONDecoder().decode(ClusterView.self, from: Data(body.utf8))
        #expect(view.lists("n1", as: "alive"))
        #expect(view.lists("n1", as: "dead"))
        #expect(view.statuses(of: "n1") == ["dead", "alive"])
        #expect(view.summary == "n1[6042]=dead n1[1115]=alive n2=alive")
    }

    /// The client over a real socket, against a one-shot server thread.
    @Test func clientTalksToALocalServer() throws {
        let listener = try POSIX.makeSocket(type: POSIX.streamSocketType)
        defer { close(listener) }
        #expect(POSIX.bindIPv4(listener, try POSIX.ipv4Address(host: "127.0.0.1", port: 0)) == 0)
        #expect(listen(listener, 1) == 0)
        let port = try POSIX.boundPort(listener)
        let received = ReceivedRequest()
        let reply = Self.canned([
            "Set-Cookie: COHORTSESSION=AAAAAAAAAAAAAAAAAAAAAAAAAAA.n1; Path=/; HttpOnly; SameSite=Lax",
            "Transfer-Encoding: chunked",
        ], body: "\(String(Self.sessionBody.utf8.count, radix: 16))\r\n\(Self.sessionBody)\r\n0\r\n\r\n")
        Thread { received.serveOnce(listener: listener, reply: reply) }.start()

        var browser = Browser(timeout: .seconds(5))
        browser.cookies.set("COHORTSESSION", "old.n9")
        let session = try browser.session(on: .loopback(port))
        #expect(session.count == 3)
        #expect(browser.cookies.sessionID == "AAAAAAAAAAAAAAAAAAAAAAAAAAA.n1")
        let request = received.text.withLockedValue { $0 }
        #expect(request.hasPrefix("GET /api/session HTTP/1.1\r\n"))
        #expect(request.contains("\r\nCookie: COHORTSESSION=old.n9\r\n"))
        #expect(request.contains("\r\nConnection: close\r\n"))
    }

    @Test func connectionRefusedIsAnError() throws {
        let port = try FreePorts.tcp()
        #expect(throws: HTTPClientError.self) { try HTTPClient.get("/health", on: .loopback(port), timeout: .seconds(1)) }
        #expect(!DemoAPI.isHealthy(.loopback(port)))
    }

    @Test func freePortsAreDistinct() throws {
        let ports = try (0..<8).map { _ in try FreePorts.tcpAndUDP() }
        #expect(Set(ports).count == ports.count)
        #expect(!ports.contains(0))
    }

    @Test func waitUntilPollsAndTimesOut() async throws {
        var calls = 0
        let waited = try await waitUntil("the third call", timeout: .seconds(5)) {
            calls += 1
            return calls == 3
        }
        #expect(calls == 3)
        #expect(waited < .seconds(5))

        let error = await #expect(throws: WaitTimedOut.self) {
            try await waitUntil("never", timeout: .milliseconds(200)) { throw NotYet("still no") }
        }
        #expect(error?.lastFailure == "still no")

        await #expect(throws: Unexpected.self) {
            try await waitUntil("stops early", timeout: .seconds(5)) { throw Unexpected("boom") }
        }
    }

    /// The process wrapper with /bin/sh instead of `cohort`.
    @Test func processesAreCapturedTerminatedAndKilled() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("cohort-harness-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let failing = try NodeProcess(label: "failing", executable: "/bin/sh", arguments: ["-c", "echo nope >&2; exit 3"], logDirectory: directory)
        #expect(try await failing.waitForExit(timeout: .seconds(10)) == .exited(3))
        #expect(failing.stderr == "nope\n")

        let polite = try NodeProcess(label: "polite", executable: "/bin/sh", arguments: ["-c", "exec sleep 30"], logDirectory: directory)
        #expect(polite.isRunning)
        #expect(try await polite.terminate(timeout: .seconds(10)) == .signaled(SIGTERM))

        let stubborn = try NodeProcess(label: "stubborn", executable: "/bin/sh", arguments: ["-c", "exec sleep 30"], logDirectory: directory)
        stubborn.kill9()
        #expect(stubborn.exitStatus == .signaled(SIGKILL))
        #expect(!stubborn.isRunning)
    }

    @Test func binaryCandidatesSitNextToTheTests() {
        let candidates = CohortBinary.candidatePaths()
        #expect(!candidates.isEmpty)
        #expect(candidates.allSatisfy { $0.hasSuffix("/cohort") })
    }
}

/// What the one-shot server thread received.
final class ReceivedRequest: Sendable {
    let text = NIOLockedValueBox("")

    func serveOnce(listener: Int32, reply: [UInt8]) {
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { return }
        defer { close(connection) }
        POSIX.setTimeouts(connection, .seconds(5))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: request, as: UTF8.self).contains("\r\n\r\n") {
            let count = POSIX.receiveSome(connection, into: &buffer)
            guard count > 0 else { break }
            request += buffer[..<count]
        }
        text.withLockedValue { $0 = String(decoding: request, as: UTF8.self) }
        var sent = 0
        while sent < reply.count {
            let count = POSIX.sendSome(connection, reply[sent...])
            guard count > 0 else { return }
            sent += count
        }
    }
}

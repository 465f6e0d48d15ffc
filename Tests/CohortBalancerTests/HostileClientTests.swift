@testable import CohortBalancer
import CohortCore
import NIOCore
import Testing

/// Every byte from a client is hostile: a malformed or random request closes its own
/// connection (with 400 when it is recognisably HTTP), never the balancer, and leaves no
/// backend slot taken.
@Suite("Balancer: hostile clients", .timeLimit(.minutes(1)))
struct HostileClientTests {
    @Test("malformed requests get 400 and close only their own connection")
    func malformedRequests() async throws {
        try await withHarness { (h: Harness) async throws in
            let cases: [(name: String, request: String)] = [
                ("a request line that is not HTTP", "GARBAGE\r\n\r\n"),
                ("two different Content-Lengths", "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd"),
                ("a NUL in a header value", "GET / HTTP/1.1\r\nhost: x\r\nx-a: b\u{0}c\r\n\r\n"),
                ("a space in a header name", "GET / HTTP/1.1\r\nhost: x\r\nbad name: v\r\n\r\n"),
                ("a chunk size that is not hex", "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
                ("Content-Length and Transfer-Encoding (a smuggling attempt)",
                 "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"),
                ("obs-fold", "GET / HTTP/1.1\r\nhost: x\r\nx-a: b\r\n  c\r\n\r\n"),
                ("a bare LF", "GET / HTTP/1.1\nhost: x\n\n"),
            ]
            for (name, request) in cases {
                let reply = try await sendRaw(port: h.port, bytes: Array(request.utf8), group: h.group)
                #expect(reply != nil, "\(name): the connection stayed open")
                #expect(reply?.hasPrefix("HTTP/1.1 400") == true, "\(name): \(reply ?? "-")")
            }
            // A transfer coding the balancer cannot re-frame: 501 (RFC 9112 §6.1).
            let gzip = "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
            let reply = try await sendRaw(port: h.port, bytes: Array(gzip.utf8), group: h.group)
            #expect(reply?.hasPrefix("HTTP/1.1 501") == true, "\(reply ?? "-")")
            try await expectHealthy(h)
        }
    }

    @Test("random bytes, and garbage after a valid pipelined request, close their connection; the balancer keeps serving")
    func randomBytes() async throws {
        try await withHarness(configure: { $0.clientIdleTimeout = .milliseconds(300) }) { (h: Harness) async throws in
            var random = SplitMix64(seed: 0xC0_4A_57)
            for round in 0..<24 {
                let count = Int(random.next() % 2_048) + 1
                var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                if round % 3 == 0 {  // starts like a request, then goes wrong
                    bytes = Array("POST /api/counter HTTP/1.1\r\nhost: x\r\n".utf8) + bytes
                }
                let reply = try await sendRaw(port: h.port, bytes: bytes, group: h.group)
                #expect(reply != nil, "round \(round): the connection stayed open")
                #expect(reply?.contains("HTTP/1.1 2") != true, "round \(round): random bytes were answered with success")
            }
            let pipelined = "GET / HTTP/1.1\r\nhost: x\r\n\r\n\u{1}\u{2}junk\r\n\r\n"
            #expect(try await sendRaw(port: h.port, bytes: Array(pipelined.utf8), group: h.group) != nil)
            try await expectHealthy(h)
        }
    }

    /// The balancer still answers, and no backend slot is left taken.
    @Test("an HTTP/1.0 request that expects 100-continue gets no interim response, only its answer")
    func noContinueForHTTP10() async throws {
        try await withHarness { (h: Harness) async throws in
            let request = "POST /p HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"
            let answer = try #require(try await sendRaw(port: h.balancer.listenAddress.port, bytes: Array(request.utf8), group: h.group))
            #expect(answer.hasPrefix("HTTP/1.0 200") || answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(80))")
            #expect(!answer.contains(" 100 Continue"), "\(answer.prefix(80))")
        }
    }

    private func expectHealthy(_ h: Harness) async throws {
        #expect(try await h.get(route: "a").status == 200)
        try await h.waitUntil("every request slot freed") {
            h.balancer.backends().allSatisfy { $0.outstandingRequests == 0 }
        }
        #expect(h.balancer.backends().allSatisfy { $0.outstandingRequests == 0 })
    }
}

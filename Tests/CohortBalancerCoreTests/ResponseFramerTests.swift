@testable import CohortBalancerCore
import NIOCore
import Testing

@Suite("Response framing")
struct ResponseFramerTests {
    enum Seen: Equatable {
        case head(Int)
        case body(String)
        case end(trailers: String?)
    }

    /// Feeds `text` in pieces of `step` bytes and collects the parts, bodies joined.
    static func frame(_ text: String, toHEAD: Bool = false, step: Int = .max, closeAtEnd: Bool = false) throws -> [Seen] {
        var framer = ResponseFramer(maxHeadBytes: 1024)
        framer.expectResponse(toHEAD: toHEAD)
        var seen: [Seen] = []
        func record(_ part: ResponseFramer.Part) {
            switch part {
            case .head(let head): seen.append(.head(head.status))
            case .body(let bytes):
                let text = String(buffer: bytes)
                if case .body(let earlier) = seen.last { seen[seen.count - 1] = .body(earlier + text) } else { seen.append(.body(text)) }
            case .end(let trailers): seen.append(.end(trailers: trailers.map { String(buffer: $0) }))
            }
        }
        var pending = ByteBuffer()
        var input = ByteBuffer(string: text)
        while input.readableBytes > 0 {
            var piece = input.readSlice(length: min(step, input.readableBytes))!
            pending.writeBuffer(&piece)
            while let part = try framer.next(from: &pending) { record(part) }
        }
        if closeAtEnd, let end = framer.connectionClosed() { record(end) }
        return seen
    }

    @Test("a Content-Length body, whole or a byte at a time, ends at its length")
    func contentLength() throws {
        let response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
        for step in [1, 3, .max] {
            #expect(try Self.frame(response, step: step) == [.head(200), .body("hello"), .end(trailers: nil)])
        }
    }

    @Test("a head and trailers split at any byte are found once complete (each read searches only the new bytes)")
    func splitAnywhere() throws {
        let response = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-A: 1\r\n\r\n"
        for step in 1...response.utf8.count {
            #expect(try Self.frame(response, step: step) == [.head(200), .body("ok"), .end(trailers: "X-A: 1\r\n")], "step \(step)")
        }
    }

    @Test("a chunked body is de-chunked, extensions ignored, trailers kept")
    func chunked() throws {
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n"
        for step in [1, 7, .max] {
            #expect(try Self.frame(response, step: step) == [.head(200), .body("hello world"), .end(trailers: "X-Sum: 1\r\n")])
        }
        #expect(try Self.frame("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n") == [.head(200), .end(trailers: nil)])
    }

    @Test("interim 1xx responses are skipped; HEAD, 204 and 304 have no body; no length means until close")
    func bodiless() throws {
        #expect(try Self.frame("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
            == [.head(201), .body("ok"), .end(trailers: nil)])
        #expect(try Self.frame("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", toHEAD: true) == [.head(200), .end(trailers: nil)])
        #expect(try Self.frame("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n") == [.head(304), .end(trailers: nil)])
        #expect(try Self.frame("HTTP/1.0 200 OK\r\n\r\nuntil close", closeAtEnd: true)
            == [.head(200), .body("until close"), .end(trailers: nil)])
    }

    @Test("malformed heads, lengths and chunks are refused", arguments: [
        "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",               // bare LF
        "HTTP/2.0 200 OK\r\n\r\n",                                  // version
        "HTTP/1.1 2000 OK\r\n\r\n",                                 // status
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",                  // name not a token
        "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",              // obs-fold
        "HTTP/1.1 200 OK\r\nX: a\u{0}b\r\n\r\n",                   // NUL in a value
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
    ])
    func malformed(_ response: String) {
        #expect(throws: (any Error).self) { try Self.frame(response) }
    }

    @Test("a 101 is refused whatever its framing: the balancer never forwards Upgrade (found by fuzzing)", arguments: [
        "HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\nab",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n",
    ])
    func unrequestedUpgrade(_ response: String) {
        #expect(throws: ResponseFramer.Failure.unrequestedUpgrade) { try Self.frame(response) }
    }

    @Test("a head over the limit is refused before it is complete")
    func headTooLarge() {
        let response = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 2000)
        #expect(throws: ResponseFramer.Failure.headTooLarge) { try Self.frame(response) }
    }

    static func head(_ text: String) throws -> ResponseHead {
        try ResponseHead(parsing: ByteBuffer(string: text))
    }

    static func client(_ head: ResponseHead, http10: Bool = false, keepAlive: Bool = true,
                       framing: ResponseHead.ClientFraming = .asReceived) -> String {
        String(buffer: head.clientHead(requestIsHTTP10: http10, keepAlive: keepAlive, framing: framing, allocator: ByteBufferAllocator()))
    }

    @Test("a field is found by name, case-insensitively, and only as a whole name")
    func fieldByName() throws {
        let head = try Self.head("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nCOHORT-Draining: true\r\n\r\n")
        #expect(head.hasField(named: "cohort-draining"))
        #expect(head.hasField(named: "content-length"))
        #expect(!head.hasField(named: "cohort-drain"))
        #expect(!head.hasField(named: "true"))
        #expect(try !Self.head("HTTP/1.1 503 Nope\r\nX-Cohort-Draining: 1\r\n\r\n").hasField(named: "cohort-draining"))
    }

    @Test("a head without hop-by-hop fields goes to an HTTP/1.1 keep-alive client as received")
    func verbatim() throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: A=b.n1\r\nContent-Length: 2\r\n\r\n"
        let head = try Self.head(text)
        #expect(head.keepAlive && !head.hasHopByHopFields && head.contentLength == 2)
        #expect(Self.client(head) == text)
        // `Connection: keep-alive` alone says what the balancer would say to such a client.
        let kept = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        let keepAlive = try Self.head(kept)
        #expect(keepAlive.keepAlive && !keepAlive.hasHopByHopFields)
        #expect(Self.client(keepAlive) == kept)
        #expect(Self.client(keepAlive, keepAlive: false) == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nconnection: close\r\n\r\n")
        #expect(Self.client(keepAlive, http10: true) == "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nconnection: keep-alive\r\n\r\n")
        #expect(try Self.head("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n").hasHopByHopFields)
    }

    @Test("hop-by-hop fields and those named in Connection are dropped; framing and Connection are set for the client")
    func rewritten() throws {
        let head = try Self.head("HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
            + "Transfer-Encoding: chunked\r\nX-Kept: 2\r\nTrailer: X-Sum\r\n\r\n")
        #expect(head.isChunked && head.keepAlive && head.hasHopByHopFields)
        #expect(Self.client(head, framing: .chunked) == "HTTP/1.1 200 OK\r\nX-Kept: 2\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(Self.client(head, framing: .length(7)) == "HTTP/1.1 200 OK\r\nX-Kept: 2\r\ncontent-length: 7\r\n\r\n")
        #expect(Self.client(head, http10: true, keepAlive: false, framing: .untilClose)
            == "HTTP/1.0 200 OK\r\nX-Kept: 2\r\nconnection: close\r\n\r\n")
        let plain = try Self.head("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        #expect(Self.client(plain, http10: true) == "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nconnection: keep-alive\r\n\r\n")
        #expect(Self.client(plain, keepAlive: false) == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nconnection: close\r\n\r\n")
    }

    @Test("persistence: HTTP/1.1 unless close, HTTP/1.0 only with keep-alive, never with a close-delimited body")
    func persistence() throws {
        #expect(try Self.head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").keepAlive)
        #expect(try !Self.head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keepAlive)
        #expect(try !Self.head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keepAlive)
        #expect(try Self.head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").keepAlive)
        #expect(try !Self.head("HTTP/1.1 200 OK\r\n\r\n").keepAlive)
    }
}

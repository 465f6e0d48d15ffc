import CohortBalancerCore
import CohortCore
import NIOCore
import Testing

@Suite("Request framing")
struct RequestFramerTests {
    enum Seen: Equatable {
        case head(RequestHead.Method, keepAlive: Bool)
        case body(String)
        case end
    }

    /// Feeds `text` in pieces of `step` bytes and collects the parts, bodies joined.
    static func frame(_ text: String, step: Int = .max, maxHeadBytes: Int = 1024) throws(HTTPFramingError) -> [Seen] {
        var framer = RequestFramer(maxHeadBytes: maxHeadBytes)
        var seen: [Seen] = []
        var pending = ByteBuffer()
        var input = ByteBuffer(string: text)
        while input.readableBytes > 0, var piece = input.readSlice(length: min(step, input.readableBytes)) {
            pending.writeBuffer(&piece)
            while let part = try framer.next(from: &pending) {
                switch part {
                case .head(let head): seen.append(.head(head.method, keepAlive: head.keepAlive))
                case .body(let bytes):
                    let text = String(buffer: bytes)
                    if case .body(let earlier) = seen.last { seen[seen.count - 1] = .body(earlier + text) } else { seen.append(.body(text)) }
                case .end: seen.append(.end)
                }
            }
        }
        return seen
    }

    static func head(_ text: String) throws -> RequestHead {
        try RequestHead(parsing: ByteBuffer(string: text))
    }

    @Test("pipelined requests with Content-Length, chunked and no body, whole or a byte at a time, split where they end")
    func pipelined() throws {
        let requests = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            + "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            + "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA \r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n"
            + "\r\nHEAD /d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            + "OPTIONS * HTTP/1.1\r\nConnection: close\r\n\r\n"
        let expected: [Seen] = [
            .head(.get, keepAlive: true), .end,
            .head(.post, keepAlive: true), .body("hello"), .end,
            .head(.put, keepAlive: true), .body("abc0123456789"), .end,
            .head(.head, keepAlive: true), .end,
            .head(.options, keepAlive: false), .end,
        ]
        for step in [1, 2, 3, 7, 64, Int.max] {
            #expect(try Self.frame(requests, step: step) == expected, "step \(step)")
        }
    }

    @Test("what the balancer reads from a head: framing, persistence, Expect, limits' counts, the session cookie, Via")
    func headFields() throws {
        let head = try Self.head("PATCH /x HTTP/1.1\r\nhost: x\r\ncontent-length: 12\r\nContent-Length: 12\r\nEXPECT: 100-Continue\r\n"
            + "Cookie: a=1; COHORTSESSION=AbCdEfGhIjKlMnOpQrStUv.n2\r\nVia: 1.1 other, 1.1 cohort-7\r\n\r\n")
        #expect(head.method == .other && !head.method.isIdempotent)
        #expect(head.contentLength == 12 && !head.isChunked && head.keepAlive && head.expectsContinue && !head.isHTTP10)
        #expect(head.fieldCount == 6)
        #expect(head.fieldBytes == "hostx".utf8.count + 4 + 2 * ("content-length12".utf8.count + 4) + "EXPECT100-Continue".utf8.count + 4
            + "Cookiea=1; COHORTSESSION=AbCdEfGhIjKlMnOpQrStUv.n2".utf8.count + 4 + "Via1.1 other, 1.1 cohort-7".utf8.count + 4)
        let session = head.session(cookieName: "COHORTSESSION")
        #expect(session?.route == "n2")
        #expect(head.session(cookieName: "OTHER") == nil)
        #expect(head.hasPassed(via: "1.1 cohort-7") && !head.hasPassed(via: "1.1 cohort-8"))

        let twoCookies = try Self.head("GET / HTTP/1.1\r\nCookie: a=1\r\nCookie: COHORTSESSION=AbCdEfGhIjKlMnOpQrStUv.n3\r\n\r\n")
        #expect(twoCookies.session(cookieName: "COHORTSESSION")?.route == "n3")
        #expect(!(try Self.head("GET / HTTP/1.0\r\n\r\n")).keepAlive)
        #expect(!(try Self.head("GET / HTTP/1.1\r\nConnection: Keep-Alive, CLOSE\r\n\r\n")).keepAlive)
    }

    @Test("malformed and ambiguous requests are refused: request smuggling has nothing to work with")
    func refused() throws {
        let cases: [(String, HTTPFramingError)] = [
            ("GARBAGE\r\n\r\n", .malformedHead),
            ("GET /\r\n\r\n", .malformedHead),
            ("GET / HTTP/2.0\r\n\r\n", .malformedHead),
            ("GET / HTTP/1.1 \r\n\r\n", .malformedHead),
            ("GET  / HTTP/1.1\r\n\r\n", .malformedHead),
            ("GET /a b HTTP/1.1\r\n\r\n", .malformedHead),
            ("G(T / HTTP/1.1\r\n\r\n", .malformedHead),
            ("GET / HTTP/1.1\nHost: x\r\n\r\n", .malformedHead),
            ("GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", .malformedHead),
            ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", .malformedHead),
            ("GET / HTTP/1.1\r\n Host: x\r\n\r\n", .malformedHead),
            ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", .malformedHead),
            ("GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n", .malformedHead),
            ("GET / HTTP/1.1\r\nX: a\u{7F}b\r\n\r\n", .malformedHead),
            ("GET / HTTP/1.1\r\n: x\r\n\r\n", .malformedHead),
            ("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", .ambiguousLength),
            ("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc", .ambiguousLength),
            ("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", .ambiguousLength),
            ("POST / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\nabc", .ambiguousLength),
            ("POST / HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\n", .ambiguousLength),
            ("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", .ambiguousLength),
            ("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .ambiguousLength),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", .ambiguousLength),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .ambiguousLength),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", .unsupportedTransferCoding),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", .unsupportedTransferCoding),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", .unsupportedTransferCoding),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", .unsupportedTransferCoding),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: ,\r\n\r\n0\r\n\r\n", .malformedHead),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", .malformedChunk),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n", .malformedChunk),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n0\r\n\r\n", .malformedChunk),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", .malformedChunk),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", .malformedChunk),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", .malformedChunk),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", .malformedChunk),
        ]
        for (request, failure) in cases {
            for step in [1, Int.max] {
                #expect(throws: failure, "\(request.debugDescription), step \(step)") { try Self.frame(request, step: step) }
            }
        }
    }

    @Test("a head or a chunk-size line past its limit is refused before it is all read")
    func limits() throws {
        let long = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 2_000)
        #expect(throws: HTTPFramingError.headTooLarge) { try Self.frame(long, maxHeadBytes: 1024) }
        let trailers = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + String(repeating: "a", count: 2_000)
        #expect(throws: HTTPFramingError.headTooLarge) { try Self.frame(trailers, maxHeadBytes: 1024) }
        let extensions = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + String(repeating: "e", count: 2_000)
        #expect(throws: HTTPFramingError.malformedChunk) { try Self.frame(extensions, step: 100) }
        // Incomplete, within the limits: more bytes are awaited, nothing is refused.
        #expect(try Self.frame("GET / HTTP/1.1\r\nX: aaaa", step: 1).isEmpty)
        #expect(try Self.frame("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc") == [.head(.post, keepAlive: true), .body("abc")])
    }

    @Test("empty lines before a request line are skipped, even a CR and its LF read apart")
    func leadingEmptyLines() throws {
        for step in [1, Int.max] {
            #expect(try Self.frame("\r\n\r\nGET / HTTP/1.1\r\n\r\n", step: step) == [.head(.get, keepAlive: true), .end])
        }
        var framer = RequestFramer()
        var buffer = ByteBuffer(string: "\r")
        #expect(try framer.next(from: &buffer) == nil)
        buffer.writeString("\nGET / HTTP/1.1\r\n\r\n")
        guard case .head(let head)? = try framer.next(from: &buffer) else {
            Issue.record("no head")
            return
        }
        #expect(head.method == .get)
        #expect(framer.isBetweenRequests == false)
    }
}

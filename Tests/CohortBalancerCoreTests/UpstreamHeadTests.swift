import CohortBalancerCore
import NIOCore
import Testing

@Suite("The request head sent upstream")
struct UpstreamHeadTests {
    static func head(_ fields: [(String, String)], method: String = "POST", version: String = "HTTP/1.1") throws -> RequestHead {
        let text = "\(method) /api/counter?x=1 \(version)\r\n" + fields.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n"
        return try RequestHead(parsing: ByteBuffer(string: text))
    }

    /// The request line of a serialized head.
    static func requestLine(_ head: ByteBuffer) -> String {
        String(String(buffer: head).split(separator: "\r\n", omittingEmptySubsequences: false)[0])
    }

    /// The field lines of a serialized head, names lowercased; checks that it ends with an
    /// empty line and parses again as a request head.
    static func fields(_ head: ByteBuffer) -> [String] {
        let text = String(buffer: head)
        #expect(text.hasSuffix("\r\n\r\n"))
        #expect((try? RequestHead(parsing: head)) != nil, "does not parse again: \(text.debugDescription)")
        return text.split(separator: "\r\n").dropFirst().map { line in
            let (name, value) = (line.prefix { $0 != ":" }, line.drop { $0 != ":" })
            return name.lowercased() + value
        }
    }

    @Test("hop-by-hop fields, fields named in Connection, Expect and the client's framing are dropped; the rest keep their order")
    func hopByHop() throws {
        let head = try Self.head([
            ("Host", "example.com"), ("Connection", "keep-alive, X-Secret"), ("Keep-Alive", "timeout=5"),
            ("X-Secret", "s"), ("Cookie", "COHORTSESSION=abc.n1"), ("TE", "trailers"), ("Expect", "100-continue"),
            ("Content-Length", "5"), ("Upgrade", "websocket"), ("Proxy-Authorization", "Basic x"), ("Accept", "*/*"),
        ], version: "HTTP/1.0")
        let upstream = head.upstreamHead(bodyLength: 5, client: .init(ip: "192.0.2.7"), via: "1.1 cohort-1")
        #expect(Self.requestLine(upstream) == "POST /api/counter?x=1 HTTP/1.1")
        #expect(Self.fields(upstream) == [
            "host: example.com", "cookie: COHORTSESSION=abc.n1", "accept: */*", "content-length: 5",
            "x-forwarded-for: 192.0.2.7", "x-forwarded-proto: http", "forwarded: for=192.0.2.7;proto=http",
            "via: 1.1 cohort-1",
        ])
    }

    @Test("an earlier proxy's X-Forwarded-For is extended and its X-Forwarded-Proto replaced; IPv6 is quoted in Forwarded")
    func forwarding() throws {
        let head = try Self.head([
            ("X-Forwarded-For", "10.0.0.1"), ("x-forwarded-for", "10.0.0.2"), ("X-Forwarded-Proto", "https"),
            ("Forwarded", "for=10.0.0.1"),
        ], method: "GET")
        let upstream = head.upstreamHead(bodyLength: 0, client: .init(ip: "2001:db8::1"))
        #expect(Self.fields(upstream) == [
            "forwarded: for=10.0.0.1", "x-forwarded-for: 10.0.0.1, 10.0.0.2, 2001:db8::1", "x-forwarded-proto: http",
            "forwarded: for=\"[2001:db8::1]\";proto=http",
        ])
    }

    @Test("a trusted proxy's X-Forwarded-Proto: https (a TLS terminator in front) is passed on; anything else is http")
    func trustedProxyProto() throws {
        let terminator = ForwardingClient(ip: "10.0.0.5", isTrustedProxy: true)
        let overTLS = try Self.head([("X-Forwarded-Proto", "HTTPS")], method: "GET").upstreamHead(bodyLength: 0, client: terminator)
        #expect(Self.fields(overTLS).suffix(2) == ["x-forwarded-proto: https", "forwarded: for=10.0.0.5;proto=https"])
        for value in ["http", "https, http", "ftp"] {
            let other = try Self.head([("X-Forwarded-Proto", value)], method: "GET").upstreamHead(bodyLength: 0, client: terminator)
            #expect(Self.fields(other).suffix(2) == ["x-forwarded-proto: http", "forwarded: for=10.0.0.5;proto=http"], "\(value)")
        }
        let untrusted = try Self.head([("X-Forwarded-Proto", "https")], method: "GET")
            .upstreamHead(bodyLength: 0, client: .init(ip: "10.0.0.5"))
        #expect(Self.fields(untrusted).suffix(2) == ["x-forwarded-proto: http", "forwarded: for=10.0.0.5;proto=http"])
    }

    @Test("the body's framing: its length, none for an empty body without one, chunked when unknown")
    func framing() throws {
        let unknown = try Self.head([("Transfer-Encoding", "chunked")]).upstreamHead(bodyLength: nil, client: .init(ip: nil))
        #expect(Self.fields(unknown) == [
            "transfer-encoding: chunked", "x-forwarded-for: unknown", "x-forwarded-proto: http", "forwarded: for=unknown;proto=http",
        ])
        let declaredEmpty = try Self.head([("Content-Length", "0")]).upstreamHead(bodyLength: 0, client: .init(ip: "127.0.0.1"))
        #expect(Self.fields(declaredEmpty).filter { $0.hasPrefix("content-length") } == ["content-length: 0"])
        let none = try Self.head([], method: "GET").upstreamHead(bodyLength: 0, client: .init(ip: "127.0.0.1"))
        #expect(!Self.fields(none).contains { $0.hasPrefix("content-length") || $0.hasPrefix("transfer-encoding") })
        // A chunked body that was buffered goes with its length.
        let buffered = try Self.head([("Transfer-Encoding", "chunked")]).upstreamHead(bodyLength: 7, client: .init(ip: nil))
        #expect(Self.fields(buffered).filter { $0.hasPrefix("content-length") || $0.hasPrefix("transfer-encoding") }
            == ["content-length: 7"])
    }

    @Test("a request id is appended unless the client sent one")
    func requestID() throws {
        let fresh = try Self.head([("Host", "x")]).upstreamHead(bodyLength: 0, client: .init(ip: nil), requestID: RequestID(prefix: "0123456789abcdef-", serial: 1))
        #expect(Self.fields(fresh).last == "cohort-request-id: 0123456789abcdef-1")
        let given = try Self.head([("Cohort-Request-Id", "client-chosen-id-0001")])
            .upstreamHead(bodyLength: 0, client: .init(ip: nil), requestID: RequestID(prefix: "0123456789abcdef-", serial: 2))
        #expect(Self.fields(given).filter { $0.hasPrefix("cohort-request-id") } == ["cohort-request-id: client-chosen-id-0001"])
        // A client's id it also names in Connection is hop-by-hop, so it is dropped: the
        // request must still go upstream with an id (ours), or a retry could apply it twice.
        let hopByHop = try Self.head([("Connection", "Cohort-Request-Id"), ("Cohort-Request-Id", "client-chosen-id-0001")])
            .upstreamHead(bodyLength: 0, client: .init(ip: nil), requestID: RequestID(prefix: "0123456789abcdef-", serial: 3))
        #expect(Self.fields(hopByHop).filter { $0.hasPrefix("cohort-request-id") } == ["cohort-request-id: 0123456789abcdef-3"])
    }

    @Test("a client's request id a node would ignore (malformed, too short or long, or two of them) is replaced by the balancer's")
    func unusableClientRequestID() throws {
        let ours = try #require(RequestID(prefix: "0123456789abcdef-", serial: 4))
        let unusable: [[(String, String)]] = [
            [("Cohort-Request-Id", "req:42-0123456789abcdef")],
            [("Cohort-Request-Id", "too-short")],
            [("Cohort-Request-Id", String(repeating: "a", count: 65))],
            [("Cohort-Request-Id", "client-chosen-id-0001"), ("Cohort-Request-Id", "client-chosen-id-0002")],
        ]
        for fields in unusable {
            let head = try Self.head(fields).upstreamHead(bodyLength: 0, client: .init(ip: nil), requestID: ours)
            #expect(Self.fields(head).filter { $0.hasPrefix("cohort-request-id") } == ["cohort-request-id: 0123456789abcdef-4"], "\(fields)")
            // Without an id of the balancer's (a GET, or request ids off), none goes upstream.
            let bare = try Self.head(fields).upstreamHead(bodyLength: 0, client: .init(ip: nil))
            #expect(!Self.fields(bare).contains { $0.hasPrefix("cohort-request-id") }, "\(fields)")
        }
        let longest = String(repeating: "a", count: 64)
        let kept = try Self.head([("Cohort-Request-Id", longest)]).upstreamHead(bodyLength: 0, client: .init(ip: nil), requestID: ours)
        #expect(Self.fields(kept).filter { $0.hasPrefix("cohort-request-id") } == ["cohort-request-id: \(longest)"])
    }

    @Test("a request id is written as its text: prefix, then the serial in lowercase hex without leading zeros")
    func requestIDBytes() throws {
        for serial: UInt64 in [0, 1, 0xF, 0x10, 0xABC, 0x1234_5678_9ABC_DEF0, .max] {
            let id = try #require(RequestID(prefix: "0123456789abcdef-", serial: serial))
            var buffer = ByteBuffer()
            id.write(to: &buffer)
            #expect(String(buffer: buffer) == "0123456789abcdef-" + String(serial, radix: 16))
            #expect(id.description == String(buffer: buffer))
        }
        for prefix in ["", "has space-", "quote\"-", String(repeating: "a", count: 48), "é-"] {
            #expect(RequestID(prefix: prefix, serial: 1) == nil, "\(prefix)")
        }
    }

    @Test("fields the balancer copies keep their bytes; the request target is copied as sent")
    func verbatim() throws {
        let requestLine: [UInt8] = Array("DELETE /a/%7Eb?q=".utf8) + [0xC3, 0xA9] + Array("&r=1 HTTP/1.1\r\n".utf8)
        let fields = "Host:example.com\r\nX-Odd-Name_1:   spaced value  \r\n"
        let head = try RequestHead(parsing: ByteBuffer(bytes: requestLine + Array((fields + "\r\n").utf8)))
        #expect(head.method == .delete && head.method.isIdempotent)
        let upstream = head.upstreamHead(bodyLength: 0, client: .init(ip: "127.0.0.1"))
        #expect(Array(upstream.readableBytesView.prefix(requestLine.count)) == requestLine)
        #expect(String(buffer: upstream).contains("\r\n" + fields))
    }
}

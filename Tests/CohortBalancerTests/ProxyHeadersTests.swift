@testable import CohortBalancer
import CohortCore
import NIOCore
import NIOHTTP1
import Testing

@Suite("Proxy headers")
struct ProxyHeadersTests {
    @Test("request ids are distinct and pass the node's request-id rules (16-64 token characters)")
    func requestIDs() {
        let ids = (0..<10_000).map { _ in ProxyHeaders.makeRequestID() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) + ids.suffix(100) {
            #expect((16...64).contains(id.utf8.count))
            #expect(id.utf8.allSatisfy(SessionID.isTokenByte))
        }
    }
}

@Suite("The request head sent upstream")
struct UpstreamHeadTests {
    static func head(_ fields: [(String, String)], method: HTTPMethod = .POST, version: HTTPVersion = .http1_1) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: "/api/counter?x=1", headers: HTTPHeaders(fields))
    }

    /// The request line of a serialized head.
    static func requestLine(_ head: ByteBuffer) -> String {
        String(String(buffer: head).split(separator: "\r\n", omittingEmptySubsequences: false)[0])
    }

    /// The field lines of a serialized head, names lowercased; checks that it ends with an empty line.
    static func fields(_ head: ByteBuffer) -> [String] {
        let text = String(buffer: head)
        #expect(text.hasSuffix("\r\n\r\n"))
        return text.split(separator: "\r\n").dropFirst().map { line in
            let (name, value) = (line.prefix { $0 != ":" }, line.drop { $0 != ":" })
            return name.lowercased() + value
        }
    }

    @Test("hop-by-hop fields, fields named in Connection, Expect and the client's framing are dropped; the rest keep their order")
    func hopByHop() {
        let head = Self.head([
            ("Host", "example.com"), ("Connection", "keep-alive, X-Secret"), ("Keep-Alive", "timeout=5"),
            ("X-Secret", "s"), ("Cookie", "COHORTSESSION=abc.n1"), ("TE", "trailers"), ("Expect", "100-continue"),
            ("Content-Length", "5"), ("Upgrade", "websocket"), ("Proxy-Authorization", "Basic x"), ("Accept", "*/*"),
        ], version: .http1_0)
        let upstream = ProxyHeaders.upstreamHead(from: head, bodyLength: 5, client: .init(ip: "192.0.2.7"), via: "1.1 cohort-1")
        #expect(Self.requestLine(upstream) == "POST /api/counter?x=1 HTTP/1.1")
        #expect(Self.fields(upstream) == [
            "host: example.com", "cookie: COHORTSESSION=abc.n1", "accept: */*", "content-length: 5",
            "x-forwarded-for: 192.0.2.7", "x-forwarded-proto: http", "forwarded: for=192.0.2.7;proto=http",
            "via: 1.1 cohort-1",
        ])
    }

    @Test("an earlier proxy's X-Forwarded-For is extended and its X-Forwarded-Proto replaced; IPv6 is quoted in Forwarded")
    func forwarding() {
        let head = Self.head([
            ("X-Forwarded-For", "10.0.0.1"), ("x-forwarded-for", "10.0.0.2"), ("X-Forwarded-Proto", "https"),
            ("Forwarded", "for=10.0.0.1"),
        ], method: .GET)
        let upstream = ProxyHeaders.upstreamHead(from: head, bodyLength: 0, client: .init(ip: "2001:db8::1"))
        #expect(Self.fields(upstream) == [
            "forwarded: for=10.0.0.1", "x-forwarded-for: 10.0.0.1, 10.0.0.2, 2001:db8::1", "x-forwarded-proto: http",
            "forwarded: for=\"[2001:db8::1]\";proto=http",
        ])
    }

    @Test("the body's framing: its length, none for an empty body without one, chunked when unknown")
    func framing() {
        let unknown = ProxyHeaders.upstreamHead(
            from: Self.head([("Transfer-Encoding", "chunked")]), bodyLength: nil, client: .init(ip: nil))
        #expect(Self.fields(unknown) == [
            "transfer-encoding: chunked", "x-forwarded-for: unknown", "x-forwarded-proto: http", "forwarded: for=unknown;proto=http",
        ])
        let declaredEmpty = ProxyHeaders.upstreamHead(from: Self.head([("Content-Length", "0")]), bodyLength: 0, client: .init(ip: "127.0.0.1"))
        #expect(Self.fields(declaredEmpty).filter { $0.hasPrefix("content-length") } == ["content-length: 0"])
        let none = ProxyHeaders.upstreamHead(from: Self.head([], method: .GET), bodyLength: 0, client: .init(ip: "127.0.0.1"))
        #expect(!Self.fields(none).contains { $0.hasPrefix("content-length") || $0.hasPrefix("transfer-encoding") })
    }

    @Test("a request id is appended unless the client sent one")
    func requestID() {
        let fresh = ProxyHeaders.upstreamHead(from: Self.head([("Host", "x")]), bodyLength: 0, client: .init(ip: nil), requestID: "0123456789abcdef-1")
        #expect(Self.fields(fresh).last == "cohort-request-id: 0123456789abcdef-1")
        let given = ProxyHeaders.upstreamHead(from: Self.head([("Cohort-Request-Id", "client-chosen-id-0001")]), bodyLength: 0,
                                              client: .init(ip: nil), requestID: "0123456789abcdef-2")
        #expect(Self.fields(given).filter { $0.hasPrefix("cohort-request-id") } == ["cohort-request-id: client-chosen-id-0001"])
    }
}

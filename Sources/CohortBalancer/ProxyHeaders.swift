import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Request header rewriting between client and backend (RFC 9110 §7.6.1, RFC 7239); the
/// response's is `ResponseHead.clientHead`.
///
/// Every request head the balancer writes is well-formed without NIO's outbound header
/// validation (which it leaves out): forwarded names and values come from NIO's HTTP
/// parser, which rejects what is not a token or contains CR, LF or NUL, and the fields the
/// balancer adds are built from digits, hex, fixed text and the peer's IP address.
enum ProxyHeaders {
    /// Hop-by-hop headers: meaningful for one connection only, never forwarded.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
        "upgrade", "proxy-authenticate", "proxy-authorization",
    ]

    /// The field names a `Connection` header lists (lowercase): hop-by-hop for this
    /// connection only (RFC 9110 §7.6.1). Usually none.
    static func namesListed(inConnectionOf headers: HTTPHeaders) -> Set<String> {
        var names: Set<String> = []
        for (name, value) in headers where isName(name, "connection") {
            for token in value.split(separator: ",") { names.insert(token.trimmingSpaces.lowercased()) }
        }
        return names
    }

    /// `true` when a request head is over the configured limits (431).
    static func exceedsLimits(_ headers: HTTPHeaders, maxBytes: Int, maxCount: Int) -> Bool {
        var count = 0
        var bytes = 0
        for (name, value) in headers {
            count += 1
            bytes += name.utf8.count + value.utf8.count + 4
            if count > maxCount || bytes > maxBytes { return true }
        }
        return false
    }

    /// Header that makes a non-idempotent request safe to retry on a Cohort node.
    static let requestIDHeader = "Cohort-Request-Id"

    /// A new request id, unique among every balancer's: `<64 random bits>-<counter>` in
    /// hex (at least 16 characters). The random part is drawn once per process from the
    /// system CSPRNG, so an id costs no system call; ids need uniqueness, not secrecy (a
    /// recorded response is only ever replayed to the session that holds it).
    static func makeRequestID() -> String {
        let serial = requestSerial.withLockedValue { serial in
            serial &+= 1
            return serial
        }
        return requestIDPrefix + String(serial, radix: 16)
    }

    private static let requestIDPrefix: String = {
        var generator = SystemRandomNumberGenerator()
        let random = String(generator.next(), radix: 16)
        return String(repeating: "0", count: 16 - random.count) + random + "-"
    }()

    private static let requestSerial = NIOLockedValueBox<UInt64>(0)

    /// A `Via` entry naming this balancer process: `1.1 cohort-<64 random bits>`.
    static func makeVia() -> String {
        var generator = SystemRandomNumberGenerator()
        return "1.1 cohort-" + String(generator.next(), radix: 16)
    }

    /// Whether `headers` carry `via` in a `Via` header (the request came round a loop).
    static func hasPassed(_ headers: HTTPHeaders, via: String) -> Bool {
        headers["via"].contains { value in value.split(separator: ",").contains { $0.trimmingSpaces == via } }
    }

    /// The client as the forwarding headers name it; made once per client connection.
    struct Client {
        /// Its entry in `X-Forwarded-For`: the IP address, or `unknown`.
        let address: String
        /// Its `Forwarded` field: `for=<address>;proto=http`, an IPv6 address quoted in brackets (RFC 7239).
        let forwarded: String

        init(ip: String?) {
            address = ip ?? "unknown"
            let node = address.contains(":") ? "\"[\(address)]\"" : address
            forwarded = "for=\(node);proto=http"
        }
    }

    /// Fields never copied from the client's head: the hop-by-hop ones, `Expect` (the
    /// balancer answers it), the client's framing (set anew) and `X-Forwarded-Proto`
    /// (replaced). Lowercase.
    private static let notForwarded = Array(hopByHop) + ["expect", "content-length", "x-forwarded-proto"]

    /// The request head as sent upstream, as bytes: HTTP/1.1, keep-alive, hop-by-hop
    /// headers (and those named in `Connection`) removed, `Content-Length` set to the body
    /// length (`nil`: unknown, sent chunked), and the forwarding headers appended
    /// (`X-Forwarded-For` extending an earlier proxy's, `X-Forwarded-Proto: http`,
    /// `Forwarded: for=...;proto=http`, `Via`), then `Cohort-Request-Id: requestID` unless
    /// the client sent one. The other fields keep their order and spelling. Written in one
    /// pass into one buffer (no header strings are made).
    static func upstreamHead(from head: HTTPRequestHead, bodyLength: Int?, client: Client, via: String? = nil,
                             requestID: String? = nil, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        let source = head.headers
        var hadBody = false
        var hasConnection = false
        var capacity = 320 + head.uri.utf8.count  // room for the fields added below
        for (name, value) in source {
            if isName(name, "content-length") || isName(name, "transfer-encoding") { hadBody = true }
            if isName(name, "connection") { hasConnection = true }
            capacity += name.utf8.count + value.utf8.count + 4
        }
        // A set, so a long list costs one lookup per field.
        let namedInConnection = hasConnection ? namesListed(inConnectionOf: source) : []
        var out = allocator.buffer(capacity: capacity)
        out.writeString(head.method.rawValue)
        out.writeStaticString(" ")
        out.writeString(head.uri)
        out.writeStaticString(" HTTP/1.1\r\n")
        var forwardedFor = ""
        var hasRequestID = false
        for (name, value) in source {
            if isName(name, "x-forwarded-for") {
                forwardedFor += forwardedFor.isEmpty ? value : ", " + value
            } else if !notForwarded.contains(where: { isName(name, $0) })
                && (namedInConnection.isEmpty || !namedInConnection.contains(name.lowercased())) {
                if requestID != nil && isName(name, "cohort-request-id") { hasRequestID = true }
                writeField(name, value, into: &out)
            }
        }
        if let bodyLength {
            if hadBody || bodyLength > 0 { writeField("content-length", String(bodyLength), into: &out) }
        } else {
            out.writeStaticString("transfer-encoding: chunked\r\n")
        }
        writeField("x-forwarded-for", forwardedFor.isEmpty ? client.address : forwardedFor + ", " + client.address, into: &out)
        out.writeStaticString("x-forwarded-proto: http\r\n")
        writeField("forwarded", client.forwarded, into: &out)
        if let via { writeField("via", via, into: &out) }
        if let requestID, !hasRequestID { writeField(requestIDHeader, requestID, into: &out) }
        out.writeStaticString("\r\n")
        return out
    }

    private static func writeField(_ name: String, _ value: String, into out: inout ByteBuffer) {
        out.writeString(name)
        out.writeStaticString(": ")
        out.writeString(value)
        out.writeStaticString("\r\n")
    }

    /// Whether the field name `name` is `lowercase` (ASCII case-insensitive), without
    /// making a lowercased copy.
    static func isName(_ name: String, _ lowercase: String) -> Bool {
        name.utf8.count == lowercase.utf8.count
            && zip(name.utf8, lowercase.utf8).allSatisfy { byte, expected in
                byte == expected || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte + 0x20 == expected)
            }
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}

import CohortCore
import NIOCore

/// A client's request head as received: its bytes, validated, and what the balancer needs
/// to know of them (method, framing, persistence, `Expect`, the session cookie), found in
/// place without making header strings.
///
/// Strict (RFC 9112 §3–§6), since the balancer decides where one request ends and the next
/// begins on a connection a client controls: request line `method SP target SP
/// HTTP/1.0|HTTP/1.1` with CRLF line ends, field names are tokens, values hold no control
/// characters, no obs-fold, one consistent `Content-Length`, a `Transfer-Encoding` only of
/// `chunked` (anything else is `unsupportedTransferCoding`, 501), never both, and none in
/// an HTTP/1.0 request. The body is always re-framed upstream (see `upstreamHead`), so a
/// backend never has to agree with the client's framing.
public struct RequestHead {
    /// The methods the proxy treats specially; the rest are forwarded as they are.
    public enum Method: Sendable, Equatable {
        case get, head, post, put, delete, options, other

        /// Retried after the request was sent (RFC 9110 §9.2.2).
        public var isIdempotent: Bool {
            switch self {
            case .get, .head, .put, .delete, .options: return true
            case .post, .other: return false
            }
        }
    }

    /// The whole head, request line to the empty line.
    public let bytes: ByteBuffer
    public let method: Method
    public let isHTTP10: Bool
    /// The declared body length; nil when chunked or absent.
    public let contentLength: Int?
    /// The body is chunked (`Transfer-Encoding: chunked`).
    public let isChunked: Bool
    /// The client keeps the connection open after this request (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    public let keepAlive: Bool
    /// `Expect: 100-continue`: the balancer answers it before reading the body.
    public let expectsContinue: Bool
    /// Number of field lines.
    public let fieldCount: Int
    /// Σ (name + value + 4) over the field lines: what `--max-header-bytes` limits.
    public let fieldBytes: Int
    /// Offset of the end of the request target within `bytes` (the space before the version).
    private let targetEnd: Int
    /// Offset of the first field line within `bytes`.
    private let fieldsStart: Int
    /// The value range of the first `Cookie` field, and how many there are.
    private let firstCookie: Range<Int>?
    private let cookieCount: Int
    private let hasVia: Bool
    /// What the `Connection` fields say.
    private let connection: ConnectionOptions

    /// Parses and validates a head: `bytes` from the request line to the empty line.
    public init(parsing bytes: ByteBuffer) throws(HTTPFramingError) {
        self.bytes = bytes
        let start = bytes.readerIndex
        let end = bytes.writerIndex - 2  // the empty line
        guard let line = Self.requestLine(bytes), line.fieldsStart <= end else { throw .malformedHead }
        method = line.method
        isHTTP10 = line.isHTTP10
        targetEnd = line.targetEnd - start
        fieldsStart = line.fieldsStart - start

        var contentLength: Int?
        var transferEncodings = 0
        var codings = 0
        var chunked = false
        var connection = ConnectionOptions()
        var expectsContinue = false
        var fieldCount = 0
        var fieldBytes = 0
        var firstCookie: Range<Int>?
        var cookieCount = 0
        var hasVia = false
        var index = line.fieldsStart
        while index < end {
            guard let field = HTTPSyntax.fieldLine(in: bytes, at: index, end: end) else { throw .malformedHead }
            index = field.next
            fieldCount += 1
            fieldBytes += field.name.count + field.value.count + 4
            guard let kind = RequestField(nameAt: field.name, in: bytes) else { continue }
            switch kind {
            case .contentLength:
                guard let value = HTTPSyntax.decimal(bytes, field.value), contentLength == nil || contentLength == value else {
                    throw .ambiguousLength
                }
                contentLength = value
            case .transferEncoding:
                transferEncodings += 1
                HTTPSyntax.forEachToken(bytes, field.value) { token in
                    codings += 1
                    chunked = HTTPSyntax.token(bytes, token, is: "chunked")
                }
            case .connection:
                connection.add(bytes, value: field.value)
            case .expect:
                expectsContinue = expectsContinue || HTTPSyntax.token(bytes, field.value, is: "100-continue")
            case .cookie:
                if firstCookie == nil { firstCookie = field.value }
                cookieCount += 1
            case .via:
                hasVia = true
            case .hopByHop, .xForwardedFor, .xForwardedProto, .requestID:
                break
            }
        }
        if transferEncodings > 0 {
            guard codings > 0 else { throw .malformedHead }
            guard codings == 1, chunked else { throw .unsupportedTransferCoding }
            // Both framings, or chunked in HTTP/1.0: the length is ambiguous (RFC 9112 §6.1, §6.3).
            guard contentLength == nil, !isHTTP10 else { throw .ambiguousLength }
        }
        self.contentLength = contentLength
        self.isChunked = transferEncodings > 0
        self.keepAlive = !connection.close && (isHTTP10 ? connection.keepAlive : true)
        self.expectsContinue = expectsContinue
        self.fieldCount = fieldCount
        self.fieldBytes = fieldBytes
        self.firstCookie = firstCookie
        self.cookieCount = cookieCount
        self.hasVia = hasVia
        self.connection = connection
    }

    /// `method SP request-target SP HTTP/1.x CRLF` at the start of `bytes`: the method, the
    /// version, the index of the space after the target and the index past the CRLF.
    private static func requestLine(_ bytes: ByteBuffer) -> (method: Method, isHTTP10: Bool, targetEnd: Int, fieldsStart: Int)? {
        bytes.withUnsafeReadableBytes { raw -> (method: Method, isHTTP10: Bool, targetEnd: Int, fieldsStart: Int)? in
            var i = 0
            while i < raw.count, HTTPSyntax.isTokenByte(raw[i]) { i += 1 }
            guard i > 0, i < raw.count, raw[i] == 0x20 else { return nil }
            let method = Self.method(UnsafeRawBufferPointer(rebasing: raw[0..<i]))
            i += 1
            let targetStart = i
            // Any visible byte (obs-text included); never a space, CR, LF or other control.
            while i < raw.count, raw[i] > 0x20, raw[i] != 0x7F { i += 1 }
            guard i > targetStart, i + 10 <= raw.count, raw[i] == 0x20 else { return nil }
            let targetEnd = i
            let version = UnsafeRawBufferPointer(rebasing: raw[(i + 1)..<(i + 9)])
            guard version.starts(with: "HTTP/1.".utf8), version[7] == UInt8(ascii: "0") || version[7] == UInt8(ascii: "1"),
                  raw[i + 9] == 0x0D, i + 10 < raw.count, raw[i + 10] == 0x0A
            else { return nil }
            let base = bytes.readerIndex
            return (method, version[7] == UInt8(ascii: "0"), base + targetEnd, base + i + 11)
        }
    }

    private static func method(_ name: UnsafeRawBufferPointer) -> Method {
        switch name.count {
        case 3:
            if name.elementsEqual("GET".utf8) { return .get }
            if name.elementsEqual("PUT".utf8) { return .put }
        case 4:
            if name.elementsEqual("POST".utf8) { return .post }
            if name.elementsEqual("HEAD".utf8) { return .head }
        case 6:
            if name.elementsEqual("DELETE".utf8) { return .delete }
        case 7:
            if name.elementsEqual("OPTIONS".utf8) { return .options }
        default:
            break
        }
        return .other
    }

    // MARK: What the balancer reads

    /// The session named by the `cookieName` cookie, if any `Cookie` field carries a valid one.
    public func session(cookieName: String) -> SessionID? {
        guard let firstCookie else { return nil }
        if cookieCount == 1 { return session(in: firstCookie, cookieName: cookieName) }
        var found: SessionID?
        forEachField { kind, _, value in
            guard found == nil, kind == .cookie else { return }
            found = session(in: value, cookieName: cookieName)
        }
        return found
    }

    private func session(in value: Range<Int>, cookieName: String) -> SessionID? {
        bytes.withUnsafeReadableBytes { raw in
            let start = value.lowerBound - bytes.readerIndex
            let field = UnsafeRawBufferPointer(rebasing: raw[start..<(start + value.count)])
            return SessionCookie.sessionID(fromCookieHeaderBytes: field.bindMemory(to: UInt8.self), cookieName: cookieName)
        }
    }

    /// Whether a `Via` field lists `via` (the request came round a loop through this balancer).
    public func hasPassed(via: String) -> Bool {
        guard hasVia else { return false }
        var passed = false
        let wanted = Array(via.utf8)
        forEachField { kind, _, value in
            guard !passed, kind == .via else { return }
            HTTPSyntax.forEachToken(bytes, value) { token in
                if token.count == wanted.count, bytes.getBytes(at: token.lowerBound, length: token.count) == wanted { passed = true }
            }
        }
        return passed
    }

    /// Calls `body` with each field line's kind (nil: a field the balancer copies as is),
    /// name range and value range.
    func forEachField(_ body: (RequestField?, Range<Int>, Range<Int>) -> Void) {
        forEachLine { kind, name, value, _ in body(kind, name, value) }
    }

    /// Like `forEachField`, with the range of the whole line, CRLF included.
    func forEachLine(_ body: (RequestField?, Range<Int>, Range<Int>, Range<Int>) -> Void) {
        let end = bytes.writerIndex - 2
        var index = bytes.readerIndex + fieldsStart
        while index < end, let line = HTTPSyntax.fieldLine(in: bytes, at: index, end: end) {
            body(RequestField(nameAt: line.name, in: bytes), line.name, line.value, index..<line.next)
            index = line.next
        }
    }

    /// The bytes from the method to the end of the request target.
    var methodAndTarget: ByteBuffer? {
        bytes.getSlice(at: bytes.readerIndex, length: targetEnd)
    }

    /// Whether the field named at `range` is listed in `Connection` (so hop-by-hop).
    func isNamedInConnection(_ range: Range<Int>) -> Bool {
        connection.lists(nameAt: range, in: bytes)
    }
}

/// The request fields the balancer reads, drops or replaces, recognised from their name's
/// bytes (ASCII case-insensitive) without making a string.
enum RequestField: Equatable {
    case contentLength
    case transferEncoding
    case connection
    /// keep-alive, proxy-connection, te, trailer, upgrade, proxy-authenticate, proxy-authorization
    case hopByHop
    case expect
    case cookie
    case via
    case xForwardedFor
    case xForwardedProto
    /// `Cohort-Request-Id`
    case requestID

    init?(nameAt range: Range<Int>, in bytes: ByteBuffer) {
        // Lengths of the names below.
        switch range.count {
        case 2, 3, 6, 7, 10, 14, 15, 16, 17, 18, 19: break
        default: return nil
        }
        guard let found = HTTPSyntax.lookup(nameAt: range, in: bytes, among: Self.names) else { return nil }
        self = found
    }

    private static let names: [([UInt8], RequestField)] = [
        (Array("cookie".utf8), .cookie), (Array("content-length".utf8), .contentLength),
        (Array("transfer-encoding".utf8), .transferEncoding), (Array("connection".utf8), .connection),
        (Array("expect".utf8), .expect), (Array("via".utf8), .via), (Array("x-forwarded-for".utf8), .xForwardedFor),
        (Array("x-forwarded-proto".utf8), .xForwardedProto), (Array("cohort-request-id".utf8), .requestID),
        (Array("keep-alive".utf8), .hopByHop), (Array("proxy-connection".utf8), .hopByHop), (Array("te".utf8), .hopByHop),
        (Array("trailer".utf8), .hopByHop), (Array("upgrade".utf8), .hopByHop), (Array("proxy-authenticate".utf8), .hopByHop),
        (Array("proxy-authorization".utf8), .hopByHop),
    ]
}

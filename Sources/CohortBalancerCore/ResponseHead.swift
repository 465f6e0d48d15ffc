import NIOCore

/// A backend's response head as received: its bytes, validated, and what the proxy needs
/// to know of them (status, framing, persistence, whether any field is hop-by-hop).
public struct ResponseHead {
    /// The whole head, status line to the empty line.
    public let bytes: ByteBuffer
    public let status: Int
    public let isHTTP10: Bool
    public let contentLength: Int?
    /// The last transfer coding is `chunked`.
    public let isChunked: Bool
    /// The backend keeps the connection open after this response (its framing permitting).
    public let keepAlive: Bool
    /// A hop-by-hop field (or one named in `Connection`) is present: the head must be
    /// rewritten before it goes to the client. `Connection: keep-alive` alone does not
    /// count: it says to a persistent HTTP/1.1 client what the balancer would say itself
    /// (any other client gets a rewritten head anyway).
    public let hasHopByHopFields: Bool
    /// Offset of the first field line within `bytes` (just past the status line).
    private let fieldsStart: Int
    /// What the `Connection` fields say.
    private let connection: ConnectionOptions

    /// Parses and validates a head: `bytes` from the status line to the empty line.
    public init(parsing bytes: ByteBuffer) throws(HTTPFramingError) {
        self.bytes = bytes
        let start = bytes.readerIndex
        let end = bytes.writerIndex - 2  // the empty line
        // Status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF
        guard let statusLine = Self.statusLine(bytes) else { throw HTTPFramingError.malformedHead }
        isHTTP10 = statusLine.isHTTP10
        status = statusLine.status
        var index = start + 12
        guard let next = bytes.getInteger(at: index, as: UInt8.self), next == 0x20 || next == 0x0D else {
            throw HTTPFramingError.malformedHead
        }
        // Reason phrase: SP then HTAB / SP / VCHAR / obs-text.
        while let byte = bytes.getInteger(at: index, as: UInt8.self), byte != 0x0D {
            guard byte == 0x09 || byte >= 0x20 && byte != 0x7F else { throw HTTPFramingError.malformedHead }
            index += 1
        }
        guard bytes.getInteger(at: index + 1, as: UInt8.self) == 0x0A, index + 2 <= end else { throw HTTPFramingError.malformedHead }
        fieldsStart = index + 2 - start

        var contentLength: Int?
        var transferEncodings = 0
        var chunked = false
        var connection = ConnectionOptions()
        var hopByHop = false
        index += 2
        while index < end {
            guard let line = HTTPSyntax.fieldLine(in: bytes, at: index, end: end) else { throw HTTPFramingError.malformedHead }
            index = line.next
            guard let field = HopByHopField(nameAt: line.name, in: bytes) else { continue }
            // Content-Length is end-to-end: only read here.
            if field != .contentLength && field != .connection { hopByHop = true }
            switch field {
            case .contentLength:
                guard let value = HTTPSyntax.decimal(bytes, line.value), contentLength == nil || contentLength == value else {
                    throw HTTPFramingError.ambiguousLength
                }
                contentLength = value
            case .transferEncoding:
                transferEncodings += 1
                var last: Range<Int>?
                HTTPSyntax.forEachToken(bytes, line.value) { last = $0 }
                chunked = last.map { HTTPSyntax.token(bytes, $0, is: "chunked") } ?? false
            case .connection:
                connection.add(bytes, value: line.value)
                if connection.saysMoreThanKeepAlive { hopByHop = true }
            case .other:
                break
            }
        }
        if transferEncodings > 0 && contentLength != nil { throw HTTPFramingError.ambiguousLength }
        self.contentLength = contentLength
        self.isChunked = chunked && transferEncodings > 0
        // A close-delimited body (no length, not chunked) ends the connection.
        let framed = contentLength != nil || isChunked
        self.keepAlive = !connection.close && (isHTTP10 ? connection.keepAlive : true) && (framed || status == 204 || status == 304)
        self.hasHopByHopFields = hopByHop
        self.connection = connection
    }

    /// Whether a field named `lowercaseName` is present (names compared ASCII
    /// case-insensitively).
    public func hasField(named lowercaseName: String) -> Bool {
        let names = [(Array(lowercaseName.utf8), true)]
        var index = bytes.readerIndex + fieldsStart
        let end = bytes.writerIndex - 2
        while index < end, let line = HTTPSyntax.fieldLine(in: bytes, at: index, end: end) {
            if HTTPSyntax.lookup(nameAt: line.name, in: bytes, among: names) != nil { return true }
            index = line.next
        }
        return false
    }

    /// `HTTP/1.x SP 3DIGIT` at the start of `bytes`, read in place.
    private static func statusLine(_ bytes: ByteBuffer) -> (isHTTP10: Bool, status: Int)? {
        bytes.withUnsafeReadableBytes { raw -> (isHTTP10: Bool, status: Int)? in
            guard raw.count >= 12, raw.starts(with: "HTTP/1.".utf8), raw[7] == UInt8(ascii: "0") || raw[7] == UInt8(ascii: "1"),
                  raw[8] == UInt8(ascii: " ")
            else { return nil }
            var status = 0
            for byte in raw[9..<12] {
                guard (0x30...0x39).contains(byte) else { return nil }
                status = status * 10 + Int(byte - 0x30)
            }
            return (raw[7] == UInt8(ascii: "0"), status)
        }
    }

    // MARK: The head sent to the client

    /// How the body goes to the client.
    public enum ClientFraming: Sendable {
        /// As received (a `Content-Length`, or no body). The other framings replace the
        /// backend's `Content-Length`, if any.
        case asReceived
        /// `Content-Length: n` replaces the backend's framing (the whole body is held).
        case length(Int)
        /// Re-chunked (HTTP/1.1 client, length unknown).
        case chunked
        /// Until the connection closes (HTTP/1.0 client, length unknown).
        case untilClose
    }

    /// The head for the client: hop-by-hop fields (and those named in `Connection`)
    /// removed, the client's HTTP version, `framing`, and `Connection: close` when the
    /// client connection will not be reused (`keep-alive` for a persistent HTTP/1.0 one).
    /// The received bytes as they are when nothing needs changing (the usual case).
    public func clientHead(requestIsHTTP10: Bool, keepAlive: Bool, framing: ClientFraming, allocator: ByteBufferAllocator) -> ByteBuffer {
        if case .asReceived = framing, !hasHopByHopFields, keepAlive, !requestIsHTTP10, !isHTTP10 { return bytes }
        var out = allocator.buffer(capacity: bytes.readableBytes + 48)
        out.writeString(requestIsHTTP10 ? "HTTP/1.0" : "HTTP/1.1")
        let start = bytes.readerIndex
        // " 200 OK\r\n"
        if var statusRest = bytes.getSlice(at: start + 8, length: fieldsStart - 8) { out.writeBuffer(&statusRest) }
        var index = start + fieldsStart
        let end = bytes.writerIndex - 2
        while index < end, let line = HTTPSyntax.fieldLine(in: bytes, at: index, end: end) {
            if !dropsField(named: line.name, framing: framing), var raw = bytes.getSlice(at: index, length: line.next - index) {
                out.writeBuffer(&raw)
            }
            index = line.next
        }
        switch framing {
        case .asReceived, .untilClose: break
        case .length(let length): out.writeString("content-length: \(length)\r\n")
        case .chunked: out.writeString("transfer-encoding: chunked\r\n")
        }
        if !keepAlive {
            out.writeString("connection: close\r\n")
        } else if requestIsHTTP10 {
            out.writeString("connection: keep-alive\r\n")
        }
        out.writeString("\r\n")
        return out
    }

    private func dropsField(named range: Range<Int>, framing: ClientFraming) -> Bool {
        if let field = HopByHopField(nameAt: range, in: bytes) {
            guard field == .contentLength else { return true }
            if case .asReceived = framing { return false }
            return true  // the client's framing replaces it
        }
        return connection.lists(nameAt: range, in: bytes)
    }
}

/// The response fields the proxy reads or drops, recognised from their name's bytes
/// (ASCII case-insensitive) without making a string: the hop-by-hop fields (RFC 9110
/// §7.6.1, with `Keep-Alive`, `Proxy-Connection` and `Trailer`), plus `Content-Length`.
enum HopByHopField: Equatable {
    case contentLength
    case transferEncoding
    case connection
    /// keep-alive, proxy-connection, te, trailer, upgrade, proxy-authenticate, proxy-authorization
    case other

    init?(nameAt range: Range<Int>, in bytes: ByteBuffer) {
        // Lengths of the names below: 2, 7, 10, 14, 16, 17, 18, 19.
        switch range.count {
        case 2, 7, 10, 14, 16, 17, 18, 19: break
        default: return nil
        }
        guard let found = HTTPSyntax.lookup(nameAt: range, in: bytes, among: Self.names) else { return nil }
        self = found
    }

    private static let names: [([UInt8], HopByHopField)] = [
        (Array("content-length".utf8), .contentLength), (Array("transfer-encoding".utf8), .transferEncoding),
        (Array("connection".utf8), .connection), (Array("keep-alive".utf8), .other), (Array("proxy-connection".utf8), .other),
        (Array("te".utf8), .other), (Array("trailer".utf8), .other), (Array("upgrade".utf8), .other),
        (Array("proxy-authenticate".utf8), .other), (Array("proxy-authorization".utf8), .other),
    ]
}

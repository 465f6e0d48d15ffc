import NIOCore

/// Finds the requests a client sends on one connection, one after another, without
/// building header strings: the head is validated and kept as bytes (see `RequestHead`),
/// the body is delivered as the bytes that carry it (de-chunked; trailers are read,
/// validated and dropped, since the body is re-framed upstream).
///
/// Contract: `next(from:)` until it returns nil (more bytes needed); after `.end` the next
/// call starts on the following request. Empty lines before a request line are skipped
/// (RFC 9112 §2.2). A thrown error leaves the framer unusable: the connection is closed.
/// Bytes the caller does not pass in yet (a pipelined request while a response is
/// pending) simply wait in the caller's buffer.
public struct RequestFramer {
    public enum Part {
        case head(RequestHead)
        /// Body bytes (chunk framing removed).
        case body(ByteBuffer)
        /// The request is complete.
        case end
    }

    private enum State {
        case head
        case body(BodyFramer)
    }

    /// The most a head (request line and fields) or a trailer section may take.
    public let maxHeadBytes: Int
    private var state = State.head
    /// Bytes of an unfinished head already searched for its end (searched once, not once per read).
    private var searched = 0

    public init(maxHeadBytes: Int = 80 * 1024) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// Whether the framer waits for a request line (no request partly framed).
    public var isBetweenRequests: Bool {
        if case .head = state { return searched == 0 }
        return false
    }

    /// The next part from `buffer` (consumed), or nil when more bytes are needed.
    public mutating func next(from buffer: inout ByteBuffer) throws(HTTPFramingError) -> Part? {
        switch state {
        case .head:
            if searched < 2 { Self.skipEmptyLines(&buffer) }  // (a CR read alone, then its LF)
            let end = try HTTPSyntax.headEnd(in: buffer, searchedAlready: searched, limit: maxHeadBytes)
            guard let end, let bytes = buffer.readSlice(length: end - buffer.readerIndex) else {
                searched = buffer.readableBytes
                return nil
            }
            searched = 0
            let head = try RequestHead(parsing: bytes)
            if head.isChunked {
                state = .body(.chunked)
            } else {
                state = .body(BodyFramer(length: head.contentLength ?? 0))
            }
            return .head(head)
        case .body(var body):
            state = .head  // keeps `body` uniquely referenced
            switch try body.next(from: &buffer, maxTrailerBytes: maxHeadBytes) {
            case .body(let chunk)?:
                state = .body(body)
                return .body(chunk)
            case .end?:
                return .end
            case nil:
                state = .body(body)
                return nil
            }
        }
    }

    /// Drops CRLF pairs at the reader index (a lone CR waits for its LF).
    private static func skipEmptyLines(_ buffer: inout ByteBuffer) {
        while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
            buffer.moveReaderIndex(forwardBy: 2)
        }
    }
}

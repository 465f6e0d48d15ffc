import NIOCore

/// Finds the parts of the HTTP/1.x responses a backend sends, without building header
/// strings: the head is validated and kept as bytes (forwarded as is when it needs no
/// rewriting, see `ResponseHead.clientHead`), the body is delivered as the bytes that
/// carry it (de-chunked).
///
/// Strict, since a backend's bytes are network input like any other: CRLF line ends, no
/// obs-fold, field names are tokens, values hold no control characters, one consistent
/// `Content-Length`, not both `Content-Length` and `Transfer-Encoding`; the head and a
/// trailer section are at most `maxHeadBytes`. Anything else throws and the connection
/// is closed. Interim 1xx responses are skipped; a `101 Switching Protocols` is refused
/// (`unrequestedUpgrade`), since the balancer never forwards `Upgrade`.
///
/// Contract: one response at a time; `expectResponse(toHEAD:)` before each request's
/// response, `next(from:)` until it returns nil (more bytes needed), `connectionClosed()`
/// when the backend closes (completes a close-delimited body).
public struct ResponseFramer {
    public enum Part {
        case head(ResponseHead)
        /// Body bytes (chunk framing removed).
        case body(ByteBuffer)
        /// The response is complete. `trailers`: the trailer fields of a chunked body,
        /// as `name: value\r\n` lines (already validated), if any.
        case end(trailers: ByteBuffer?)
    }

    public typealias Failure = HTTPFramingError

    private enum State {
        case head
        case body(BodyFramer)
        case untilClose
        case done
    }

    public let maxHeadBytes: Int
    private var state = State.done
    private var isHEAD = false
    /// Bytes of an unfinished head already searched for its end, so that a head arriving
    /// in many small reads is searched once, not once per read.
    private var searched = 0

    public init(maxHeadBytes: Int = 80 * 1024) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// Prepares for the response to the next request.
    public mutating func expectResponse(toHEAD: Bool) {
        state = .head
        isHEAD = toHEAD
        searched = 0
    }

    /// Whether a response is complete (or none was expected): bytes now are unexpected.
    public var isIdle: Bool {
        if case .done = state { return true }
        return false
    }

    /// The next part from `buffer` (consumed), or nil when more bytes are needed.
    public mutating func next(from buffer: inout ByteBuffer) throws(HTTPFramingError) -> Part? {
        switch state {
        case .done:
            return nil
        case .head:
            while true {
                guard let head = try parseHead(&buffer) else { return nil }
                if head.status == 101 { throw .unrequestedUpgrade }
                if (100..<200).contains(head.status) { continue }  // interim
                if isHEAD || head.status == 204 || head.status == 304 {
                    state = .body(BodyFramer(length: 0))
                } else if head.isChunked {
                    state = .body(.chunked)
                } else if let length = head.contentLength {
                    state = .body(BodyFramer(length: length))
                } else {
                    state = .untilClose
                }
                return .head(head)
            }
        case .body(var body):
            state = .done  // keeps `body` uniquely referenced
            let part = try body.next(from: &buffer, maxTrailerBytes: maxHeadBytes)
            switch part {
            case .body(let chunk)?:
                state = .body(body)
                return .body(chunk)
            case .end(let trailers)?:
                return .end(trailers: trailers)
            case nil:
                state = .body(body)
                return nil
            }
        case .untilClose:
            guard buffer.readableBytes > 0, let chunk = buffer.readSlice(length: buffer.readableBytes) else { return nil }
            return .body(chunk)
        }
    }

    /// The backend closed the connection: the end of a close-delimited body, else nothing.
    public mutating func connectionClosed() -> Part? {
        guard case .untilClose = state else { return nil }
        state = .done
        return .end(trailers: nil)
    }

    // MARK: Head

    private mutating func parseHead(_ buffer: inout ByteBuffer) throws(HTTPFramingError) -> ResponseHead? {
        let end = try HTTPSyntax.headEnd(in: buffer, searchedAlready: searched, limit: maxHeadBytes)
        guard let end, let bytes = buffer.readSlice(length: end - buffer.readerIndex) else {
            searched = buffer.readableBytes
            return nil
        }
        searched = 0
        return try ResponseHead(parsing: bytes)
    }
}

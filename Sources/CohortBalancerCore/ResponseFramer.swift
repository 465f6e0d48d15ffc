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
/// is closed. Interim 1xx responses (other than 101) are skipped.
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

    public enum Failure: Error, Hashable {
        case malformedHead
        case headTooLarge
        case malformedChunk
        case ambiguousLength
    }

    private enum State {
        case head
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case done
    }

    public let maxHeadBytes: Int
    private var state = State.done
    private var isHEAD = false
    /// Bytes of an unfinished head or trailer section already searched for its end, so
    /// that a head arriving in many small reads is searched once, not once per read.
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
    public mutating func next(from buffer: inout ByteBuffer) throws -> Part? {
        switch state {
        case .done:
            return nil
        case .head:
            while true {
                guard let head = try parseHead(&buffer) else { return nil }
                if (100..<200).contains(head.status) && head.status != 101 { continue }  // interim
                if isHEAD || head.status == 204 || head.status == 304 {
                    state = .length(remaining: 0)
                } else if head.status == 101 {
                    state = .untilClose
                } else if head.isChunked {
                    state = .chunkSize
                } else if let length = head.contentLength {
                    state = .length(remaining: length)
                } else {
                    state = .untilClose
                }
                return .head(head)
            }
        case .length(let remaining):
            if remaining == 0 {
                state = .done
                return .end(trailers: nil)
            }
            guard buffer.readableBytes > 0, let chunk = buffer.readSlice(length: min(remaining, buffer.readableBytes)) else { return nil }
            state = .length(remaining: remaining - chunk.readableBytes)
            return .body(chunk)
        case .untilClose:
            guard buffer.readableBytes > 0, let chunk = buffer.readSlice(length: buffer.readableBytes) else { return nil }
            return .body(chunk)
        case .chunkSize:
            guard let line = try Self.line(in: buffer, limit: 1024, failure: .malformedChunk) else { return nil }
            let size = try Self.chunkSize(buffer, line)
            buffer.moveReaderIndex(forwardBy: line.count + 2)
            state = size == 0 ? .trailers : .chunkData(remaining: size)
            return try next(from: &buffer)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0, let chunk = buffer.readSlice(length: min(remaining, buffer.readableBytes)) else { return nil }
            state = chunk.readableBytes == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - chunk.readableBytes)
            return .body(chunk)
        case .chunkDataEnd:
            guard buffer.readableBytes >= 2 else { return nil }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw Failure.malformedChunk }
            state = .chunkSize
            return try next(from: &buffer)
        case .trailers:
            guard let end = try sectionEnd(in: buffer) else { return nil }
            let length = end - buffer.readerIndex
            guard let section = buffer.readSlice(length: length) else { return nil }
            try Self.validateFields(section, from: section.readerIndex, to: section.writerIndex - 2)
            state = .done
            return .end(trailers: length > 2 ? section.getSlice(at: section.readerIndex, length: length - 2) : nil)
        }
    }

    /// The backend closed the connection: the end of a close-delimited body, else nothing.
    public mutating func connectionClosed() -> Part? {
        guard case .untilClose = state else { return nil }
        state = .done
        return .end(trailers: nil)
    }

    // MARK: Head

    private mutating func parseHead(_ buffer: inout ByteBuffer) throws -> ResponseHead? {
        guard let end = try sectionEnd(in: buffer) else { return nil }
        guard let bytes = buffer.readSlice(length: end - buffer.readerIndex) else { return nil }
        return try ResponseHead(parsing: bytes)
    }

    /// The index just past the empty line that ends the head (or trailer section) at the
    /// reader index; nil if not all there yet (what was searched is remembered); throws
    /// past `maxHeadBytes`.
    private mutating func sectionEnd(in buffer: ByteBuffer) throws -> Int? {
        let end = try Self.headEnd(in: buffer, searchedAlready: searched, limit: maxHeadBytes)
        searched = end == nil ? buffer.readableBytes : 0
        return end
    }

    /// The index just past the empty line that ends a head (or trailer section) starting
    /// at the reader index; nil if not all there yet; throws past `limit` bytes. The first
    /// `searchedAlready` bytes were searched before and are not searched again.
    static func headEnd(in buffer: ByteBuffer, searchedAlready: Int, limit: Int) throws -> Int? {
        try buffer.withUnsafeReadableBytes { bytes -> Int? in
            if bytes.count >= 2, bytes[0] == 0x0D, bytes[1] == 0x0A { return buffer.readerIndex + 2 }  // empty section
            let stop = min(bytes.count, limit)
            // An end found at `index` spans index-3...index; earlier searches covered every
            // index below what was then available.
            var index = max(3, searchedAlready)
            while index < stop {
                if bytes[index] == 0x0A, bytes[index - 1] == 0x0D, bytes[index - 2] == 0x0A, bytes[index - 3] == 0x0D {
                    return buffer.readerIndex + index + 1
                }
                index += 1
            }
            if bytes.count >= limit { throw Failure.headTooLarge }
            return nil
        }
    }

    /// The bytes of the line at the reader index (without its CRLF), if complete.
    private static func line(in buffer: ByteBuffer, limit: Int, failure: Failure) throws -> [UInt8]? {
        let view = buffer.readableBytesView
        guard let lf = view.prefix(limit).firstIndex(of: 0x0A) else {
            if view.count >= limit { throw failure }
            return nil
        }
        guard lf > view.startIndex, view[lf - 1] == 0x0D else { throw failure }
        return Array(view[view.startIndex..<(lf - 1)])
    }

    /// A chunk-size line: hex digits, optionally `;` extensions (ignored), at most 15 digits.
    private static func chunkSize(_ buffer: ByteBuffer, _ line: [UInt8]) throws -> Int {
        var size = 0
        var digits = 0
        for byte in line {
            if byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { break }
            guard let value = hexValue(byte), digits < 15 else { throw Failure.malformedChunk }
            size = size * 16 + value
            digits += 1
        }
        guard digits > 0 else { throw Failure.malformedChunk }
        return size
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// Checks the field lines in `buffer[start..<end]` (each ending in CRLF).
    static func validateFields(_ buffer: ByteBuffer, from start: Int, to end: Int) throws {
        var index = start
        while index < end {
            guard let line = ResponseHead.fieldLine(in: buffer, at: index, end: end) else { throw Failure.malformedHead }
            index = line.next
        }
    }
}

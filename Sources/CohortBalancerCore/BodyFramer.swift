import NIOCore

/// Delivers one message body framed by a length or by chunks (RFC 9112 §6–§7), as the
/// bytes that carry it: chunk framing removed, trailer fields validated and handed over.
/// Shared by `RequestFramer` and `ResponseFramer`.
struct BodyFramer {
    enum Part {
        /// Body bytes (chunk framing removed).
        case body(ByteBuffer)
        /// The body is complete. `trailers`: the trailer fields of a chunked body, as
        /// `name: value\r\n` lines, if any.
        case end(trailers: ByteBuffer?)
    }

    private enum State {
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
    }

    private var state: State
    /// Bytes of an unfinished trailer section already searched for its end.
    private var searched = 0

    /// A body of `length` bytes (0: none).
    init(length: Int) {
        state = .length(remaining: length)
    }

    /// A chunked body.
    static var chunked: BodyFramer {
        BodyFramer(state: .chunkSize)
    }

    private init(state: State) {
        self.state = state
    }

    /// The next part from `buffer` (consumed), or nil when more bytes are needed. After
    /// `.end` the framer must not be used again. A trailer section is at most
    /// `maxTrailerBytes`.
    mutating func next(from buffer: inout ByteBuffer, maxTrailerBytes: Int) throws(HTTPFramingError) -> Part? {
        while true {
            switch state {
            case .length(let remaining):
                if remaining == 0 { return .end(trailers: nil) }
                guard buffer.readableBytes > 0, let chunk = buffer.readSlice(length: min(remaining, buffer.readableBytes)) else {
                    return nil
                }
                state = .length(remaining: remaining - chunk.readableBytes)
                return .body(chunk)
            case .chunkSize:
                guard let line = try HTTPSyntax.chunkSizeLine(in: buffer) else { return nil }
                buffer.moveReaderIndex(forwardBy: line.length)
                state = line.size == 0 ? .trailers : .chunkData(remaining: line.size)
            case .chunkData(let remaining):
                guard buffer.readableBytes > 0, let chunk = buffer.readSlice(length: min(remaining, buffer.readableBytes)) else {
                    return nil
                }
                state = chunk.readableBytes == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - chunk.readableBytes)
                return .body(chunk)
            case .chunkDataEnd:
                guard buffer.readableBytes >= 2 else { return nil }
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw .malformedChunk }
                state = .chunkSize
            case .trailers:
                let end = try HTTPSyntax.headEnd(in: buffer, searchedAlready: searched, limit: maxTrailerBytes)
                guard let end else {
                    searched = buffer.readableBytes
                    return nil
                }
                let length = end - buffer.readerIndex
                guard let section = buffer.readSlice(length: length) else { return nil }
                try HTTPSyntax.validateFields(section, from: section.readerIndex, to: section.writerIndex - 2, failure: .malformedChunk)
                return .end(trailers: length > 2 ? section.getSlice(at: section.readerIndex, length: length - 2) : nil)
            }
        }
    }
}

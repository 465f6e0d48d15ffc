import CohortBalancerCore
import NIOCore

/// A request body too large to buffer, forwarded while the client sends it: the state
/// shared by the attempts of one `ProxyExchange`. Body bytes are never resent once any
/// went upstream.
final class StreamedRequestBody {
    /// The length announced upstream; `nil` for chunked.
    let declaredLength: Int?
    /// The absolute body limit (`maxRequestBodyBytes`).
    let limit: Int
    /// Parts read from the client and not yet written upstream (at most one socket read's
    /// worth: the client is not read while they wait).
    var pending = CircularBuffer<RequestFramer.Part>()
    /// Body bytes read from the client.
    var received: Int
    /// Body bytes written upstream.
    var bytesSent = 0
    /// The client's `.end` was read.
    var isFinished = false

    /// `prefix`: body bytes already read from the client.
    init(prefix: ByteBuffer, declaredLength: Int?, limit: Int) {
        self.declaredLength = declaredLength
        self.limit = limit
        self.received = prefix.readableBytes
        if prefix.readableBytes > 0 { pending.append(.body(prefix)) }
    }
}

extension ProxyExchange {
    /// A request body as forwarded upstream.
    enum Body {
        /// Read completely (at most `bufferLimit`); can be resent to another backend.
        case buffered(ByteBuffer)
        /// Too large to buffer: forwarded while the client sends it.
        case streamed(StreamedRequestBody)

        /// The length announced upstream; `nil` for chunked.
        var length: Int? {
            switch self {
            case .buffered(let buffer): return buffer.readableBytes
            case .streamed(let stream): return stream.declaredLength
            }
        }

        /// Whether the client's body was read to its end, so its connection can serve another request.
        var isFinished: Bool {
            switch self {
            case .buffered: return true
            case .streamed(let stream): return stream.isFinished
            }
        }

        /// Whether a failed attempt may still go to another backend (no body byte sent yet).
        var isResendable: Bool {
            switch self {
            case .buffered: return true
            case .streamed(let stream): return stream.bytesSent == 0
            }
        }
    }
}

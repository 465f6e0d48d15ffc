import NIOCore
import NIOHTTP1

/// A request body as forwarded upstream.
enum RequestBody {
    /// Read completely (at most `retryBufferBytes`); can be resent to another backend.
    case buffered(ByteBuffer)
    /// Too large to buffer, or of unknown length beyond `retryBufferBytes`: forwarded while
    /// the client sends it; not resent once any body byte went upstream.
    case streamed(StreamedBody)

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

/// The rest of a client's request body, pulled from the client connection as the backend
/// takes it: each part is read only after the previous one was written to the backend's
/// socket, so the balancer holds at most a few parts (the inbound stream's back-pressure
/// stops reading from the client meanwhile). Used by the one task serving the connection.
final class StreamedBody {
    typealias Parts = NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator

    /// The client's request parts; handed back to the connection loop after the request.
    private(set) var parts: Parts
    let declaredLength: Int?
    private let limit: Int
    private var prefix: ByteBuffer
    private var received: Int
    /// Body bytes written (or being written) upstream.
    private(set) var bytesSent = 0
    /// The client's `.end` was read.
    private(set) var isFinished = false

    /// `prefix`: body bytes already read from the client; `limit`: the absolute body limit.
    init(parts: Parts, prefix: ByteBuffer, declaredLength: Int?, limit: Int) {
        self.parts = parts
        self.prefix = prefix
        self.received = prefix.readableBytes
        self.declaredLength = declaredLength
        self.limit = limit
    }

    enum PumpResult {
        /// The whole body and the end were sent.
        case sent
        /// Writing upstream failed (the backend closed, reset or stalled); the client's body
        /// was not read to its end.
        case upstreamFailed
        /// The body exceeded the absolute limit; nothing more was sent.
        case tooLarge
    }

    /// Sends the body upstream after the head was sent. Throws `ClientGone` when the
    /// client connection fails or closes before the body ended.
    func pump(to upstream: UpstreamConnection, writeTimeout: Duration?) async throws -> PumpResult {
        if prefix.readableBytes > 0 {
            let chunk = prefix
            prefix = ByteBuffer()
            bytesSent += chunk.readableBytes
            do { try await upstream.sendBody(chunk, timeout: writeTimeout) } catch { return .upstreamFailed }
        }
        while true {
            let part: HTTPServerRequestPart?
            do {
                part = try await parts.next()
            } catch {
                throw ClientGone(underlying: error)
            }
            switch part {
            case .body(let chunk):
                received += chunk.readableBytes
                guard received <= limit else { return .tooLarge }
                bytesSent += chunk.readableBytes
                do { try await upstream.sendBody(chunk, timeout: writeTimeout) } catch { return .upstreamFailed }
            case .end:
                isFinished = true
                do { try await upstream.sendEnd() } catch { return .upstreamFailed }
                return .sent
            case .head, .none:
                throw ClientGone(underlying: ChannelError.eof)
            }
        }
    }
}

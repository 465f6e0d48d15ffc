public import NIOCore

/// Cuts a TCP byte stream into whole frames (header included), each passed on as one
/// `ByteBuffer` for ``FrameCodec/decode(frame:)``.
///
/// Only the header is checked here: the magic (from the first byte on, so a stranger
/// speaking HTTP is refused at once), the version, and the announced length against
/// `maxFrameLength`, which is rejected *before* buffering any of the frame. Key ID and
/// content are the codec's job. Any error is thrown; the caller closes the connection.
///
/// ```swift
/// try channel.pipeline.syncOperations.addHandler(
///     ByteToMessageHandler(ClusterFrameDecoder(maxFrameLength: limits.maxFrameLength)))
/// ```
public struct ClusterFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    /// Longest whole frame accepted, header included.
    public let maxFrameLength: Int
    /// Longest *first* frame accepted (a connection's hello, before anyone is
    /// authenticated), so a stranger cannot make the node buffer `maxFrameLength` bytes.
    public let maxFirstFrameLength: Int
    private var framesDecoded = 0

    /// - Parameter maxFirstFrameLength: the bound on the first frame; `nil` means
    ///   `maxFrameLength`. Receivers of hellos use ``maxHelloLength``.
    public init(maxFrameLength: Int = WireLimits().maxFrameLength, maxFirstFrameLength: Int? = nil) {
        self.maxFrameLength = maxFrameLength
        self.maxFirstFrameLength = min(maxFrameLength, maxFirstFrameLength ?? maxFrameLength)
    }

    /// A bound comfortably above the largest hello (a sealed frame with the longest node
    /// name and host: under 450 bytes).
    public static let maxHelloLength = 2048

    public init(limits: WireLimits) {
        self.init(maxFrameLength: limits.maxFrameLength)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let limit = framesDecoded == 0 ? maxFirstFrameLength : maxFrameLength
        guard let frame = try Self.readFrame(from: &buffer, maxFrameLength: limit) else {
            return .needMoreData
        }
        framesDecoded += 1
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    /// Delivers the frames still buffered; a stream that ended (`seenEOF`) in the middle
    /// of a frame throws ``WireError/truncated``.
    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        if try decode(context: context, buffer: &buffer) == .continue {
            return .continue
        }
        if seenEOF && buffer.readableBytes > 0 {
            throw WireError.truncated
        }
        return .needMoreData
    }

    /// Consumes one whole frame from `buffer` if one is there (the result shares storage).
    static func readFrame(from buffer: inout ByteBuffer, maxFrameLength: Int) throws(WireError) -> ByteBuffer? {
        guard let header = try FrameHeader.peek(in: buffer, maxFrameLength: maxFrameLength) else { return nil }
        return buffer.readSlice(length: header.frameLength)
    }
}

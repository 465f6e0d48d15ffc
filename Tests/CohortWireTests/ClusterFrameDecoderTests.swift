import CohortCore
import CohortWire
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@Suite("ClusterFrameDecoder: cutting a TCP stream into frames")
struct ClusterFrameDecoderTests {
    static let frames: [ByteBuffer] = Mode.allCases.flatMap { mode in Fixtures.messages.map { mode.codec.encode($0) } }

    @Test("ByteToMessageDecoderVerifier: drip-fed, one by one, all at once")
    func verifier() throws {
        // A few sizes in both modes: the verifier drip-feeds every byte ten times.
        let messages: [WireMessage] = [
            Fixtures.messages[0], Fixtures.membershipMessages[1], Fixtures.typicalDelta, .replication(.touched(keys: [])),
        ]
        let pairs = Mode.allCases.flatMap { mode in messages.map { mode.codec.encode($0) } }.map { ($0, [$0]) }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { ClusterFrameDecoder() }
    }

    @Test("a stream split at random points yields the same frames", arguments: 0..<20)
    func randomSplits(seed: UInt64) throws {
        var generator = SplitMix64(seed: seed)
        var stream = ByteBuffer()
        var expected: [ByteBuffer] = []
        for _ in 0..<30 {
            var frame = Self.frames[Int.random(in: 0..<Self.frames.count, using: &generator)]
            expected.append(frame)
            stream.writeBuffer(&frame)
        }
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(ClusterFrameDecoder()))
        var received: [ByteBuffer] = []
        while stream.readableBytes > 0 {
            let length = min(stream.readableBytes, Int.random(in: 1...300, using: &generator))
            let chunk = try #require(stream.getSlice(at: stream.readerIndex, length: length))
            stream.moveReaderIndex(forwardBy: length)
            try channel.writeInbound(chunk)
            while let frame = try channel.readInbound(as: ByteBuffer.self) {
                received.append(frame)
            }
        }
        #expect(received == expected)
        #expect(try channel.finish().isClean)
        // And the codec reads each cut frame.
        for frame in received {
            let codec = frame.getInteger(at: 3, as: UInt8.self) == 0 ? Fixtures.insecure : Fixtures.sealed
            #expect(throws: Never.self) { try codec.decode(frame: frame) }
        }
    }

    @Test("a stranger is refused at its first wrong byte")
    func badMagic() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(ClusterFrameDecoder()))
        #expect(throws: WireError.badMagic) { try channel.writeInbound(ByteBuffer(string: "G")) }
        _ = try? channel.finish()

        let second = EmbeddedChannel(handler: ByteToMessageHandler(ClusterFrameDecoder()))
        #expect(throws: Never.self) { try second.writeInbound(ByteBuffer(bytes: [0x43])) }
        #expect(throws: WireError.badMagic) { try second.writeInbound(ByteBuffer(bytes: [0x00])) }
        _ = try? second.finish()
    }

    @Test("an unsupported version is refused before the rest of the header")
    func unsupportedVersion() {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(ClusterFrameDecoder()))
        #expect(throws: WireError.unsupportedVersion) { try channel.writeInbound(ByteBuffer(bytes: [0x43, 0x48, 0x01])) }
        _ = try? channel.finish()
    }

    @Test("an oversized length is refused as soon as the header is in", arguments: [UInt32(93), .max])
    func oversized(length: UInt32) {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(ClusterFrameDecoder(maxFrameLength: 100)))
        var header = rawFrame(length: length, payload: [])
        let first = header.readSlice(length: 7) ?? ByteBuffer()
        #expect(throws: Never.self) { try channel.writeInbound(first) }
        #expect(throws: WireError.frameTooLarge) { try channel.writeInbound(header) }
        _ = try? channel.finish()
    }

    @Test("the first frame (the hello) has its own, smaller bound; later frames the full one")
    func firstFrameBound() throws {
        let small = rawFrame(payload: Array(repeating: 1, count: 40))  // 48 bytes
        let large = rawFrame(payload: Array(repeating: 2, count: 92))  // 100 bytes
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(ClusterFrameDecoder(maxFrameLength: 100, maxFirstFrameLength: 48)))
        try channel.writeInbound(small)
        try channel.writeInbound(large)
        #expect(try channel.readInbound(as: ByteBuffer.self) == small)
        #expect(try channel.readInbound(as: ByteBuffer.self) == large)
        #expect(try channel.finish().isClean)

        let strict = EmbeddedChannel(handler: ByteToMessageHandler(ClusterFrameDecoder(maxFrameLength: 100, maxFirstFrameLength: 48)))
        #expect(throws: WireError.frameTooLarge) { try strict.writeInbound(large) }
        _ = try? strict.finish()
    }

    @Test("a frame of exactly maxFrameLength passes")
    func exactlyMaxLength() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(ClusterFrameDecoder(maxFrameLength: 100)))
        let frame = rawFrame(payload: Array(repeating: 1, count: 92))
        try channel.writeInbound(frame)
        #expect(try channel.readInbound(as: ByteBuffer.self) == frame)
        #expect(try channel.finish().isClean)
    }

    @Test("a stream that ends mid-frame reports .truncated", arguments: [1, 7, 8, 20])
    func endsMidFrame(length: Int) throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(ClusterFrameDecoder()))
        let frame = Fixtures.sealed.encode(Fixtures.messages[0])
        let partial = try #require(frame.getSlice(at: frame.readerIndex, length: length))
        try channel.writeInbound(partial)
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        #expect(throws: WireError.truncated) { try channel.finish() }
    }
}

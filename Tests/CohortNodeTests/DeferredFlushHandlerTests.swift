@testable import CohortHummingbird
import NIOCore
import NIOEmbedded
import Testing

/// `DeferredFlushHandler`: a flush waits for the loop's queued work, and a close never
/// drops what a held flush would have written.
@Suite struct DeferredFlushHandlerTests {
    static func channel() throws -> (EmbeddedChannel, EmbeddedEventLoop) {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: DeferredFlushHandler(), loop: loop)
        return (channel, loop)
    }

    @Test func aFlushIsHeldUntilTheLoopRunsItsQueuedWork() throws {
        let (channel, loop) = try Self.channel()
        channel.write(ByteBuffer(string: "one"), promise: nil)
        channel.flush()
        channel.write(ByteBuffer(string: "two"), promise: nil)
        channel.flush()  // the second flush joins the first
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "written before the loop's turn ended")
        loop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "one"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "two"))
        _ = try channel.finish()
    }

    @Test func closingWithAHeldFlushWritesFirst() throws {
        let (channel, _) = try Self.channel()
        channel.write(ByteBuffer(string: "last response"), promise: nil)
        channel.flush()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.close(promise: nil)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "last response"))
    }
}

@testable import CohortBalancer
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Clients that send and do not read: the balancer holds their next requests instead of
/// buffering a response per request, and closes a connection whose last bytes are never
/// read.
@Suite struct SlowReaderTests {
    /// Counts the bytes a connection receives while it reads (it starts not reading).
    private final class ByteCounter: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received = NIOLockedValueBox(0)
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let count = unwrapInboundIn(data).readableBytes
            received.withLockedValue { $0 += count }
        }
    }

    private func connectNotReading(port: Int, group: any EventLoopGroup) async throws -> (any Channel, ByteCounter) {
        let counter = ByteCounter()
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.so_rcvbuf), value: 16 * 1024)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(counter) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return (channel, counter)
    }

    private func forwarded(_ h: Harness) -> Int {
        h.backends.reduce(0) { total, backend in total + backend.requests.withLockedValue { $0.count } }
    }

    @Test("pipelined requests from a client that does not read wait for it; once it reads, every response arrives")
    func aClientThatDoesNotReadHoldsItsNextRequests() async throws {
        try await withHarness { (h: Harness) async throws in
            let requests = 400
            let size = 60_000  // held whole (under the 64 KiB hold buffer), then written at once
            let (channel, counter) = try await connectNotReading(port: h.balancer.listenAddress.port, group: h.group)
            var bytes = ByteBuffer()
            for _ in 0..<requests { bytes.writeString("GET /big/\(size) HTTP/1.1\r\nHost: slow\r\n\r\n") }
            try await channel.writeAndFlush(bytes).get()

            // Forwarded requests stop growing once the client's socket and the
            // balancer's outbound buffer are full (until it has been still for 500 ms).
            var last = -1
            var stillSince = ContinuousClock.now
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                let now = forwarded(h)
                if now != last {
                    (last, stillSince) = (now, ContinuousClock.now)
                } else if now > 0, ContinuousClock.now - stillSince >= .milliseconds(500) {
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(last > 0)
            #expect(last < requests / 2, "\(last) of \(requests) requests forwarded to a client that reads nothing")

            // Reading again, the client gets every response: the held requests went on.
            try await channel.setOption(.autoRead, value: true).get()
            channel.read()
            try await h.waitUntil("every response arrived", within: .seconds(30)) {
                counter.received.withLockedValue { $0 } >= requests * size
            }
            #expect(forwarded(h) == requests)
            try await channel.close()
        }
    }

    @Test("a client that never reads its last response (Connection: close) is closed after the idle timeout")
    func aClosingConnectionWhoseClientNeverReadsIsClosed() async throws {
        let size = 6_000_000  // held whole, then written at once: more than the sockets take
        try await withHarness(configure: {
            $0.clientIdleTimeout = .seconds(1)
            $0.responseBufferBytes = 8_000_000
        }) { (h: Harness) async throws in
            let (channel, _) = try await connectNotReading(port: h.balancer.listenAddress.port, group: h.group)
            try await channel.writeAndFlush(ByteBuffer(string: "GET /big/\(size) HTTP/1.1\r\nHost: slow\r\nConnection: close\r\n\r\n")).get()
            try await h.waitUntil("the backend got the request") { forwarded(h) == 1 }
            let answered = ContinuousClock.now
            // The client reads nothing, so it would not see the close: the balancer's count
            // of open client connections shows it.
            #expect(h.balancer.connections.count == 1)
            try await h.waitUntil("the balancer closed the connection", within: .seconds(20)) {
                h.balancer.connections.count == 0
            }
            // Not before the idle timeout: the response (more than the sockets hold) was
            // never all written.
            #expect(ContinuousClock.now - answered >= .milliseconds(500))
            try await channel.close()
            let response = try await h.get(route: "a")
            #expect(response.status == 200)
        }
    }
}

import NIOCore
import NIOPosix
import Testing

@testable import CohortCommand

/// `cohort status`'s fetch against a node that answers its head and then stalls, or
/// redirects: the timeout covers the whole exchange, and no redirect is followed.
@Suite(.timeLimit(.minutes(1))) struct StatusFetchTests {
    /// Answers every request with `response` and then keeps the connection open, silent.
    final class CannedAnswer: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let response: String
        init(_ response: String) { self.response = response }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
        }
    }

    static func withServer(answering response: String, _ body: (String) async throws -> Void) async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { $0.pipeline.addHandler(CannedAnswer(response)) }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        do {
            try await body("127.0.0.1:\(port)")
        } catch {
            try? await server.close()
            throw error
        }
        try await server.close()
    }

    @Test func aBodyThatStallsEndsAtTheTimeout() async throws {
        try await Self.withServer(answering: "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"node\":") { address in
            let client = StatusCommand.makeClient()
            let started = ContinuousClock.now
            let answer = await StatusCommand.fetch(address, timeout: .milliseconds(300), client: client)
            let took = ContinuousClock.now - started
            try await client.shutdown()
            guard case .failed(let reason) = answer else {
                Issue.record("a stalled body was taken for an answer: \(answer)")
                return
            }
            #expect(reason.contains("no complete answer"), "\(reason)")
            #expect(took < .seconds(5), "took \(took)")
        }
    }

    @Test func aRedirectIsNotFollowed() async throws {
        try await Self.withServer(answering: "HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1/cluster\r\nContent-Length: 0\r\n\r\n") { address in
            let client = StatusCommand.makeClient()
            let answer = await StatusCommand.fetch(address, timeout: .seconds(5), client: client)
            try await client.shutdown()
            guard case .failed(let reason) = answer else {
                Issue.record("a redirect was taken for an answer: \(answer)")
                return
            }
            #expect(reason == "HTTP 302", "\(reason)")
        }
    }
}

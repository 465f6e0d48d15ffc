import CohortCore
import CohortHummingbird
import Hummingbird
import HummingbirdCore
import HummingbirdTesting
import NIOCore
import NIOPosix
import Testing

/// `HTTPServerBuilder.http1OnEventLoop()`: a request's handler runs on the event loop of
/// its connection, also after awaiting work completed on another thread.
@Suite struct EventLoopBoundChannelTests {
    /// Answers where the handler ran: `loop` on an event-loop thread, `pool` elsewhere;
    /// then, after awaiting a future completed on another group's loop, `same` if it is
    /// back on the first loop.
    static func makeApp(server: HTTPServerBuilder, elsewhere: any EventLoop) -> some ApplicationProtocol {
        let router = Router()
        router.get("/where") { _, _ -> String in
            guard let before = MultiThreadedEventLoopGroup.currentEventLoop else { return "pool" }
            let value = try await elsewhere.submit { 42 }.get()
            guard let after = MultiThreadedEventLoopGroup.currentEventLoop else { return "loop, then pool" }
            return ObjectIdentifier(before) == ObjectIdentifier(after) && value == 42 ? "loop, then same" : "loop, then another"
        }
        return Application(router: router, server: server, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    @Test func handlersRunOnTheConnectionsLoopAndComeBackToIt() async throws {
        let other = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await Self.makeApp(server: .http1OnEventLoop(), elsewhere: other.next()).test(.live) { client in
            for _ in 0..<3 {  // one keep-alive connection: every request, not only the first
                let response = try await client.execute(uri: "/where", method: .get)
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "loop, then same")
            }
        }
        try await other.shutdownGracefully()
    }

    @Test func hummingbirdsOwnHTTP1RunsHandlersOffTheLoop() async throws {
        // The control: what the test above would see without the executor preference.
        let other = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await Self.makeApp(server: .http1(), elsewhere: other.next()).test(.live) { client in
            let response = try await client.execute(uri: "/where", method: .get)
            #expect(String(buffer: response.body) == "pool")
        }
        try await other.shutdownGracefully()
    }

    /// Flushes held to the end of the loop's turn (`DeferredFlushHandler`) never lose a
    /// response: pipelined requests are all answered, the last one asks to close, and its
    /// response arrives before the close.
    @Test func pipelinedRequestsAndAClosingOneAreAllAnsweredBeforeTheClose() async throws {
        let other = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await Self.makeApp(server: .http1OnEventLoop(), elsewhere: other.next()).test(.live) { client in
            let port = try #require(client.port)
            let socket = try RawSocket.Stream(to: Address(host: "127.0.0.1", port: port))
            let request = "GET /where HTTP/1.1\r\nhost: x\r\n\r\n"
            let closing = "GET /where HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            try socket.send(Array((request + request + closing).utf8))
            let reply = socket.readToClose()
            #expect(reply.components(separatedBy: "HTTP/1.1 200").count - 1 == 3, "\(reply)")
            #expect(reply.components(separatedBy: "loop, then same").count - 1 == 3, "\(reply)")
        }
        try await other.shutdownGracefully()
    }
}

extension RawSocket.Stream {
    /// Everything the peer sends until it closes (or the receive timeout passes).
    func readToClose() -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return String(decoding: received, as: UTF8.self) }
            received += buffer[0..<count]
        }
    }
}

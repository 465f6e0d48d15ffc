import CohortBalancer
import NIOCore
import NIOPosix
import Testing

@Suite struct ClientIdleTimeoutTests {
    @Test("a client that sends half a request head and stalls is disconnected; normal requests are not")
    func slowClientsAreDisconnected() async throws {
        // 1 s: room for a loaded machine between a client's connect and its request.
        try await withHarness(configure: { $0.clientIdleTimeout = .seconds(1) }) { (h: Harness) async throws in
            let channel = try await ClientBootstrap(group: h.group)
                .connect(host: "127.0.0.1", port: h.balancer.listenAddress.port).get()
            try await channel.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: slow\r\n")).get()
            let started = ContinuousClock.now
            let closed = try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask { try await channel.closeFuture.get(); return true }
                group.addTask { try await Task.sleep(for: .seconds(5)); return false }
                defer { group.cancelAll() }
                return try await group.next() ?? false
            }
            #expect(closed, "the stalled connection was still open after 5 s")
            #expect(ContinuousClock.now - started >= .milliseconds(500), "closed too early")
            if !closed { try await channel.close() }

            let response = try await h.get(route: "a")
            #expect(response.status == 200)
        }
    }

    @Test("a head sent a byte at a time is cut off an idle timeout after its first byte")
    func aHeadTrickledInIsCutOff() async throws {
        try await withHarness(configure: { $0.clientIdleTimeout = .seconds(1) }) { (h: Harness) async throws in
            let channel = try await ClientBootstrap(group: h.group)
                .connect(host: "127.0.0.1", port: h.balancer.listenAddress.port).get()
            try await channel.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: ")).get()
            let started = ContinuousClock.now
            // The client's pace: a byte every 200 ms, progress each time, never the head's end.
            var open = true
            for _ in 0..<50 where open {
                try? await channel.writeAndFlush(ByteBuffer(string: "x")).get()
                try await Task.sleep(for: .milliseconds(200))
                open = channel.isActive
            }
            #expect(!open, "still open after 10 s of trickled bytes")
            #expect(ContinuousClock.now - started < .seconds(5))
            if open { try await channel.close() }
            let response = try await h.get(route: "a")
            #expect(response.status == 200)
        }
    }

    @Test("time spent waiting for a backend does not count against the client")
    func waitingForABackendIsNotIdle() async throws {
        try await withHungBackendHarness(
            configure: {
                // Room for a loaded machine between the client's connect and its request.
                $0.clientIdleTimeout = .seconds(1)
                $0.responseTimeout = .seconds(3)  // 3 idle timeouts, then a retry elsewhere
                $0.failureThreshold = 1_000
            }
        ) { (h: Harness) async throws in
            let started = ContinuousClock.now
            let response = try await h.get(route: "hung")
            #expect(response.status == 200)
            #expect(response.backend != "hung")
            #expect(ContinuousClock.now - started >= .milliseconds(2_900))
        }
    }
}

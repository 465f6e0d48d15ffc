@testable import CohortBalancer
import CohortBalancerCore
import CohortCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// Request bodies through the balancer (limits, streaming, full duplex) and how it closes
/// a connection whose request or response did not end cleanly.
@Suite("Balancer: request bodies and closes", .timeLimit(.minutes(1)))
struct BalancerBodyTests {
    @Test("an over-limit request body gets 413")
    func bodyLimit() async throws {
        try await withHarness(configure: { $0.maxRequestBodyBytes = 16 }) { (h: Harness) async throws in
            #expect(try await h.post(String(repeating: "x", count: 17)).status == 413)
            #expect(try await h.post(String(repeating: "x", count: 16)).status == 200)
            #expect(h.balancer.refusals.count(.bodyTooLarge) == 1)
        }
    }

    @Test("a 16 MiB POST streams to the backend, which receives data before the client finished sending")
    func largeBodyStreams() async throws {
        // A generous timeout: this test is about streaming, and 16 MiB through a loaded
        // (or instrumented) machine can stall a write for longer than the harness's 2 s.
        try await withHarness(configure: { $0.responseTimeout = .seconds(20) }) { (h: Harness) async throws in
            let chunkSize = 64 * 1024
            let chunks = 256
            let response = try await sendStreamingPost(port: h.port, chunks: chunks, chunkSize: chunkSize, group: h.group) {
                // The balancer must forward while the client still sends: more than the retry
                // buffer reached the backends before the client wrote its last part.
                try await h.waitUntil("streamed bytes at a backend", within: .seconds(20)) {
                    h.backends.contains { $0.receivedBodyBytes.withLockedValue { $0 } > 2 << 20 }
                }
            }
            #expect(response.status == 200)
            #expect(response.body.contains("method=POST body=\(chunks * chunkSize) "))
            // The connection and the balancer stay usable.
            #expect(try await h.post("small").body.contains("body=5 "))
        }
    }

    @Test("a chunked body is buffered while small and streamed once it outgrows the retry buffer")
    func chunkedBodies() async throws {
        try await withHarness(configure: { $0.retryBufferBytes = 64 * 1024 }) { (h: Harness) async throws in
            let small = try await sendStreamingPost(port: h.port, chunks: 4, chunkSize: 1_000, chunked: true, group: h.group)
            #expect(small.status == 200)
            #expect(small.body.contains("body=4000 "))
            let large = try await sendStreamingPost(port: h.port, chunks: 40, chunkSize: 16 * 1024, chunked: true, group: h.group)
            #expect(large.status == 200)
            #expect(large.body.contains("body=\(40 * 16 * 1024) "))
        }
    }

    @Test("a chunked body over the absolute limit gets 413 while streaming")
    func streamedBodyLimit() async throws {
        try await withHarness(configure: { $0.retryBufferBytes = 16 * 1024; $0.maxRequestBodyBytes = 256 * 1024 }) { (h: Harness) async throws in
            let response = try await sendStreamingPost(port: h.port, chunks: 8, chunkSize: 64 * 1024, chunked: true, group: h.group)
            // 413, read whole: the balancer's close lingers, so no reset destroys it.
            #expect(response.status == 413)
            #expect(h.backends.allSatisfy { $0.receivedBodyBytes.withLockedValue { $0 } <= 256 * 1024 })
            #expect(try await h.get().status == 200)
        }
    }

    @Test("an upload declared over the limit gets 413, and the balancer reads the rest of the body before it closes (lingering)")
    func declaredBodyLimitWhileSending() async throws {
        try await withHarness(configure: { $0.retryBufferBytes = 16 * 1024; $0.maxRequestBodyBytes = 64 * 1024 }) { (h: Harness) async throws in
            for _ in 0..<3 {
                // More than the sockets' buffers hold, so the balancer must read it.
                let response = try await sendStreamingPost(port: h.port, chunks: 512, chunkSize: 64 * 1024, group: h.group)
                #expect(response.status == 413)
                // A close with the body unread would reset the connection, and a reset can
                // destroy the 413 on its way to a client on a real network.
                #expect(!response.sendFailed, "the client could send its whole body")
            }
            #expect(h.balancer.refusals.count(.bodyTooLarge) == 3)
        }
    }

    @Test("a backend that answers while it reads (an echo) gets the whole body: the upload goes on after the response head")
    func fullDuplexUpload() async throws {
        try await withHarness(configure: { $0.retryBufferBytes = 16 * 1024; $0.responseTimeout = .seconds(5) }) { (h: Harness) async throws in
            let channel = try await ClientBootstrap(group: h.group).connect(host: "127.0.0.1", port: h.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
            let part = ByteBuffer(repeating: UInt8(ascii: "x"), count: 32 * 1024)
            let parts = 8
            let echoed = try await channel.executeThenClose { inbound, outbound in
                let headers: HTTPHeaders = ["host": "127.0.0.1", "content-length": String(parts * part.readableBytes)]
                try await outbound.write(.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/echo", headers: headers)))
                // Over the retry buffer, so the body streams; the rest waits for the response's head.
                try await outbound.write(.body(.byteBuffer(part)))
                var iterator = inbound.makeAsyncIterator()
                guard case .head(let head) = try await iterator.next() else { return -1 }
                #expect(head.status == .ok)
                for _ in 1..<parts { try await outbound.write(.body(.byteBuffer(part))) }
                try await outbound.write(.end(nil))
                var bytes = 0
                while let next = try await iterator.next() {
                    switch next {
                    case .head: return -1
                    case .body(let chunk): bytes += chunk.readableBytes
                    case .end: return bytes
                    }
                }
                return bytes
            }
            #expect(echoed == parts * part.readableBytes)
        }
    }

    @Test("a close-delimited response cut by a reset is not relayed as complete; one that ends with a clean close is")
    func closeDelimitedResponses() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // Larger than the hold buffer (64 KiB), so the response is being relayed when the reset comes.
        let resetting = try await ResettingBackend.start(bytes: 256 * 1024, group: group)
        let clean = try await ResettingBackend.start(bytes: 256 * 1024, cleanClose: true, group: group)
        do {
            try await withHarness(extraBackends: [
                Backend(name: "cut", address: Address(host: "127.0.0.1", port: resetting.port)),
                Backend(name: "whole", address: Address(host: "127.0.0.1", port: clean.port)),
            ]) { (h: Harness) async throws in
                let whole = try await h.get(route: "whole")
                #expect(whole.status == 200)
                #expect(whole.body.utf8.count == 256 * 1024, "a clean close ends the body")
                // Re-chunked for an HTTP/1.1 client, the cut response must end without its
                // last chunk (the client sees an error), never as a complete, shorter body.
                let cut = try? await h.get(route: "cut")
                #expect(cut.map { $0.status == 200 && $0.body.utf8.count < 256 * 1024 } != true,
                        "a truncated body was relayed with a clean end")
            }
        } catch {
            await resetting.stop()
            await clean.stop()
            try await group.shutdownGracefully()
            throw error
        }
        await resetting.stop()
        await clean.stop()
        try await group.shutdownGracefully()
    }
}

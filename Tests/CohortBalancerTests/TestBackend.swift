import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A tiny HTTP/1.1 backend for tests: answers every request with
/// `name=<name> route=<route|-> method=<METHOD> body=<bytes> xff=<X-Forwarded-For|-> fwd=<Forwarded|-> rid=<Cohort-Request-Id|->`
/// (header `x-backend: <name>`), and `GET /health` with 200 (503 and `Cohort-Draining` while
/// ``draining`` is set); `/big/<n>`, `/chunked/<n>`
/// and `/switch` (a 101 and nothing else) test response framing, and `POST /echo` answers
/// while it reads (its response starts at the head and returns each body part as it arrives). `stop()` closes the listening
/// socket and every open connection, like a crashed node. ``requests`` lists what it read
/// (health checks left out); with `dropsFirstPost` it closes the connection of the first
/// POST once that POST was read, without answering (a node that died mid-request).
final class TestBackend: Sendable {
    let name: String
    let port: Int
    /// Request body bytes received so far, over all requests (counted as they arrive).
    let receivedBodyBytes: NIOLockedValueBox<Int>
    /// Every request read completely except `/health`, in order.
    let requests: NIOLockedValueBox<[ReceivedRequest]>
    /// While set, `GET /health` answers 503 with `Cohort-Draining: true` (a node stopping).
    let draining: NIOLockedValueBox<Bool>
    private let serverChannel: any Channel
    private let children: NIOLockedValueBox<[any Channel]>

    /// A request as the backend read it.
    struct ReceivedRequest: Sendable, Equatable {
        var method: HTTPMethod
        /// Its `Cohort-Request-Id` fields, in order.
        var requestIDs: [String]
    }

    private init(name: String, port: Int, received: NIOLockedValueBox<Int>, requests: NIOLockedValueBox<[ReceivedRequest]>,
                 draining: NIOLockedValueBox<Bool>, serverChannel: any Channel, children: NIOLockedValueBox<[any Channel]>) {
        self.name = name
        self.port = port
        self.receivedBodyBytes = received
        self.requests = requests
        self.draining = draining
        self.serverChannel = serverChannel
        self.children = children
    }

    /// `silent`: never answers anything but `/health` (a hung node). `dropsFirstPost`: see
    /// the type's description.
    static func start(name: String, group: any EventLoopGroup, silent: Bool = false, dropsFirstPost: Bool = false) async throws -> TestBackend {
        let children = NIOLockedValueBox<[any Channel]>([])
        let received = NIOLockedValueBox(0)
        let requests = NIOLockedValueBox<[ReceivedRequest]>([])
        let draining = NIOLockedValueBox(false)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                children.withLockedValue { $0.append(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder(
                        name: name, silent: silent, dropsFirstPost: dropsFirstPost, received: received, requests: requests, draining: draining))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = channel.localAddress?.port else { throw ChannelError.unknownLocalAddress }
        return TestBackend(
            name: name, port: port, received: received, requests: requests, draining: draining, serverChannel: channel, children: children)
    }

    func stop() async {
        try? await serverChannel.close()
        for child in children.withLockedValue({ $0 }) {
            try? await child.close()
        }
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let name: String
        let silent: Bool
        let dropsFirstPost: Bool
        let received: NIOLockedValueBox<Int>
        let requests: NIOLockedValueBox<[ReceivedRequest]>
        let draining: NIOLockedValueBox<Bool>
        var head: HTTPRequestHead?
        var bodyBytes = 0
        /// `POST /echo`: the response started at the head, and each body part goes back as it arrives.
        var echoing = false

        init(name: String, silent: Bool, dropsFirstPost: Bool, received: NIOLockedValueBox<Int>,
             requests: NIOLockedValueBox<[ReceivedRequest]>, draining: NIOLockedValueBox<Bool>) {
            self.draining = draining
            self.name = name
            self.silent = silent
            self.dropsFirstPost = dropsFirstPost
            self.received = received
            self.requests = requests
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                bodyBytes = 0
                echoing = head.uri == "/echo"
                if echoing {
                    let response = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["transfer-encoding": "chunked", "x-backend": name])
                    context.writeAndFlush(wrapOutboundOut(.head(response)), promise: nil)
                }
            case .body(let chunk):
                bodyBytes += chunk.readableBytes
                received.withLockedValue { $0 += chunk.readableBytes }
                if echoing { context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil) }
            case .end:
                guard let head else { return }
                if echoing {
                    echoing = false
                    self.head = nil
                    return context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                }
                if head.uri != "/health" {
                    let firstPost = requests.withLockedValue { requests in
                        defer { requests.append(ReceivedRequest(method: head.method, requestIDs: head.headers["cohort-request-id"])) }
                        return head.method == .POST && !requests.contains { $0.method == .POST }
                    }
                    if dropsFirstPost && firstPost { return context.close(promise: nil) }
                }
                guard !silent || head.uri == "/health" else { return }
                if head.uri.hasPrefix("/big/"), let size = Int(head.uri.dropFirst(5)) {
                    return sendBig(size, context: context)
                }
                if head.uri == "/switch" {  // protocols nobody asked for (the balancer never forwards Upgrade)
                    let response = HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: ["upgrade": "x"])
                    context.writeAndFlush(wrapOutboundOut(.head(response)), promise: nil)
                    return
                }
                if head.uri.hasPrefix("/chunked/"), let parts = Int(head.uri.dropFirst(9)) {
                    return sendChunked(parts, headRequest: head.method == .HEAD, context: context)
                }
                let route = head.headers["cookie"].lazy.flatMap { $0.split(separator: ";") }.compactMap { pair -> String? in
                    let trimmed = pair.drop { $0 == " " }
                    guard trimmed.hasPrefix("COHORTSESSION=") else { return nil }
                    return trimmed.split(separator: ".").last.map(String.init)
                }.first ?? "-"
                let stopping = head.uri == "/health" && draining.withLockedValue { $0 }
                let text = head.uri == "/health"
                    ? (stopping ? "draining" : "ok")
                    : "name=\(name) route=\(route) method=\(head.method.rawValue) body=\(bodyBytes) xff=\(head.headers.first(name: "x-forwarded-for") ?? "-") fwd=\(head.headers.first(name: "forwarded") ?? "-") rid=\(head.headers.first(name: "cohort-request-id") ?? "-")"
                var headers = HTTPHeaders()
                headers.add(name: "x-backend", value: name)
                headers.add(name: "content-length", value: String(text.utf8.count))
                if stopping { headers.add(name: "Cohort-Draining", value: "true") }
                let status: HTTPResponseStatus = stopping ? .serviceUnavailable : .ok
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                self.head = nil
            }
        }

        /// `size` bytes of `y` in 16 KiB parts, each flushed on its own.
        private func sendBig(_ size: Int, context: ChannelHandlerContext) {
            var headers = HTTPHeaders()
            headers.add(name: "x-backend", value: name)
            headers.add(name: "content-length", value: String(size))
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            var left = size
            while left > 0 {
                let part = min(left, 16 * 1024)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: UInt8(ascii: "y"), count: part)))), promise: nil)
                left -= part
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            head = nil
        }

        /// `parts` parts of 1,000 bytes of `z` without a length (so NIO sends them chunked),
        /// from 100 parts on with the trailer `x-sum: <bytes>`; a HEAD request gets the head only.
        private func sendChunked(_ parts: Int, headRequest: Bool, context: ChannelHandlerContext) {
            var headers = HTTPHeaders()
            headers.add(name: "x-backend", value: name)
            headers.add(name: "transfer-encoding", value: "chunked")
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            if !headRequest {
                for _ in 0..<parts {
                    context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: UInt8(ascii: "z"), count: 1000)))), promise: nil)
                }
            }
            context.writeAndFlush(wrapOutboundOut(.end(headRequest || parts < 100 ? nil : ["x-sum": String(parts * 1000)])), promise: nil)
            head = nil
        }
    }
}

/// A response as seen by the test client.
struct TestResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: String
    /// Writing the request failed (the server closed before taking all of it).
    var sendFailed = false
    var backend: String? { headers.first(name: "x-backend") }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
func sendRequest(port: Int, method: HTTPMethod = .GET, path: String = "/", headers extra: [(String, String)] = [],
                 body: String? = nil, group: any EventLoopGroup) async throws -> TestResponse {
    let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port) { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHTTPClientHandlers()
            return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
        }
    }
    return try await channel.executeThenClose { inbound, outbound in
        var headers = HTTPHeaders()
        headers.add(name: "host", value: "127.0.0.1:\(port)")
        headers.add(name: "connection", value: "close")
        for (name, value) in extra { headers.add(name: name, value: value) }
        if let body { headers.add(name: "content-length", value: String(body.utf8.count)) }
        // The whole request in one write, as clients send it: the balancer may answer
        // (and close) as soon as it read the head.
        var parts: [HTTPClientRequestPart] = [.head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers))]
        if let body { parts.append(.body(.byteBuffer(ByteBuffer(string: body)))) }
        parts.append(.end(nil))
        try await outbound.write(contentsOf: parts)
        var response = TestResponse(status: 0, headers: [:], body: "")
        for try await part in inbound {
            switch part {
            case .head(let head):
                response.status = Int(head.status.code)
                response.headers = head.headers
            case .body(let chunk):
                response.body += String(buffer: chunk)
            case .end:
                return response
            }
        }
        return response
    }
}

/// A POST of `chunks` body parts of `chunkSize` bytes on a fresh connection, with
/// `Content-Length` (or chunked when `chunked`). `beforeLast` runs before the last part is
/// written, e.g. to check that the backend already received data.
func sendStreamingPost(port: Int, path: String = "/upload", chunks: Int, chunkSize: Int, chunked: Bool = false, route: String? = nil,
                       group: any EventLoopGroup,
                       beforeLast: @Sendable () async throws -> Void = {}) async throws -> TestResponse {
    // Half-closure allowed: a server that answers early and closes its side only (lingering)
    // is still sent the rest of the body, as a browser does until it reads the response.
    let channel = try await ClientBootstrap(group: group).channelOption(.allowRemoteHalfClosure, value: true)
        .connect(host: "127.0.0.1", port: port) { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHTTPClientHandlers()
            return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
        }
    }
    return try await channel.executeThenClose { inbound, outbound in
        var headers = HTTPHeaders()
        headers.add(name: "host", value: "127.0.0.1:\(port)")
        headers.add(name: "connection", value: "close")
        if let route { headers.add(name: "cookie", value: "COHORTSESSION=AAAAAAAAAAAAAAAAAAAAAAAAAAA.\(route)") }
        if chunked {
            headers.add(name: "transfer-encoding", value: "chunked")
        } else {
            headers.add(name: "content-length", value: String(chunks * chunkSize))
        }
        try await outbound.write(.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)))
        let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: chunkSize)
        var response = TestResponse(status: 0, headers: [:], body: "")
        do {
            for index in 0..<chunks {
                if index == chunks - 1 { try await beforeLast() }
                try await outbound.write(.body(.byteBuffer(chunk)))
            }
            try await outbound.write(.end(nil))
        } catch {
            // The server answered early and closed; read what it sent.
            response.sendFailed = true
        }
        do {
            for try await part in inbound {
                switch part {
                case .head(let head):
                    response.status = Int(head.status.code)
                    response.headers = head.headers
                case .body(let chunk):
                    response.body += String(buffer: chunk)
                case .end:
                    return response
                }
            }
        } catch where response.status == 0 {
            // Reset before a response arrived: status stays 0.
        }
        return response
    }
}

/// A port with nothing listening (bound, then closed).
func unusedPort(group: any EventLoopGroup) async throws -> Int {
    let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
    guard let port = channel.localAddress?.port else { throw ChannelError.unknownLocalAddress }
    try await channel.close()
    return port
}

/// Writes every request on one connection before reading any response (HTTP/1.1
/// pipelining; the last one asks to close), then reads the responses in order.
func sendPipelined(port: Int, requests: [(method: HTTPMethod, route: String, body: String)], paths: [String]? = nil,
                   group: any EventLoopGroup) async throws -> [TestResponse] {
    let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port) { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHTTPClientHandlers()
            return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
        }
    }
    return try await channel.executeThenClose { inbound, outbound in
        var parts: [HTTPClientRequestPart] = []
        for (index, request) in requests.enumerated() {
            var headers = HTTPHeaders()
            headers.add(name: "host", value: "127.0.0.1:\(port)")
            headers.add(name: "cookie", value: "COHORTSESSION=AAAAAAAAAAAAAAAAAAAAAAAAAAA.\(request.route)")
            headers.add(name: "content-length", value: String(request.body.utf8.count))
            if index == requests.count - 1 { headers.add(name: "connection", value: "close") }
            parts.append(.head(HTTPRequestHead(version: .http1_1, method: request.method, uri: paths?[index] ?? "/p\(index)", headers: headers)))
            if !request.body.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(string: request.body)))) }
            parts.append(.end(nil))
        }
        try await outbound.write(contentsOf: parts)  // one flush: the requests arrive together
        var responses: [TestResponse] = []
        var current = TestResponse(status: 0, headers: [:], body: "")
        for try await part in inbound {
            switch part {
            case .head(let head):
                current = TestResponse(status: Int(head.status.code), headers: head.headers, body: "")
            case .body(let chunk):
                current.body += String(buffer: chunk)
            case .end:
                responses.append(current)
                if responses.count == requests.count { return responses }
            }
        }
        return responses
    }
}

/// Writes `bytes` as they are on a new connection and returns everything the server sent
/// until it closed the connection, or `nil` if it was still open after `timeout`.
func sendRaw(port: Int, bytes: [UInt8], timeout: Duration = .seconds(5), group: any EventLoopGroup) async throws -> String? {
    let received = NIOLockedValueBox(ByteBuffer())
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RawCollector(received: received))
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    try? await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()  // the server may close first
    let closed = try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask { try? await channel.closeFuture.get(); return true }
        group.addTask { try await Task.sleep(for: timeout); return false }
        defer { group.cancelAll() }
        return try await group.next() ?? false
    }
    guard closed else {
        try? await channel.close()
        return nil
    }
    return received.withLockedValue { String(buffer: $0) }
}

final class RawCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let received: NIOLockedValueBox<ByteBuffer>

    init(received: NIOLockedValueBox<ByteBuffer>) {
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        _ = received.withLockedValue { $0.writeBuffer(&bytes) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)  // a reset: what arrived before it is kept
    }
}

/// A backend that answers every request with a close-delimited response (no length) of
/// `bytes` bytes of `r`, then resets the connection (`SO_LINGER` 0) instead of closing it
/// cleanly: a node that crashed mid-response. With `cleanClose`, it closes normally (the
/// body's end).
final class ResettingBackend: Sendable {
    let port: Int
    private let channel: any Channel

    private init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = channel
    }

    static func start(bytes: Int, cleanClose: Bool = false, group: any EventLoopGroup) async throws -> ResettingBackend {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(bytes: bytes, cleanClose: cleanClose))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = channel.localAddress?.port else { throw ChannelError.unknownLocalAddress }
        return ResettingBackend(port: port, channel: channel)
    }

    func stop() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let bytes: Int
        let cleanClose: Bool
        var request = ""
        var answered = false

        init(bytes: Int, cleanClose: Bool) {
            self.bytes = bytes
            self.cleanClose = cleanClose
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            request += String(buffer: unwrapInboundIn(data))
            guard !answered, request.contains("\r\n\r\n") else { return }
            answered = true
            if request.hasPrefix("GET /health") {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")), promise: nil)
                request = ""
                answered = false
                return
            }
            var response = ByteBuffer(string: "HTTP/1.1 200 OK\r\nx-backend: resetting\r\nconnection: close\r\n\r\n")
            response.writeRepeatingByte(UInt8(ascii: "r"), count: bytes)
            let channel = context.channel
            let cleanClose = self.cleanClose
            context.writeAndFlush(wrapOutboundOut(response)).whenComplete { _ in
                if cleanClose { return channel.close(promise: nil) }
                guard let provider = channel as? any SocketOptionProvider else { return channel.close(promise: nil) }
                provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in
                    channel.close(promise: nil)
                }
            }
        }
    }
}

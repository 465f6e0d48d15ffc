import CohortCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// Why an upstream exchange failed.
enum UpstreamError: Error, Hashable {
    /// No response part arrived within the timeout; the connection was closed.
    case timeout
    /// A response part arrived while no request was in flight; the connection was closed.
    case unexpectedData
}

/// One HTTP/1.1 client connection to a backend, read in pull mode.
///
/// Contract: one request at a time. `send` a request, then call `nextPart` until it returns
/// `.end`; `nil` means the backend closed the connection. Reads are demand-driven
/// (`autoRead` off): the handler reads only while fewer than `lowWatermark` parts are
/// buffered, so a slow client slows the backend instead of growing a buffer. While idle the
/// connection keeps one read outstanding so a backend's close is noticed promptly.
final class UpstreamConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<UpstreamHandler>

    private init(channel: any Channel, handler: NIOLoopBound<UpstreamHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Opens a connection; throws on connect failure or timeout.
    static func connect(to address: Address, group: any EventLoopGroup, timeout: Duration) async throws -> UpstreamConnection {
        try await ClientBootstrap(group: group)
            .connectTimeout(.nanoseconds(timeout.nanosecondsClamped))
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    let handler = UpstreamHandler(eventLoop: channel.eventLoop)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return UpstreamConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
                }
            }
    }

    var isActive: Bool { channel.isActive }

    /// Writes and flushes a whole request (head, optional body, end).
    func send(head: HTTPRequestHead, body: ByteBuffer?) async throws {
        let handler = self.handler
        if channel.eventLoop.inEventLoop {  // the usual case: the request's task runs on this loop
            let written = handler.value.send(head: head, body: body)
            // The socket usually takes the request at once: no suspension then.
            if let result = written.resultIfCompleted() { return try result.get() }
            return try await written.get()
        }
        try await channel.eventLoop.flatSubmit {
            handler.value.send(head: head, body: body)
        }.get()
    }

    /// Streaming a request: writes and flushes the head; send body parts with `sendBody`
    /// and finish with `sendEnd`.
    func sendHead(_ head: HTTPRequestHead) async throws {
        let handler = self.handler
        try await channel.eventLoop.flatSubmit {
            handler.value.write(.head(head), timeout: nil)
        }.get()
    }

    /// Writes and flushes one body part, returning once it was handed to the socket (so the
    /// caller reads no more from its client than the backend takes). When the write does not
    /// complete within `timeout` the connection is closed and later reads fail with
    /// `UpstreamError.timeout`.
    func sendBody(_ chunk: ByteBuffer, timeout: Duration?) async throws {
        let handler = self.handler
        let amount = timeout.map { TimeAmount.nanoseconds($0.nanosecondsClamped) }
        try await channel.eventLoop.flatSubmit {
            handler.value.write(.body(.byteBuffer(chunk)), timeout: amount)
        }.get()
    }

    /// Ends a streamed request.
    func sendEnd() async throws {
        let handler = self.handler
        try await channel.eventLoop.flatSubmit {
            handler.value.write(.end(nil), timeout: nil)
        }.get()
    }

    /// The next response part, `nil` once the backend closed the connection. Throws
    /// `UpstreamError.timeout` (and closes) when nothing arrives within `timeout`.
    func nextPart(timeout: Duration?) async throws -> HTTPClientResponsePart? {
        let handler = self.handler
        let amount = timeout.map { TimeAmount.nanoseconds($0.nanosecondsClamped) }
        if channel.eventLoop.inEventLoop {  // the usual case: the request's task runs on this loop
            let next = handler.value.next(timeout: amount)
            // A part that already arrived (a response's body and end follow its head in
            // the same read) is taken without suspending.
            if let result = next.resultIfCompleted() { return try result.get() }
            return try await next.get()
        }
        return try await channel.eventLoop.flatSubmit {
            handler.value.next(timeout: amount)
        }.get()
    }

    /// Marks the connection idle (between requests): any byte that arrives now closes it.
    ///
    /// On the connection's loop this happens at once: the next request's `send` may follow
    /// synchronously on the same loop and must not be overtaken by a deferred `markIdle`.
    func markIdle() {
        let handler = self.handler
        if channel.eventLoop.inEventLoop {
            handler.value.markIdle()
        } else {
            channel.eventLoop.execute { handler.value.markIdle() }
        }
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// The event-loop side of `UpstreamConnection`. Every method runs on the channel's loop.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private static let lowWatermark = 4
    private var context: ChannelHandlerContext?
    private var buffer = CircularBuffer<HTTPClientResponsePart>()
    private var waiter: EventLoopPromise<HTTPClientResponsePart?>?
    private var timeoutTask: Scheduled<Void>?
    private var isClosed = false
    private var isIdle = true
    private var readPending = false
    private var failure: (any Error)?
    private let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { readIfNeeded() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        readIfNeeded()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if isIdle {
            failure = UpstreamError.unexpectedData
            context.close(promise: nil)
            return
        }
        if let waiter {
            self.waiter = nil
            timeoutTask?.cancel()
            waiter.succeed(part)
        } else {
            buffer.append(part)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readPending = false
        readIfNeeded()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        timeoutTask?.cancel()
        if let waiter {
            self.waiter = nil
            if let failure { waiter.fail(failure) } else { waiter.succeed(nil) }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failure = error
        context.close(promise: nil)
    }

    func markIdle() {
        isIdle = true
    }

    func send(head: HTTPRequestHead, body: ByteBuffer?) -> EventLoopFuture<Void> {
        guard let context, !isClosed else {
            return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        isIdle = false
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
        return promise.futureResult
    }

    /// Writes and flushes one part of a streamed request; a head marks the connection busy.
    func write(_ part: HTTPClientRequestPart, timeout: TimeAmount?) -> EventLoopFuture<Void> {
        guard let context, !isClosed else {
            return eventLoop.makeFailedFuture(failure ?? ChannelError.ioOnClosedChannel)
        }
        if case .head = part { isIdle = false }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(part), promise: promise)
        if let timeout {
            let task = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
                self?.onWriteTimeout()
            }
            promise.futureResult.assumeIsolated().whenComplete { _ in task.cancel() }
        }
        return promise.futureResult
    }

    private func onWriteTimeout() {
        guard !isClosed else { return }
        failure = UpstreamError.timeout
        context?.close(promise: nil)
    }

    func next(timeout: TimeAmount?) -> EventLoopFuture<HTTPClientResponsePart?> {
        // Parts already received are delivered even after the backend closed the
        // connection (a `Connection: close` response ends with the close).
        if !buffer.isEmpty {
            let part = buffer.removeFirst()
            if context != nil { readIfNeeded() }
            return eventLoop.makeSucceededFuture(part)
        }
        guard let context else {
            return eventLoop.makeFailedFuture(failure ?? ChannelError.ioOnClosedChannel)
        }
        if isClosed {
            if let failure { return context.eventLoop.makeFailedFuture(failure) }
            return context.eventLoop.makeSucceededFuture(nil)
        }
        let promise = context.eventLoop.makePromise(of: HTTPClientResponsePart?.self)
        waiter = promise
        if let timeout {
            timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
                self?.onTimeout()
            }
        }
        readIfNeeded()
        return promise.futureResult
    }

    private func onTimeout() {
        guard let waiter else { return }
        self.waiter = nil
        failure = UpstreamError.timeout
        waiter.fail(UpstreamError.timeout)
        context?.close(promise: nil)
    }

    private func readIfNeeded() {
        guard let context, !isClosed, !readPending, buffer.count < Self.lowWatermark else { return }
        readPending = true
        context.read()
    }
}

extension EventLoopFuture {
    /// On the future's event loop: its result if it is already complete, else `nil`.
    /// (A callback added to a completed future runs at once when added on its loop.)
    func resultIfCompleted() -> Result<Value, any Error>? {
        var completed: Result<Value, any Error>?
        assumeIsolated().whenComplete { completed = $0 }
        return completed
    }
}

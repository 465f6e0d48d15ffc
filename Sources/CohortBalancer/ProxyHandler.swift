import CohortBalancerCore
import CohortCore
import NIOCore
import NIOHTTP1

/// Serves one client connection of the balancer, on its event loop: frames each request
/// from the bytes read (`RequestFramer`), refuses what is over the limits (431, 508, 413)
/// or malformed (400, 501), answers `Expect: 100-continue`, and hands the request to a
/// `ProxyExchange`. Responses are written as bytes (the backend's head usually as
/// received, see `ResponseHead.clientHead`), so the pipeline has no HTTP codec at all.
///
/// One request at a time: bytes of a pipelined request that arrive while a response is
/// pending stay unframed (at most one socket read's worth: reading pauses until that
/// response's end is written).
///
/// Bodies up to `bufferLimit` are buffered (resendable to another backend); a larger
/// declared length streams at once, and a chunked body once it outgrows the buffer. While
/// a streamed body waits for its backend, reading from the client is paused (the handler
/// holds the pipeline's `read` events), so the balancer holds at most one socket read of
/// body. A malformed request closes only this connection.
///
/// Two timeouts, one `DeadlineTimer` each: the client idle timeout counts while the
/// client owes bytes (between requests, or while sending one: slowloris), never while the
/// balancer answers; the response timeout counts while an exchange waits for its backend.
final class ProxyHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Waiting for the next request head.
        case idle
        /// Reading a body that may still fit the buffer.
        case buffering(head: RequestHead, body: ByteBuffer)
        case exchanging(ProxyExchange)
        /// The connection closes once the response is written; input is ignored.
        case closing
    }

    private let environment: ProxyEnvironment
    private var state = State.idle
    private var context: ChannelHandlerContext?
    private var clientIP: String?
    /// The client as the forwarding headers name it.
    private var forwardingClient = ForwardingClient(ip: nil)
    private var framer: RequestFramer
    /// Bytes read from the client and not framed yet (a pipelined request waits here).
    private var unframed = ProxyHandler.noBytes
    private static let noBytes = ByteBuffer()
    private var isFraming = false
    /// A streamed body waits for its backend.
    private var readsPaused = false
    private var readHeld = false
    /// The idle timer is running from the first byte of a head not read whole yet.
    private var headDeadlineSet = false
    /// The current (or last) request was read to its end: nothing of it is still to come.
    private var requestEndRead = true
    /// The current exchange's response timeout. One per connection, armed and disarmed by
    /// the exchanges in turn, so that a request costs no scheduled task.
    private(set) var responseTimer = DeadlineTimer(.response)
    private var idleTimer = DeadlineTimer(.idle)

    init(environment: ProxyEnvironment) {
        self.environment = environment
        // Room for the request line beside the fields `maxHeaderBytes` limits.
        self.framer = RequestFramer(maxHeadBytes: environment.maxHeaderBytes + 16 * 1024)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientIP = context.channel.remoteAddress?.ipAddress
        forwardingClient = ForwardingClient(ip: clientIP, isTrustedProxy: clientIP.map(environment.trustedProxies.contains) ?? false)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        if !environment.connections.register(context.channel, closeIfIdle: { handler.value.closeIfIdle() }) {
            context.close(promise: nil)
        }
        if context.channel.isActive { armIdleTimer() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        responseTimer.cancel()
        idleTimer.cancel()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleTimer()
        context.fireChannelActive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if case .closing = state { return }
        if unframed.readableBytes == 0 {
            unframed = bytes
        } else {
            unframed.writeBuffer(&bytes)
        }
        frameRequests(context: context)
    }

    /// Whether the next request part can be handled now (else its bytes wait unframed).
    /// A new request waits while the client is not reading its responses (its channel
    /// is not writable): a client that sends requests and never reads would otherwise
    /// pin a response's bytes per request in the outbound buffer, without bound.
    private var takesParts: Bool {
        switch state {
        case .idle: return context?.channel.isWritable ?? true
        case .buffering: return true
        case .closing: return false
        case .exchanging(let exchange): return exchange.takesClientParts
        }
    }

    /// Frames and handles the parts read so far, up to the next request that must wait,
    /// then sets the idle timeout by what the connection waits for.
    private func frameRequests(context: ChannelHandlerContext) {
        guard !isFraming else { return }  // a request started from the loop below finished at once
        isFraming = true
        defer { isFraming = false }
        while takesParts {  // (a body's end may need no more bytes)
            let part: RequestFramer.Part?
            do {
                part = try framer.next(from: &unframed)
            } catch {
                return refuseMalformed(error, context: context)
            }
            guard let part else { break }
            handle(part, context: context)
        }
        // Holds no read buffer while none is needed, so NIO can reuse it for the next read.
        if unframed.readableBytes == 0 { unframed = Self.noBytes }
        if case .closing = state {
            // Keeps the deadline its last write set (`finishResponse`).
        } else if case .idle = state, unframed.readableBytes > 0 {
            // Part of a head (or requests waiting for the client to read): the deadline runs
            // from the first byte and is not pushed back by more, so a head sent a byte at a
            // time cannot hold the connection for ever (nginx's client_header_timeout).
            if !headDeadlineSet { armIdleTimer() }
            headDeadlineSet = true
        } else if waitsForClient {
            headDeadlineSet = false
            armIdleTimer()
        } else {
            headDeadlineSet = false
            idleTimer.disarm()
        }
        readIfHeld()
    }

    /// Whether the client owes bytes: no request is read to its end and unanswered.
    private var waitsForClient: Bool {
        switch state {
        case .idle, .buffering: return true
        case .closing: return false
        case .exchanging(let exchange): return exchange.takesClientParts
        }
    }

    private func handle(_ part: RequestFramer.Part, context: ChannelHandlerContext) {
        switch state {
        case .idle:
            guard case .head(let head) = part else { return close(context) }
            requestEndRead = false
            startRequest(head, context: context)
        case .buffering(let head, var body):
            state = .closing  // keeps `body` uniquely referenced while it grows
            switch part {
            case .body(var chunk):
                let overflow = body.readableBytes + chunk.readableBytes > environment.bufferLimit
                body.writeBuffer(&chunk)
                if overflow {
                    streamOrRefuse(head, prefix: body, context: context)
                } else {
                    state = .buffering(head: head, body: body)
                }
            case .end:
                requestEndRead = true
                startExchange(head, body: .buffered(body), context: context)
            case .head:
                close(context)
            }
        case .exchanging(let exchange):
            if case .end = part { requestEndRead = true }
            exchange.client(sent: part)
        case .closing:
            break
        }
    }

    private func startRequest(_ head: RequestHead, context: ChannelHandlerContext) {
        if head.fieldCount > environment.maxHeaderCount || head.fieldBytes > environment.maxHeaderBytes {
            return refuse(.headersTooLarge, status: .requestHeaderFieldsTooLarge, isHTTP10: head.isHTTP10)
        }
        if head.hasPassed(via: environment.via) {
            return refuse(.loop, status: .loopDetected, isHTTP10: head.isHTTP10)
        }
        let declared = head.contentLength
        if let declared, declared > environment.maxRequestBodyBytes {
            return refuse(.bodyTooLarge, status: .payloadTooLarge, isHTTP10: head.isHTTP10)
        }
        // An HTTP/1.0 client gets no interim response (RFC 9110 §10.1.1): it would read it
        // as the final one.
        if head.expectsContinue && !head.isHTTP10 {
            let interim: StaticString = "HTTP/1.1 100 Continue\r\n\r\n"
            var bytes = context.channel.allocator.buffer(capacity: interim.utf8CodeUnitCount)
            bytes.writeStaticString(interim)
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        }
        if let declared, declared > environment.bufferLimit {
            return streamOrRefuse(head, prefix: ByteBuffer(), context: context)
        }
        let capacity = min(declared ?? 0, environment.bufferLimit)
        state = .buffering(head: head, body: capacity > 0 ? context.channel.allocator.buffer(capacity: capacity) : ByteBuffer())
    }

    /// The body outgrew the buffer: stream it, unless the buffer already is the absolute limit.
    private func streamOrRefuse(_ head: RequestHead, prefix: ByteBuffer, context: ChannelHandlerContext) {
        guard environment.bufferLimit < environment.maxRequestBodyBytes else {
            return refuse(.bodyTooLarge, status: .payloadTooLarge, isHTTP10: head.isHTTP10)
        }
        let stream = StreamedRequestBody(prefix: prefix, declaredLength: head.contentLength, limit: environment.maxRequestBodyBytes)
        startExchange(head, body: .streamed(stream), context: context)
    }

    private func startExchange(_ head: RequestHead, body: ProxyExchange.Body, context: ChannelHandlerContext) {
        let keepAlive = head.keepAlive && !environment.connections.isShuttingDown
        let exchange = ProxyExchange(environment: environment, client: context, owner: self, head: head, body: body,
                                     clientIP: clientIP, forwardingClient: forwardingClient, keepAlive: keepAlive)
        state = .exchanging(exchange)
        exchange.start()
    }

    private func refuse(_ reason: BalancerRefusals.Reason, status: HTTPResponseStatus, isHTTP10: Bool) {
        environment.refusals.record(reason, client: clientIP, logger: environment.logger)
        respond(status: status, isHTTP10: isHTTP10, keepAlive: false)
    }

    /// The client's bytes are not a well-formed request: answer (unless a response is
    /// under way) and close.
    private func refuseMalformed(_ error: HTTPFramingError, context: ChannelHandlerContext) {
        environment.logger.debug("malformed request", metadata: ["balancer.error": "\(error)"])
        unframed = Self.noBytes
        guard case .exchanging = state else {
            switch error {
            case .headTooLarge:
                return refuse(.headersTooLarge, status: .requestHeaderFieldsTooLarge, isHTTP10: false)
            case .unsupportedTransferCoding:
                state = .closing
                return respond(status: .notImplemented, isHTTP10: false, keepAlive: false)
            // (`unrequestedUpgrade` comes from a backend's response, never from a request.)
            case .malformedHead, .malformedChunk, .ambiguousLength, .unrequestedUpgrade:
                state = .closing
                return respond(status: .badRequest, isHTTP10: false, keepAlive: false)
            }
        }
        close(context)  // a streamed body went wrong: the exchange is abandoned when the channel closes
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        switch state {
        case .exchanging(let exchange):
            exchange.clientWritabilityChanged(isWritable: context.channel.isWritable)
        case .idle where context.channel.isWritable:
            frameRequests(context: context)  // the requests that waited for the client to read
        default:
            break
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .exchanging(let exchange) = state { exchange.clientClosed() }
        state = .closing
        responseTimer.cancel()
        idleTimer.cancel()
        environment.connections.deregister(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        environment.logger.debug("client connection failed", metadata: ["balancer.error": "\(error)"])
        close(context)
    }

    // MARK: Outbound: read control

    func read(context: ChannelHandlerContext) {
        if readsPaused || (unframed.readableBytes > 0 && !takesParts) {
            readHeld = true
        } else {
            context.read()
        }
    }

    /// Stops reading from the client (a streamed body waits for its backend).
    func pauseReads() {
        readsPaused = true
    }

    func resumeReads() {
        readsPaused = false
        readIfHeld()
    }

    private func readIfHeld() {
        guard readHeld, !readsPaused, unframed.readableBytes == 0 || takesParts, let context else { return }
        readHeld = false
        context.read()
    }

    // MARK: Response timeout

    /// (Re)starts the response timeout: `environment.responseTimeout` from now.
    func armResponseTimer() {
        guard let context else { return }
        responseTimer.arm(after: environment.responseTimeout, on: context.eventLoop, owner: self)
    }

    func disarmResponseTimer() {
        responseTimer.disarm()
    }

    /// (Re)starts the client idle timeout.
    private func armIdleTimer() {
        guard let context else { return }
        idleTimer.arm(after: environment.clientIdleTimeout, on: context.eventLoop, owner: self)
    }

    // MARK: Responses

    /// Writes response bytes (not the end) without flushing.
    func write(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// Ends the current response (every other byte of it is written; `end`: its last
    /// bytes, if any) and goes on with the next request, or closes the connection once the
    /// end is written when `keepAlive` is false or the balancer is shutting down. If the
    /// client may still be sending its request (a refusal, or a response that came before
    /// the body's end), the close lingers: see `lingerThenClose`.
    func finishResponse(end: ByteBuffer?, keepAlive: Bool) {
        guard let context else { return }
        readsPaused = false
        if keepAlive && !environment.connections.isShuttingDown {
            state = .idle
            // A failed write closes the channel (NIO), which abandons what follows. Without
            // end bytes only a flush: an empty write would be one more pipeline write.
            if let end { context.write(wrapOutboundOut(end), promise: nil) }
            context.flush()
            frameRequests(context: context)  // a pipelined request, if one was read
        } else {
            let last = end ?? Self.noBytes
            let linger = !requestEndRead
            state = .closing
            unframed = Self.noBytes
            armIdleTimer()  // a client that never reads the last bytes is closed all the same
            context.writeAndFlush(wrapOutboundOut(last)).assumeIsolated().whenComplete { [self] result in
                guard linger, case .success = result else { return close(context) }
                lingerThenClose(context)
            }
        }
    }

    /// How long a closing connection keeps reading (and discarding) what its client still
    /// sends, at most (nginx's `lingering_timeout` is 5 s too).
    static let lingerTimeout = TimeAmount.seconds(5)

    /// Closes the connection's output only, then reads and discards what the client still
    /// sends until it closes its side or `lingerTimeout` passes. Closing at once with
    /// unread bytes in the socket would send a reset, which can destroy the response in
    /// the client's receive buffer before the client reads it (a 413 for an upload would
    /// show as a broken connection). The channel is in `.closing`, which discards input.
    private func lingerThenClose(_ context: ChannelHandlerContext) {
        idleTimer.arm(after: min(Self.lingerTimeout, environment.clientIdleTimeout), on: context.eventLoop, owner: self)
        context.close(mode: .output).assumeIsolated().whenFailure { [self] _ in close(context) }
        readIfHeld()
    }

    /// Shutting down: closes the connection now if it waits for a request (once what was
    /// written is flushed); a busy one closes after its response (`finishResponse`).
    func closeIfIdle() {
        guard let context, case .idle = state, unframed.readableBytes == 0 else { return }
        state = .closing
        armIdleTimer()  // the write below may never complete if the client does not read
        context.writeAndFlush(wrapOutboundOut(Self.noBytes)).assumeIsolated().whenComplete { [self] _ in close(context) }
    }

    /// A short plain-text response generated by the balancer itself.
    func respond(status: HTTPResponseStatus, isHTTP10: Bool, keepAlive: Bool) {
        let text = "\(status.code) \(status.reasonPhrase)\n"
        var response = isHTTP10 ? "HTTP/1.0 " : "HTTP/1.1 "
        response += "\(status.code) \(status.reasonPhrase)\r\ncontent-type: text/plain; charset=utf-8\r\n"
        response += "content-length: \(text.utf8.count)\r\n"
        if !keepAlive {
            response += "connection: close\r\n"
        } else if isHTTP10 {
            response += "connection: keep-alive\r\n"
        }
        write(ByteBuffer(string: response + "\r\n" + text))
        finishResponse(end: nil, keepAlive: keepAlive)
    }

    /// Closes the connection now (the client is gone, or a response cannot be completed).
    func abort() {
        state = .closing
        context?.close(promise: nil)
    }

    /// Closes the connection. An exchange in progress (a pipelined request started before
    /// an earlier write failed) stays the state until `channelInactive` abandons it.
    private func close(_ context: ChannelHandlerContext) {
        if case .exchanging = state {} else { state = .closing }
        context.close(promise: nil)
    }
}

extension ProxyHandler: DeadlineTimerOwner {
    func deadlineTimerFired(_ kind: DeadlineTimer.Kind) {
        guard let context else { return }
        switch kind {
        case .response:
            guard responseTimer.expired(on: context.eventLoop, owner: self), case .exchanging(let exchange) = state else { return }
            exchange.responseTimedOut()
        case .idle:
            guard idleTimer.expired(on: context.eventLoop, owner: self) else { return }
            close(context)
        }
    }
}

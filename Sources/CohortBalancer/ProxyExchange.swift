import CohortBalancerCore
import CohortCore
import NIOCore
import NIOHTTP1

/// How one attempt on one backend failed.
enum AttemptOutcome {
    /// Nothing of the request reached the backend (connect failure, closed pooled connection).
    case failedBeforeSending
    /// The request was (possibly) sent, and the backend closed or reset before the response completed.
    case failedBeforeResponse
    /// No response byte within the response timeout (or a streamed body write stalled as long).
    case timedOut
}

/// One client request proxied to a backend, with failover. Runs on the client
/// connection's event loop, driven by events: no task and no suspension per request.
///
/// Routes with the shared `BackendTable`, sends the request on a pooled keep-alive
/// connection of the same loop (a new one if none is idle; always a new one for a streamed
/// body, since a stale pooled connection would fail it after body bytes were sent), and
/// holds the response until it is complete or `responseBufferBytes` arrived: a backend that
/// fails before then has written nothing to the client, so the request can still go to
/// another node. Beyond that the response is relayed as it arrives, with back-pressure
/// (the backend is not read while the client cannot take more).
///
/// Retry rules: a failure before the request was sent is retried on another backend for
/// every method; a close/reset before the response completed is retried for idempotent
/// methods, and for others only with a `Cohort-Request-Id` (the node then answers a retry
/// of an already applied write with its recorded response, never applying it twice); a
/// timeout is retried once for idempotent methods. Each backend is tried at most once per
/// request. A streamed body is never resent once any body byte was sent. A failure after
/// the response started closes the client connection.
///
/// A streamed body keeps flowing after the response head arrives, and that response is
/// relayed at once, not held (full duplex: a backend may answer while it reads, and its
/// client may wait for the answer). A response that completes before the body's end closes
/// the client connection after it, lingering (see `ProxyHandler.finishResponse`), and
/// the backend's connection, which is not at a request boundary.
final class ProxyExchange: UpstreamResponseDelegate {
    private struct Attempt {
        let choice: BackendTable.Choice
        let connection: UpstreamConnection
    }

    private let environment: ProxyEnvironment
    private let client: ChannelHandlerContext
    private let owner: ProxyHandler
    private let head: RequestHead
    private let body: Body
    private let clientIP: String?
    /// The client asked for (and may get) a persistent connection.
    private let keepAlive: Bool
    private let idempotent: Bool
    /// A non-idempotent request with a request id: retried like an idempotent one.
    private let replayable: Bool
    /// The request head as sent upstream (the same bytes on every attempt).
    private let upstreamHead: ByteBuffer
    private let session: SessionID?

    private var tried: Set<String> = []
    private var retriedTimeout = false
    /// A connect in progress for this backend.
    private var connecting: BackendTable.Choice?
    private var attempt: Attempt?
    /// The whole request (end included) went upstream on the current attempt.
    private var requestSent = false
    /// The final response head, as received from the backend.
    private var responseHead: ResponseHead?
    private var held: ByteBuffer?
    /// The client's response head was sent; parts now go to the client as they arrive.
    private var relaying = false
    private var clientKeepAlive = false
    /// How the body goes to the client (set with the client's head).
    private var clientFraming = ResponseHead.ClientFraming.asReceived
    private var isFinished = false

    init(environment: ProxyEnvironment, client: ChannelHandlerContext, owner: ProxyHandler, head: RequestHead,
         body: Body, clientIP: String?, forwardingClient: ForwardingClient, keepAlive: Bool) {
        self.environment = environment
        self.client = client
        self.owner = owner
        self.head = head
        self.body = body
        self.clientIP = clientIP
        self.keepAlive = keepAlive
        self.idempotent = head.method.isIdempotent
        self.replayable = !idempotent && environment.retryWithRequestID
        self.session = head.session(cookieName: environment.cookieName)
        // A non-idempotent request gets a request id that Cohort nodes use to answer a
        // retry with the first attempt's response instead of applying it twice (see
        // CohortHummingbird's RequestReplay).
        self.upstreamHead = head.upstreamHead(bodyLength: body.length, client: forwardingClient, via: environment.via,
                                              requestID: replayable ? ProxyHeaders.makeRequestID() : nil,
                                              allocator: client.channel.allocator)
    }

    func start() {
        if case .streamed = body { owner.pauseReads() }  // until a backend takes the body
        nextAttempt()
    }

    // MARK: Attempts

    private func nextAttempt() {
        let excluded = tried
        let session = self.session
        let chosen = environment.table.withLockedValue { table -> BackendTable.Choice? in
            guard let choice = table.choose(route: session?.route, key: session?.key, excluding: excluded) else { return nil }
            table.onRequestStarted(choice.name)
            return choice
        }
        guard let choice = chosen else {
            let status: HTTPResponseStatus = tried.isEmpty ? .serviceUnavailable : .badGateway
            environment.logger.warning("no live backend", metadata: ["balancer.tried": "\(tried.sorted())", "http.status": "\(status.code)"])
            return respondAndFinish(status)
        }
        tried.insert(choice.name)
        let loop = client.eventLoop
        if case .buffered = body, let connection = environment.pool.takeIdle(backend: choice.name, on: loop) {
            return send(on: connection, choice)
        }
        connecting = choice
        environment.pool.connect(backend: choice.name, address: choice.address, on: loop).assumeIsolated().whenComplete { [self] result in
            connecting = nil
            switch result {
            case .success(let connection):
                if isFinished {  // the client left meanwhile: keep the fresh connection
                    environment.pool.release(connection, backend: choice.name)
                } else {
                    send(on: connection, choice)
                }
            case .failure(let error):
                guard !isFinished else { return }
                environment.logger.debug("connect failed", metadata: ["balancer.backend": "\(choice.name)", "balancer.error": "\(error)"])
                attemptFailed(choice, .failedBeforeSending)
            }
        }
    }

    private func send(on connection: UpstreamConnection, _ choice: BackendTable.Choice) {
        let upstream = connection.handler
        guard upstream.attach(self, toHEAD: head.method == .head) else {
            connection.close()
            return attemptFailed(choice, .failedBeforeSending)
        }
        attempt = Attempt(choice: choice, connection: connection)
        requestSent = false
        responseHead = nil
        held = nil
        upstream.write(upstreamHead)
        switch body {
        case .buffered(let buffer):
            if buffer.readableBytes > 0 { upstream.write(buffer) }  // with its Content-Length
            requestSent = true
            armTimer()
            // Last: a failed write closes the connection from inside `flush`, which
            // re-enters `upstreamClosed` (and may start the next attempt).
            upstream.flush()
        case .streamed(let stream):
            sendPending(stream, on: upstream)
        }
    }

    /// Writes the streamed body parts read so far; reads more from the client while the
    /// backend's connection takes them.
    private func sendPending(_ stream: StreamedRequestBody, on upstream: UpstreamHandler) {
        let chunked = stream.declaredLength == nil
        while let part = stream.pending.popFirst() {
            if case .body(let chunk) = part {
                stream.bytesSent += chunk.readableBytes
                if chunk.readableBytes > 0 { upstream.write(chunked ? Self.chunk(chunk) : chunk) }
            } else {
                if chunked { upstream.write(ByteBuffer(string: "0\r\n\r\n")) }
                requestSent = true
            }
        }
        if requestSent {
            armTimer()
        } else if upstream.isWritable {
            disarmTimer()
            owner.resumeReads()
        } else {
            owner.pauseReads()
            armTimer()  // a stalled write counts as a timeout
        }
        upstream.flush()  // last, as in `send`
    }

    /// `bytes` as one chunk of a chunked body.
    private static func chunk(_ bytes: ByteBuffer) -> ByteBuffer {
        var framed = ByteBuffer()
        framed.reserveCapacity(bytes.readableBytes + 20)
        framed.writeString(String(bytes.readableBytes, radix: 16))
        framed.writeStaticString("\r\n")
        framed.writeImmutableBuffer(bytes)
        framed.writeStaticString("\r\n")
        return framed
    }

    /// Whether the client's next request part belongs to this exchange (a streamed body
    /// still being read); otherwise it belongs to a pipelined request and waits.
    var takesClientParts: Bool {
        guard case .streamed(let stream) = body else { return false }
        return !stream.isFinished && !isFinished
    }

    /// A part of a streamed body from the client.
    func client(sent part: RequestFramer.Part) {
        guard case .streamed(let stream) = body, !isFinished else { return }
        switch part {
        case .body(let chunk):
            stream.received += chunk.readableBytes
            guard stream.received <= stream.limit else { return bodyTooLarge() }
        case .end:
            stream.isFinished = true
        case .head:
            return abort(log: "request head inside a body")
        }
        stream.pending.append(part)
        // Also once the response started: a backend may answer while it reads the body
        // (an echo, a streamed transform), and would wait for the rest of it.
        if let attempt, !requestSent {
            sendPending(stream, on: attempt.connection.handler)
        } else {
            owner.pauseReads()
        }
    }

    private func bodyTooLarge() {
        // The client's fault, not the backend's.
        environment.refusals.record(.bodyTooLarge, client: clientIP, logger: environment.logger)
        if relaying { return abort(log: "request body too large") }  // a 413 cannot follow a response begun
        isFinished = true
        disarmTimer()
        closeUpstream(finished: true)
        if let connecting { environment.table.withLockedValue { $0.onRequestFinished(connecting.name) } }
        owner.respond(status: .payloadTooLarge, isHTTP10: head.isHTTP10, keepAlive: false)
    }

    private func attemptFailed(_ choice: BackendTable.Choice, _ outcome: AttemptOutcome) {
        environment.traffic?.attemptFailed(on: choice.name, outcome)
        closeUpstream(finished: false)
        disarmTimer()
        let health = environment.table.withLockedValue { table -> BackendTable.HealthOutcome in
            table.onRequestFinished(choice.name)
            return table.onFailure(choice.name)
        }
        environment.logHealth(health, name: choice.name, cause: "request")
        let retry: Bool
        switch outcome {
        case .failedBeforeSending:
            retry = body.isResendable
        case .failedBeforeResponse:
            retry = (idempotent || replayable) && body.isResendable
        case .timedOut:
            retry = idempotent && !retriedTimeout && body.isResendable
            retriedTimeout = true
        }
        environment.logger.info("attempt failed", metadata: [
            "balancer.backend": "\(choice.name)", "balancer.outcome": "\(outcome)", "balancer.retry": "\(retry)",
        ])
        if retry { return nextAttempt() }
        if case .timedOut = outcome {
            respondAndFinish(.gatewayTimeout)
        } else {
            respondAndFinish(.badGateway)
        }
    }

    /// Answers with the balancer's own error response.
    private func respondAndFinish(_ status: HTTPResponseStatus) {
        environment.traffic?.errorResponse(Int(status.code))
        isFinished = true
        disarmTimer()
        owner.respond(status: status, isHTTP10: head.isHTTP10, keepAlive: keepAlive && body.isFinished)
    }

    // MARK: The response (UpstreamResponseDelegate)

    func upstream(received part: ResponseFramer.Part) {
        guard let attempt, !isFinished else { return }
        if owner.responseTimer.isArmed { armTimer() }  // progress: push the deadline back
        switch part {
        case .head(let candidate):
            // Interim 1xx responses were skipped by the framer (the balancer answered `Expect` itself).
            responseHead = candidate
            // A response that starts before the upload ends goes out at once: its client may
            // wait for it before it sends the rest (full duplex).
            if !body.isFinished { startRelaying() }
        case .body(var chunk):
            if relaying { return writeBody(chunk) }
            if var buffer = held.take() {  // taken, so the append does not copy it
                buffer.writeBuffer(&chunk)
                held = buffer
            } else {
                held = chunk
            }
            if let held, held.readableBytes > environment.responseBufferBytes { startRelaying() }
        case .end(let trailers):
            complete(attempt, trailers: trailers)
        }
    }

    /// The response outgrew the hold buffer: send its head and what arrived, then relay.
    private func startRelaying() {
        guard let responseHead else { return }
        relaying = true
        sendHeadAndHeld(responseHead, complete: false, trailers: nil)
        owner.flush()
    }

    /// Sends the client's response head and the body held so far. `complete`: the whole
    /// response is held, so a body of unknown length can go with a `Content-Length`.
    private func sendHeadAndHeld(_ responseHead: ResponseHead, complete: Bool, trailers: ByteBuffer?) {
        let requestIsHTTP10 = head.isHTTP10
        if responseHead.contentLength != nil || head.method == .head || responseHead.status == 204 || responseHead.status == 304 {
            clientFraming = .asReceived
        } else if complete && trailers == nil {
            clientFraming = .length(held?.readableBytes ?? 0)
        } else {
            clientFraming = requestIsHTTP10 ? .untilClose : .chunked
        }
        if case .untilClose = clientFraming {
            clientKeepAlive = false
        } else {
            // Shutting down: this response is the connection's last, and says so.
            clientKeepAlive = keepAlive && body.isFinished && !environment.connections.isShuttingDown
        }
        owner.write(responseHead.clientHead(requestIsHTTP10: requestIsHTTP10, keepAlive: clientKeepAlive, framing: clientFraming,
                                            allocator: client.channel.allocator))
        if let held { writeBody(held) }
        held = nil
    }

    /// Body bytes to the client, in chunks when the client's framing is chunked.
    private func writeBody(_ bytes: ByteBuffer) {
        guard bytes.readableBytes > 0 else { return }
        guard case .chunked = clientFraming else { return owner.write(bytes) }
        owner.write(Self.chunk(bytes))
    }

    /// What ends the client's response: the last chunk and the trailers when chunked.
    private func responseEnd(trailers: ByteBuffer?) -> ByteBuffer? {
        guard case .chunked = clientFraming else { return nil }
        var end = client.channel.allocator.buffer(capacity: 5 + (trailers?.readableBytes ?? 0))
        end.writeStaticString("0\r\n")
        if let trailers { end.writeImmutableBuffer(trailers) }
        end.writeStaticString("\r\n")
        return end
    }

    private func complete(_ attempt: Attempt, trailers: ByteBuffer?) {
        guard let responseHead else { return upstreamClosed(error: UpstreamError.unexpectedData) }
        environment.traffic?.response(from: attempt.choice.name, status: responseHead.status)
        isFinished = true
        disarmTimer()
        let health = environment.table.withLockedValue { table -> BackendTable.HealthOutcome in
            table.onRequestFinished(attempt.choice.name)
            return table.onSuccess(attempt.choice.name)
        }
        environment.logHealth(health, name: attempt.choice.name, cause: "request")
        attempt.connection.handler.detach()
        self.attempt = nil
        if responseHead.keepAlive && requestSent && attempt.connection.handler.isReusable {
            environment.pool.release(attempt.connection, backend: attempt.choice.name)
        } else {
            attempt.connection.close()
        }
        if !relaying { sendHeadAndHeld(responseHead, complete: true, trailers: trailers) }
        // May start the next pipelined request (and take the connection just released).
        owner.finishResponse(end: responseEnd(trailers: trailers), keepAlive: clientKeepAlive)
    }

    func upstreamReadComplete() {
        guard relaying, !isFinished else { return }
        owner.flush()
        if !client.channel.isWritable { attempt?.connection.handler.setReading(paused: true) }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        guard case .streamed(let stream) = body, let attempt, !requestSent, !isFinished else { return }
        if isWritable {
            sendPending(stream, on: attempt.connection.handler)
        } else {
            owner.pauseReads()
            armTimer()
        }
    }

    func upstreamClosed(error: (any Error)?) {
        guard let attempt, !isFinished else { return }
        if relaying {
            environment.traffic?.responseAborted(by: attempt.choice.name)
            return abort(log: "response aborted", error: error ?? ChannelError.eof)
        }
        attemptFailed(attempt.choice, (error as? UpstreamError) == .timeout ? .timedOut : .failedBeforeResponse)
    }

    func clientWritabilityChanged(isWritable: Bool) {
        guard relaying else { return }
        attempt?.connection.handler.setReading(paused: !isWritable)
    }

    // MARK: Ending early

    /// The client connection closed: abandon the exchange.
    func clientClosed() {
        guard !isFinished else { return }
        isFinished = true
        disarmTimer()
        closeUpstream(finished: true)
        if let connecting { environment.table.withLockedValue { $0.onRequestFinished(connecting.name) } }
    }

    /// A failure after the response started (or a protocol violation): close both connections.
    private func abort(log message: String, error: (any Error)? = nil) {
        environment.logger.info("\(message)", metadata: [
            "balancer.backend": "\(attempt?.choice.name ?? "-")", "balancer.error": "\(error.map { "\($0)" } ?? "-")",
        ])
        isFinished = true
        disarmTimer()
        closeUpstream(finished: true)
        owner.abort()
    }

    /// Closes the current attempt's connection; with `finished`, counts its request as ended.
    private func closeUpstream(finished: Bool) {
        guard let attempt else { return }
        self.attempt = nil
        attempt.connection.handler.detach()
        attempt.connection.close()
        if finished { environment.table.withLockedValue { $0.onRequestFinished(attempt.choice.name) } }
    }

    // MARK: Timer

    /// Upstream inactivity: the connection's response timer (see
    /// `ProxyHandler.responseTimer`) is armed while waiting for the backend (a streamed
    /// body's stalled write, or the response), and pushed back by every response part.
    private func armTimer() {
        owner.armResponseTimer()
    }

    private func disarmTimer() {
        owner.disarmResponseTimer()
    }

    /// The response timer ran out while this exchange was waiting for its backend.
    func responseTimedOut() {
        guard !isFinished, let attempt else { return }
        if relaying {
            environment.traffic?.responseAborted(by: attempt.choice.name)
            return abort(log: "response aborted", error: UpstreamError.timeout)
        }
        attemptFailed(attempt.choice, .timedOut)
    }
}

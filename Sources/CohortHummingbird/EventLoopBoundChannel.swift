import CohortNIO
public import HummingbirdCore
public import Logging
public import NIOCore

/// A ``ServerChildChannel`` that serves each connection in a task preferring the
/// connection's own event loop (see `EventLoopTaskExecutor`).
///
/// Hummingbird runs a connection's request loop in a task on Swift's cooperative pool, so
/// every request crosses threads twice: the event loop reads it, a pool thread runs the
/// middleware and handler, the event loop writes the response. (With NIO's loops as the
/// global executor, as `cohort node` installs them, the request's ~46 jobs per write queue
/// behind other requests' jobs instead.) Here a request is read, handled and answered on
/// one thread without being queued at each `await`, and a continuation resumed elsewhere
/// (a commit's acks, a session fetched from a peer) is queued onto that loop. Measured (BENCHMARKS.md),
/// with ``HTTPServerBuilder/http1OnEventLoop(configuration:)``'s deferred flush: three
/// replicating nodes behind `cohort balancer` served 2–4 % more writes per second at ~4 %
/// less CPU; one node alone, 0.97× as many as with Hummingbird's own channel.
///
/// The contract is the one async handlers already have: do not block the thread. A
/// handler that blocks here stalls the other connections of its loop.
public struct EventLoopBoundChannel<Base: ServerChildChannel>: ServerChildChannel {
    public typealias Value = Base.Value

    public let base: Base

    public init(_ base: Base) {
        self.base = base
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger)
    }

    public func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await base.handle(value: value, logger: logger)
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 as `HTTPServerBuilder.http1(configuration:)`, with each connection served
    /// on its own event loop (``EventLoopBoundChannel``) and its flushes held to the end of
    /// the loop's turn (`DeferredFlushHandler`, after `configuration`'s additional
    /// handlers). `cohort node` serves this way.
    ///
    /// ```swift
    /// let app = Application(router: router, server: .http1OnEventLoop())
    /// ```
    public static func http1OnEventLoop(configuration: HTTP1Channel.Configuration = .init()) -> HTTPServerBuilder {
        var configuration = configuration
        let additional = configuration.additionalChannelHandlers
        configuration.additionalChannelHandlers = { additional() + [DeferredFlushHandler()] }
        let channelConfiguration = configuration
        return .init { responder in
            EventLoopBoundChannel(HTTP1Channel(responder: responder, configuration: channelConfiguration))
        }
    }
}

import CohortBalancerCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// What the proxy's channel handlers share with the `BalancerServer`: the limits and
/// timeouts of the request path, the backend table, the upstream pool and the counters.
/// One per server; every connection's `ProxyHandler` holds it.
final class ProxyEnvironment: Sendable {
    let cookieName: String
    let responseTimeout: TimeAmount
    /// A client connection that owes bytes this long (between requests, or while sending one) is closed.
    let clientIdleTimeout: TimeAmount
    let maxHeaderBytes: Int
    let maxHeaderCount: Int
    /// Bodies up to this size are buffered (resendable): `min(retryBufferBytes, maxRequestBodyBytes)`.
    let bufferLimit: Int
    let maxRequestBodyBytes: Int
    let responseBufferBytes: Int
    let retryWithRequestID: Bool

    let table: NIOLockedValueBox<BackendTable>
    let pool: UpstreamPool
    let connections: ClientConnections
    let refusals: BalancerRefusals
    let logger: Logger
    /// This process's `Via` entry: a request that already carries it went round a loop
    /// (the balancer is among its own backends) and is refused with 508.
    let via: String

    init<C: Clock>(configuration: BalancerServer<C>.Configuration, table: NIOLockedValueBox<BackendTable>,
                   pool: UpstreamPool, connections: ClientConnections, refusals: BalancerRefusals, logger: Logger) {
        self.cookieName = configuration.cookieName
        self.responseTimeout = .nanoseconds(configuration.responseTimeout.nanosecondsClamped)
        self.clientIdleTimeout = .nanoseconds(configuration.clientIdleTimeout.nanosecondsClamped)
        self.maxHeaderBytes = configuration.maxHeaderBytes
        self.maxHeaderCount = configuration.maxHeaderCount
        self.bufferLimit = min(configuration.retryBufferBytes, configuration.maxRequestBodyBytes)
        self.maxRequestBodyBytes = configuration.maxRequestBodyBytes
        self.responseBufferBytes = configuration.responseBufferBytes
        self.retryWithRequestID = configuration.retryWithRequestID
        self.table = table
        self.pool = pool
        self.connections = connections
        self.refusals = refusals
        self.logger = logger
        self.via = ProxyHeaders.makeVia()
    }

    func logHealth(_ outcome: BackendTable.HealthOutcome, name: String, cause: String) {
        switch outcome {
        case .markedDown:
            logger.warning("backend down", metadata: ["balancer.backend": "\(name)", "balancer.cause": "\(cause)"])
        case .markedUp:
            logger.notice("backend up", metadata: ["balancer.backend": "\(name)", "balancer.cause": "\(cause)"])
        case .unchanged, .unknownBackend:
            break
        }
    }
}

/// Open client connections, so that a graceful shutdown can close the idle ones at once
/// while busy ones finish their current exchange.
final class ClientConnections: Sendable {
    private struct State {
        var isShuttingDown = false
        var idle: [ObjectIdentifier: any Channel] = [:]
    }

    private let state = NIOLockedValueBox(State())

    var isShuttingDown: Bool { state.withLockedValue { $0.isShuttingDown } }

    /// The connection waits for its next request head. Returns `false` when shutting
    /// down: the caller closes it.
    func markIdle(_ channel: any Channel) -> Bool {
        state.withLockedValue { state -> Bool in
            if !state.isShuttingDown { state.idle[ObjectIdentifier(channel)] = channel }
            return !state.isShuttingDown
        }
    }

    func markBusy(_ channel: any Channel) {
        _ = state.withLockedValue { $0.idle.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func beginShutdown() {
        let idle = state.withLockedValue { state -> [any Channel] in
            state.isShuttingDown = true
            defer { state.idle = [:] }
            return Array(state.idle.values)
        }
        for channel in idle { channel.close(promise: nil) }
    }
}
